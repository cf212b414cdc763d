"""`mlops executions prune --keep N [--pipeline P] [--dry-run]`: delete all but the newest N local executions.

Each local run keeps `<state dir>/executions/<pipeline>/<id>/`: its execution.json and every step's work dir, with
the copies of its inputs (several times the dataset's size). Pruning deletes whole execution folders, newest kept
per pipeline (by start time; a run killed before it wrote execution.json counts by its folder's time). What a run
produced in the local buckets (models, reports) and the cache entries that point there stay, so cache hits and
registered versions are unaffected. It refuses while a run is in progress in the state dir.
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.common import UsageError, pipeline_name, shown
from pipeline_defs.graph import PIPELINES
from pipeline_defs.local import executions_in_use


def command_executions(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if args.keep < 0:
        raise UsageError(f"--keep {args.keep}: keep 0 or more executions")
    root: Path = args.state_dir / "executions"
    report = {}
    with executions_in_use(args.state_dir, exclusive=True):
        for pipeline in [args.pipeline] if args.pipeline else PIPELINES:
            name = pipeline_name(config, pipeline)
            report[name] = prune(root / name, args.keep, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "pipelines": report}, indent=2))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for name, pruned in report.items():
        print(
            f"{name}: {verb} {len(pruned['removed'])} execution(s), {pruned['bytes_freed'] / 1e6:.1f} MB; "
            f"kept {len(pruned['kept'])} ({shown(root / name)})"
        )
    return 0


def prune(folder: Path, keep: int, *, dry_run: bool) -> dict[str, Any]:
    """Delete all but the `keep` newest execution folders under `folder`; what was kept, removed and freed."""
    if not folder.is_dir():
        return {"kept": [], "removed": [], "bytes_freed": 0}
    executions = sorted((path for path in folder.iterdir() if path.is_dir()), key=started_at, reverse=True)
    kept, removed = executions[:keep], executions[keep:]
    freed = sum(_size(path) for path in removed)
    if not dry_run:
        for path in removed:
            shutil.rmtree(path)
    return {"kept": [path.name for path in kept], "removed": [path.name for path in removed], "bytes_freed": freed}


def started_at(execution: Path) -> datetime:
    """When the execution started (execution.json), else when its folder was created."""
    try:
        started = datetime.fromisoformat(json.loads((execution / "execution.json").read_text())["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return datetime.fromtimestamp(execution.stat().st_mtime, UTC)
    return started if started.tzinfo else started.replace(tzinfo=UTC)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
