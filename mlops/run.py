"""`mlops run training|evaluation --local`: execute a synthesized definition on this machine.

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
from mlops.local import result_json, run_summary, runner_for


def command_run(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError("`run` executes a pipeline on this machine: pass --local (to run in AWS: mlops start)")
    runner = runner_for(
        args.assembly, config, args.pipeline, args.state_dir, use_cache=not args.no_cache, jobs=args.jobs
    )
    parameters = parse_parameters(args.param)
    require_input_data(runner, parameters, args.state_dir, config)
    result = runner.run(parameters)
    print(json.dumps(result_json(result, runner.s3), indent=2) if args.json else run_summary(result, runner.s3))
    if result.status == "Stopped":
        print(
            f"error: {result.failure_reason}: execution {result.execution_id} is recorded as Stopped "
            f"({shown(Path(result.execution_dir) / 'execution.json')})",
            file=sys.stderr,
        )
    return 0 if result.succeeded else 1
