"""`mlops cache clear [--pipeline training|evaluation]`: forget the local step cache; the next run re-runs every step.

Only the index goes (`<state dir>/cache/<pipeline>.json`); the outputs it pointed to stay where they are. To re-run
once without forgetting anything, use `mlops run ... --no-cache` instead.
"""

from __future__ import annotations

import argparse
import json

from config import EnvironmentConfig
from mlops.common import pipeline_name, shown
from pipeline_defs.graph import PIPELINES
from pipeline_defs.local import CacheIndex


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
