"""`mlops run training|evaluation --local`: execute a synthesized definition on this machine.

`--from STEP` / `--steps A,B` run only those steps, on the outputs and parameters of a source execution (the newest
that succeeded, or `--source ID`), as SageMaker's selective execution does (`pipeline_defs.local.selective`).

Exit 0 when the run succeeded, 1 when it failed or was stopped (SIGINT/SIGTERM: one `error:` line, the run is
recorded as Stopped), 2 for bad input found before any step ran.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config import EnvironmentConfig
from mlops.common import UsageError, parse_parameters, shown
from mlops.dataset import require_input_data
from mlops.local import result_json, run_and_track, run_summary, runner_for
from pipeline_defs.local import LocalRunner
from pipeline_defs.local.selective import SelectiveRun


def command_run(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError("`run` executes a pipeline on this machine: pass --local (to run in AWS: mlops start)")
    runner = runner_for(
        args.assembly, config, args.pipeline, args.state_dir, use_cache=not args.no_cache, jobs=args.jobs
    )
    parameters = parse_parameters(args.param)
    selective = selective_run(args, runner)
    if selective is None:  # a selective run reads its source's outputs, not necessarily the data
        require_input_data(runner, parameters, args.state_dir, config)
    result = run_and_track(runner, parameters, selective)
    print(json.dumps(result_json(result, runner.s3), indent=2) if args.json else run_summary(result, runner.s3))
    if result.status == "Stopped":
        print(
            f"error: {result.failure_reason}: execution {result.execution_id} is recorded as Stopped "
            f"({shown(Path(result.execution_dir) / 'execution.json')})",
            file=sys.stderr,
        )
    return 0 if result.succeeded else 1


def selective_run(args: argparse.Namespace, runner: LocalRunner) -> SelectiveRun | None:
    """`--from STEP` / `--steps A,B` (with `--source ID`) as a selective run on a source execution; None: every step."""
    if args.from_step is None and args.steps is None:
        if args.source is not None:
            raise UsageError("--source names the execution a selective run starts from: add --from STEP or --steps A,B")
        return None
    if args.no_cache:
        raise UsageError("--no-cache: a selective run (--from/--steps) never uses the cache; drop one of them")
    return SelectiveRun.prepare(
        runner.definition,
        runner.state_dir,
        runner.pipeline_name,
        runner.s3,
        from_step=args.from_step,
        steps=args.steps,
        source=args.source,
    )
