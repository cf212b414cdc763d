"""One execution of a pipeline: its parameters, the properties of the steps that ran, and their results.

`Execution.run` walks the plan as SageMaker does: a step starts as soon as every step it needs succeeded and, in a
branch, when its condition took that branch, so independent steps run at the same time (at most `jobs` at once, each
in a worker thread that waits for its job's process). After the first failure no new step starts, the running ones
finish, and the run fails with that step's message. Each step is run by the handler of its type
(`LocalRunner.handlers`), with what the run works with (`Execution.workspace`: buckets, registry, cache, interpreter,
stopping); the handler records the step's properties, which later steps read through `Context`
(`{"Get": "Steps.<step>..."}`, `Std:JsonGet` on a property file). Results are listed in plan order, whatever order
the steps finished in.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from pipeline_defs.local.errors import ExpressionError, LocalRunError, StepFailed
from pipeline_defs.local.expressions import follow
from pipeline_defs.local.planning import PlannedStep
from pipeline_defs.local.results import RunResult, StepResult
from pipeline_defs.local.selective import SelectiveRun
from pipeline_defs.local.workspace import Workspace

STATE_MARKER = ".mlops-local-state"
# A step type's handler: runs the step (name, definition), records its properties, fills in its result.
Handler = Callable[["Execution", str, dict[str, Any], StepResult], None]


class Execution:
    """The state of one run: parameters, step properties, and the steps' results."""

    def __init__(
        self,
        workspace: Workspace,
        steps: Mapping[str, PlannedStep],
        handlers: Mapping[str, Handler],
        parameters: dict[str, Any],
        selective: SelectiveRun | None = None,
        runtime: dict[str, Any] | None = None,
    ) -> None:
        self.workspace = workspace
        self.steps = steps  # the plan: {step name: planned step}, in run order
        self.handlers = handlers
        self.parameters = parameters
        self.selective = selective  # None: every step
        self.id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
        self.started = workspace.clock()
        self.dir = workspace.state_dir / "executions" / workspace.pipeline_name / self.id
        self.properties: dict[str, dict[str, Any]] = {}
        self.property_files: dict[tuple[str, str], Any] = {}
        self.result = RunResult(
            pipeline=workspace.pipeline_name,
            execution_id=self.id,
            parameters=parameters,
            started=self.started.isoformat(),
            execution_dir=str(self.dir),
            source_execution=selective.source if selective else None,
            runtime=runtime,
        )

    def run(self, jobs: int = 1) -> RunResult:
        """Every step that can start, at most `jobs` at a time; returns when no step runs and none can start."""
        begin = time.perf_counter()
        self.dir.mkdir(parents=True)
        (self.workspace.state_dir / STATE_MARKER).touch()
        order = list(self.steps)
        waiting = list(self.selective.selected if self.selective else order)
        statuses: dict[str, str] = {}  # finished steps (Succeeded | Failed) and those that will never start
        if self.selective is not None:  # the source's outputs stand in for the steps the selected ones need
            for name, reused in self.selective.reused.items():
                self.properties[name] = reused.properties
                stand_in = dataclasses.replace(
                    reused,
                    reused_from=self.selective.source,
                    cacheable=False,
                    cache_hit=False,
                    seconds=0.0,
                    job_seconds=0.0,
                )
                self._finished(name, dataclasses.replace(stand_in, work_dir=None), statuses)
        running: dict[Future[StepResult], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="step") as pool:
            while True:
                if self.result.failure_reason is None:  # after a failure nothing new starts
                    for name in self._startable(waiting, statuses, max(1, jobs) - len(running)):
                        running[pool.submit(self._run_step, name, self.steps[name])] = name
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda done: order.index(running[done])):
                    self._finished(running.pop(future), future.result(), statuses)
        self.result.steps.sort(key=lambda step: order.index(step.name))
        self.result.status = "Failed" if self.result.failure_reason else "Succeeded"
        self.result.seconds = time.perf_counter() - begin
        (self.dir / "execution.json").write_text(json.dumps(self.result.to_dict(), indent=2) + "\n")
        return self.result

    def _startable(self, waiting: list[str], statuses: dict[str, str], free: int) -> list[str]:
        """Up to `free` waiting steps that can start now, in plan order; drops those that never will from `waiting`."""
        ready: list[str] = []
        for name in list(waiting):
            readiness = self._readiness(self.steps[name], statuses)
            if readiness == "never":  # as in SageMaker: the branch not taken, or after a need failed
                waiting.remove(name)
                statuses[name] = "NotStarted"
            elif readiness == "ready" and len(ready) < free:
                waiting.remove(name)
                ready.append(name)
        return ready

    def _readiness(self, step: PlannedStep, statuses: dict[str, str]) -> str:
        """ "ready", "wait" (a need has not finished) or "never" (a need did not succeed, or the other branch)."""
        if any(statuses.get(need, "Succeeded") != "Succeeded" for need in step.needs):
            return "never"
        if not all(need in statuses for need in step.needs):
            return "wait"
        taken = step.branch_of is None or self.properties.get(step.branch_of[0], {}).get("Outcome") == step.branch_of[1]
        return "ready" if taken else "never"

    def _finished(self, name: str, result: StepResult, statuses: dict[str, str]) -> None:
        statuses[name] = result.status
        self.result.steps.append(result)
        if result.status == "Failed" and self.result.failure_reason is None:
            self.result.failure_reason = f"step {name}: {result.message}"

    def _run_step(self, name: str, step: PlannedStep) -> StepResult:
        result = StepResult(name=name, type=step.type)
        begin = time.perf_counter()
        try:
            handler = self.handlers.get(step.type)
            if handler is None:  # the plan only admits types with a handler
                raise StepFailed(f"no handler for step type '{step.type}'")
            handler(self, name, step.definition, result)
            result.status = "Succeeded"
            result.properties = self.properties.get(name, {})
        except LocalRunError as error:
            result.status, result.message = "Failed", str(error)
        result.seconds = time.perf_counter() - begin
        state = "cache hit" if result.cache_hit else result.status.lower()
        timing = f" in {result.seconds:.1f}s" if result.work_dir else ""
        detail = f": {result.message}" if result.message else ""
        self.workspace.progress(f"{name} ({step.type}) {state}{timing}{detail}")
        return result

    def context(self, step_type: str, job_name: str | None = None) -> Context:
        """What a step of `step_type` (a job named `job_name`) reads its expressions from."""
        return Context(self, step_type, job_name)

    def property_file(self, step: str, name: str) -> tuple[Any, str]:
        """The parsed JSON of a step's property file, and its URI."""
        definition = self.steps[step].definition
        declared = next(item for item in definition.get("PropertyFiles", []) if item.get("PropertyFileName") == name)
        outputs = self.properties[step].get("ProcessingOutputConfig", {}).get("Outputs", [])
        output = next((o for o in outputs if o.get("OutputName") == declared.get("OutputName")), None)
        if output is None:
            raise ExpressionError(f"property file {name} of step {step} names output {declared.get('OutputName')!r}")
        uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/{declared.get('FilePath')}"
        if (step, name) not in self.property_files:
            self.property_files[(step, name)] = self._read_property_file(step, name, uri)
        return self.property_files[(step, name)], uri

    def _read_property_file(self, step: str, name: str, uri: str) -> Any:
        try:
            return json.loads(self.workspace.s3.read_bytes(uri))
        except StepFailed:
            raise ExpressionError(
                f"property file {name} of step {step} was not written: {uri} does not exist "
                f"(locally: {self.workspace.s3.describe(uri)})"
            ) from None
        except json.JSONDecodeError as error:
            raise ExpressionError(f"property file {name} of step {step} ({uri}) is not JSON: {error}") from None


class Context:
    """Answers a step's `Get` and `Std:JsonGet` during one execution."""

    def __init__(self, execution: Execution, step_type: str, job_name: str | None) -> None:
        self.execution = execution
        self.step_type = step_type
        self.job_name = job_name

    def get(self, reference: str) -> Any:
        execution = self.execution
        root, _, rest = reference.partition(".")
        if root == "Parameters":
            return execution.parameters[rest]
        if root == "Execution":
            return self._execution_variable(rest)
        step, _, path = rest.partition(".")
        if step not in execution.properties:
            raise ExpressionError(f"{reference}: step {step} has not run in this execution")
        return follow(execution.properties[step], path, f"Steps.{step}")

    def json_get(self, step: str, property_file: str, path: str) -> Any:
        if step not in self.execution.properties:
            raise ExpressionError(f"Std:JsonGet on step {step}, which has not run in this execution")
        document, uri = self.execution.property_file(step, property_file)
        return follow(document, path, f"Std:JsonGet on property file {property_file} of step {step} ({uri})")

    def _execution_variable(self, name: str) -> Any:
        execution, workspace = self.execution, self.execution.workspace
        job_variable = {"ProcessingJobName": "Processing", "TrainingJobName": "Training"}.get(name)
        if job_variable:
            if self.step_type != job_variable:
                raise ExpressionError(f"Execution.{name} is defined in {job_variable.lower()} steps only")
            return self.job_name
        return {
            "PipelineName": workspace.pipeline_name,
            "PipelineArn": workspace.pipeline_arn,
            "PipelineExecutionId": execution.id,
            "PipelineExecutionArn": f"{workspace.pipeline_arn}/execution/{execution.id}",
            "StartDateTime": execution.started.isoformat(),
            "CurrentDateTime": workspace.clock().isoformat(),
        }[name]
