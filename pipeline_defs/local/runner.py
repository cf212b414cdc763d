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
    executions.lock                     held shared by each run while it runs; pruning executions (and the demo
                                        re-creating its folder) takes it exclusively, so refuses during a run

Steps run in dependency order (`planning.py`), independent ones in parallel (at most `jobs` at once, default: the
machine's cores), each by the handler of its type (`HANDLERS`): processing, training and transform jobs
(`processing.py`, `training.py`, `transform.py`, sharing `jobs.py`) and the Model step before a transform; Condition,
Fail and RegisterModel are evaluated here (RegisterModel writes a version into the local registry). Any other step
type is an error, before any step runs, that names the step and its type: nothing is skipped silently.

Before any step runs, the parameters are checked by their rules (`contract.PARAMETER_RULES`: enums, ranges, the
ExperimentId and InputDataUri forms), the state dir must be a writable folder and the cache index readable. SIGINT or
SIGTERM during a run stops it (`stopping.py`): the run is recorded as Stopped in its execution.json. Each run hands its
steps a `Workspace`: the state dir's buckets, registry and cache, the interpreter, the region, the clock, progress and
its `Stopping`. Jobs run with the step runtime's interpreter (`step_runtime.py`: the image's library versions),
probed once per run: the result's `runtime` names it and its library versions. Should `mlops` be killed outright
(SIGKILL), the run's watchdog kills its running jobs (`watchdog.py`).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_defs.atomic_file import make_writable_folder, write_atomically
from pipeline_defs.contract import checked_parameter
from pipeline_defs.local.cache import CacheIndex
from pipeline_defs.local.errors import DefinitionError, LocalRunError, StepFailed
from pipeline_defs.local.execution import Execution, Handler
from pipeline_defs.local.expressions import condition_holds, evaluate, resolve_parameters, text
from pipeline_defs.local.files import locked
from pipeline_defs.local.planning import plan
from pipeline_defs.local.processing import run_processing
from pipeline_defs.local.registry import LocalModelRegistry
from pipeline_defs.local.results import RunResult, StepResult, numbers
from pipeline_defs.local.s3 import LocalS3
from pipeline_defs.local.selective import SelectiveRun
from pipeline_defs.local.step_runtime import probe, steps_python
from pipeline_defs.local.stopping import Stopping
from pipeline_defs.local.training import run_training
from pipeline_defs.local.transform import run_model, run_transform
from pipeline_defs.local.workspace import Workspace
from pipeline_defs.selection import definition_fingerprint


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
    registry = execution.workspace.registry
    request = evaluate(step.get("Arguments", {}), execution.context("RegisterModel"))
    package = registry.register(request, execution.workspace.clock())
    execution.properties[name] = package
    group, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
    result.message = f"{group} version {version} ({package['ModelApprovalStatus']})"
    execution.result.registered = {
        "group": group,
        "version": version,
        "status": package["ModelApprovalStatus"],
        "arn": package["ModelPackageArn"],
    }
    result.outputs = {"model package": str(registry.path(group, version))}


# Which code runs a step of each type: the step types the local runner runs, in the order its messages list them.
HANDLERS: Mapping[str, Handler] = {
    "Processing": run_processing,
    "Training": run_training,
    "Model": run_model,
    "Transform": run_transform,
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
        python: str | None = None,
        use_cache: bool = True,
        jobs: int | None = None,
    ) -> None:
        self.definition = definition
        self.pipeline_name = pipeline_name
        self.state_dir = Path(state_dir).resolve()
        self.region = region
        self.s3 = LocalS3(self.state_dir / "s3", assets)
        self.registry = LocalModelRegistry(self.state_dir / "registry", region)
        self.cache = CacheIndex.of(self.state_dir, pipeline_name)
        self.progress: Callable[[str], None] = _one_line_at_a_time(progress or (lambda line: None))
        self.clock = clock
        self.python = python  # None: the step runtime (step_runtime.py), looked up when a run starts
        self.use_cache = use_cache  # False: every step runs (and records fresh cache entries)
        self.jobs = jobs or os.cpu_count() or 1
        self.handlers = {kind: _reporting(handler) for kind, handler in HANDLERS.items()}
        self.plan = plan(definition, runnable=tuple(self.handlers))

    def run(self, parameters: Mapping[str, Any] | None = None, selective: SelectiveRun | None = None) -> RunResult:
        """One execution. Raises DefinitionError before any step runs when the definition or a parameter is bad.

        `selective` (`SelectiveRun.prepare`): only its selected steps run, on its source's outputs and, unless given
        here, its source's parameters; the step cache is neither read nor written."""
        given = {**(selective.parameters if selective else {}), **(parameters or {})}
        values = resolve_parameters(self.definition.get("Parameters", []), given)
        try:
            values = {name: checked_parameter(name, value) for name, value in values.items()}
        except ValueError as error:
            raise DefinitionError(str(error)) from None
        check_state_dir(self.state_dir)
        self.cache.entries()  # a damaged index stops the run here, with the fix, rather than in some step
        python = self.python or steps_python()
        runtime = probe(python)  # once per run: every job of the run executes with this interpreter
        workspace = self.workspace(Stopping(), python, selective=selective is not None)
        execution = Execution(workspace, self.plan, self.handlers, values, runtime=runtime, selective=selective)
        execution.result.definition_fingerprint = definition_fingerprint(self.definition)
        with executions_in_use(self.state_dir), workspace.stopping.active():
            result = execution.run(self.jobs)
        if workspace.stopping.signal_name is not None and not result.succeeded:
            _record_stopped(result, f"stopped by {workspace.stopping.signal_name}")
        return result

    def workspace(self, stopping: Stopping, python: str, *, selective: bool = False) -> Workspace:
        """What the steps of a run work with; `stopping`: the run's; `python`: the interpreter its jobs run with. A
        selective run leaves the cache alone."""
        return Workspace(
            pipeline_name=self.pipeline_name,
            region=self.region,
            state_dir=self.state_dir,
            s3=self.s3,
            registry=self.registry,
            cache=self.cache,
            use_cache=self.use_cache and not selective,
            record_cache=not selective,
            python=python,
            clock=self.clock,
            progress=self.progress,
            stopping=stopping,
        )


def executions_in_use(state_dir: Path, *, exclusive: bool = False) -> AbstractContextManager[None]:
    """Every run holds this lock shared; whatever deletes executions holds it exclusively, or stops (LocalRunError)."""
    return locked(state_dir / "executions", shared=not exclusive, wait=not exclusive)


def _reporting(handler: Handler) -> Handler:
    """`handler`, started only while the run is not stopping, that adds the numbers of the step's reports to the run."""

    @functools.wraps(handler)
    def run_step(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
        execution.workspace.stopping.check()
        handler(execution, name, step, result)
        for metric in execution.properties.get(name, {}).get("FinalMetricDataList", []):
            execution.result.metrics[f"{name}.{metric['MetricName']}"] = metric["Value"]
        for declared in step.get("PropertyFiles", []):
            try:
                document, _ = execution.property_file(name, str(declared.get("PropertyFileName")))
            except LocalRunError:
                continue  # a missing report fails the step that reads it, with its own message
            execution.result.metrics |= numbers(document, f"{name}.{declared.get('PropertyFileName')}")

    return run_step


def _record_stopped(result: RunResult, reason: str) -> None:
    """The run (and the step a signal interrupted) as Stopped, in the result and in its execution.json."""
    result.status, result.failure_reason = "Stopped", reason
    for step in result.steps:
        if step.status == "Failed" and step.message == reason:
            step.status = "Stopped"
    write_atomically(Path(result.execution_dir) / "execution.json", json.dumps(result.to_dict(), indent=2) + "\n")


def check_state_dir(state_dir: Path) -> None:
    """LocalRunError (one line, with the fix) unless `state_dir` is, or can become, a folder this process can write."""
    existing = next((folder for folder in (state_dir, *state_dir.parents) if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise LocalRunError(f"the state dir {state_dir} cannot be a folder ({existing} is a file): pick another one")
    try:
        make_writable_folder(state_dir)
    except OSError as error:
        raise LocalRunError(
            f"the state dir {state_dir} is not writable ({error.strerror}): pick another --state-dir"
        ) from None


def _one_line_at_a_time(progress: Callable[[str], None]) -> Callable[[str], None]:
    """`progress`, called by one step at a time: parallel steps report from their own threads."""
    lock = threading.Lock()

    def report(line: str) -> None:
        with lock:
            progress(line)

    return report
