"""`mlops run training|evaluation --local`: execute a synthesized definition on this machine."""

from __future__ import annotations

import argparse
import json

from config import EnvironmentConfig
from mlops.common import UsageError, parse_parameters
from mlops.dataset import require_input_data
from mlops.local import result_json, run_summary, runner_for


def command_run(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError("`run` executes a pipeline on this machine: pass --local (to run in AWS: mlops start)")
    runner = runner_for(args.assembly, config, args.pipeline, args.state_dir, jobs=args.jobs)
    parameters = parse_parameters(args.param)
    require_input_data(runner, parameters, args.state_dir)
    result = runner.run(parameters)
    print(json.dumps(result_json(result, runner.s3), indent=2) if args.json else run_summary(result, runner.s3))
    return 0 if result.succeeded else 1
