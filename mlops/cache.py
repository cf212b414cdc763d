"""`mlops cache clear [--pipeline training|evaluation]`: forget the local step cache; the next run re-runs every step.

Only the index goes (`<state dir>/cache/<pipeline>.json`); the outputs it pointed to stay where they are. To re-run
once without forgetting anything, use `mlops run ... --no-cache` instead.
"""

from __future__ import annotations

import argparse
import json

from config import EnvironmentConfig
from mlops.common import command_line, pipeline_name, shown, unit_options
from pipeline_defs.graph import PIPELINES
from pipeline_defs.local import CacheIndex
from pipeline_defs.local.cache import DamagedCacheIndex


def command_cache(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    cleared = {}
    for pipeline in [args.pipeline] if args.pipeline else PIPELINES:
        index = CacheIndex.of(args.state_dir, pipeline_name(config, pipeline))
        cleared[index.pipeline] = index.clear()
        count = cleared[index.pipeline]
        if not args.json:
            what = "a damaged cache index" if count is None else f"{count} cache entries"
            print(f"{index.pipeline}: forgot {what} ({shown(index.path)})")
    if args.json:
        print(json.dumps({"cleared": cleared}, indent=2))
    return 0


def damaged_index_message(error: DamagedCacheIndex, config: EnvironmentConfig) -> str:
    """The engine's message about a damaged cache index, its fix worded as the `mlops cache clear` command that clears
    exactly that index: the command's pipeline name (training, not churn-dev-training), the state dir and the unit."""
    short_names = [name for name in PIPELINES if pipeline_name(config, name) == error.index.pipeline]
    if not short_names:  # not one of this unit's pipelines: nothing better to say than the engine did
        return str(error)
    state_dir = error.index.path.parent.parent  # <state dir>/cache/<pipeline>.json
    clear = command_line(
        "cache", "clear", "--pipeline", short_names[0], "--state-dir", shown(state_dir), *unit_options(config)
    )
    return f"{str(error).removesuffix(error.fix)}run `{clear}` (the next run re-runs its steps)"
