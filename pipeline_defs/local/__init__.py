"""The local engine: runs a synthesized pipeline definition on this machine, without Docker or an AWS account.

It imports neither the SageMaker SDK nor CDK nor anything from `tools/`: it reads what `cdk synth` wrote.

    assembly = load_assembly(Path("cdk.out"), region)          # assembly.py
    runner = LocalRunner(assembly.definitions[name], pipeline_name=name, state_dir=Path(".local"), region=region,
                         assets=assembly.assets)                # runner.py
    result = runner.run({"InputDataUri": "s3://local-landing/datasets/sample-v1/"})

Modules: assembly (reading cdk.out), planning (run order and the checks before a run), execution (one run),
workspace (what a run's steps work with), processing + training (the job types) and jobs (what they share),
stopping + watchdog (how job processes end), cache, s3 (local buckets), registry (local model registry),
expressions (Get / Std:Join / Std:JsonGet, conditions, parameter types), results, errors.
"""

from pipeline_defs.local.assembly import Assembly, load_assembly, local_values
from pipeline_defs.local.cache import CacheIndex
from pipeline_defs.local.errors import DefinitionError, ExpressionError, LocalRunError, StepFailed
from pipeline_defs.local.execution import STATE_MARKER
from pipeline_defs.local.registry import LocalModelRegistry
from pipeline_defs.local.results import RunResult, StepResult
from pipeline_defs.local.runner import LocalRunner, executions_in_use
from pipeline_defs.local.s3 import LocalS3

__all__ = [
    "STATE_MARKER",
    "Assembly",
    "CacheIndex",
    "DefinitionError",
    "ExpressionError",
    "LocalModelRegistry",
    "LocalRunError",
    "LocalRunner",
    "LocalS3",
    "RunResult",
    "StepFailed",
    "StepResult",
    "executions_in_use",
    "load_assembly",
    "local_values",
]
