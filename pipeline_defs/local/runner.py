"""Runs a deployed pipeline definition on this machine: no Docker, no AWS account, the same JSON CloudFormation gets.

    assembly = load_assembly(Path("cdk.out"), region="eu-west-1")
    runner = LocalRunner(assembly.definitions["churn-dev-training"], pipeline_name="churn-dev-training",
                         state_dir=Path(".local"), region="eu-west-1", assets=assembly.assets)
    result = runner.run({"InputDataUri": "s3://local-landing/datasets/sample-v1/"})

Everything lives in the state dir:

    s3/<bucket>/<key>                   the buckets (`s3.py`); the CDK asset bucket is read from the assembly's
                                        staged files (`asset.<hash>.<ext>`, found through its asset manifests)
    registry/<group>/<version>.json     the model registry (`registry.py`)
    executions/<pipeline>/<id>/         execution.json, and steps/<step>/ with each job's dirs and log.txt
    cache/<pipeline>.json               the step cache index (`cache.py`)

Steps run in dependency order (`planning.py`), independent ones in parallel (at most `jobs` at once, default: the
machine's cores), each by the handler of its type (`HANDLERS`):
processing and training jobs (`jobs.py`, `training.py`); Condition, Fail and RegisterModel are evaluated here
(RegisterModel writes a version into the local registry). Any other step type is an error, before any step runs,
that names the step and its type: nothing is skipped silently.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_defs.local.assembly import LOCAL_ACCOUNT
from pipeline_defs.local.cache import CacheIndex
from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.execution import Execution, Handler
from pipeline_defs.local.expressions import condition_holds, evaluate, resolve_parameters, text
from pipeline_defs.local.jobs import run_processing
from pipeline_defs.local.planning import plan
from pipeline_defs.local.registry import LocalModelRegistry
from pipeline_defs.local.results import RunResult, StepResult
from pipeline_defs.local.s3 import LocalS3
from pipeline_defs.local.training import run_training


# Steps evaluated here --------------------------------------------------------------------------------------------
def run_condition(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
    context = execution.context("Condition")
    outcomes = [condition_holds(condition, context) for condition in step["Arguments"].get("Conditions", [])]
    outcome = all(outcomes)
    execution.properties[name] = {"Outcome": outcome}
    branch = "IfSteps" if outcome else "ElseSteps"
    names = [branch_step.get("Name") for branch_step in step["Arguments"].get(branch, [])]
    result.message = f"{str(outcome).lower()}: runs {branch} ({', '.join(names) or 'none'})"


def run_fail(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
    message = text(evaluate(step.get("Arguments", {}).get("ErrorMessage", ""), execution.context("Fail")))
    execution.properties[name] = {"ErrorMessage": message}
    raise StepFailed(message)


def run_register_model(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
    registry = execution.runner.registry
    request = evaluate(step.get("Arguments", {}), execution.context("RegisterModel"))
    package = registry.register(request, execution.runner.clock())
    execution.properties[name] = package
    group, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
    result.message = f"{group} version {version} ({package['ModelApprovalStatus']})"
    result.outputs = {"model package": str(registry.path(group, version))}


# Which code runs a step of each type: the step types the local runner runs, in the order its messages list them.
HANDLERS: Mapping[str, Handler] = {
    "Processing": run_processing,
    "Training": run_training,
    "Condition": run_condition,
    "Fail": run_fail,
    "RegisterModel": run_register_model,
}


class LocalRunner:
    """Executes one pipeline definition; `run` may be called again (later runs can hit the cache)."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        *,
        pipeline_name: str,
        state_dir: Path,
        region: str,
        assets: Mapping[str, Path] | None = None,
        progress: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        python: str = sys.executable,
        jobs: int | None = None,
    ) -> None:
        self.definition = definition
        self.pipeline_name = pipeline_name
        self.state_dir = Path(state_dir).resolve()
        self.region = region
        self.s3 = LocalS3(self.state_dir / "s3", assets)
        self.registry = LocalModelRegistry(self.state_dir / "registry", region)
        self.cache = CacheIndex(self.state_dir / "cache" / f"{pipeline_name}.json")
        self.progress: Callable[[str], None] = _one_line_at_a_time(progress or (lambda line: None))
        self.clock = clock
        self.python = python
        self.jobs = jobs or os.cpu_count() or 1
        self.handlers = HANDLERS
        self.plan = plan(definition, runnable=tuple(self.handlers))

    @property
    def pipeline_arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:pipeline/{self.pipeline_name}"

    def run(self, parameters: Mapping[str, Any] | None = None) -> RunResult:
        """One execution. Raises DefinitionError before any step runs when the definition or a parameter is bad."""
        values = resolve_parameters(self.definition.get("Parameters", []), parameters or {})
        return Execution(self, values).run(self.jobs)


def _one_line_at_a_time(progress: Callable[[str], None]) -> Callable[[str], None]:
    """`progress`, called by one step at a time: parallel steps report from their own threads."""
    lock = threading.Lock()

    def report(line: str) -> None:
        with lock:
            progress(line)

    return report
