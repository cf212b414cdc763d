"""What a local execution reports: one `RunResult` with a `StepResult` per step that started (JSON via `to_dict`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepResult:
    name: str
    type: str
    status: str = "Executing"  # Succeeded | Failed | Stopped
    cacheable: bool = False  # CacheConfig.Enabled on a step type that caches
    cache_hit: bool = False
    cache_source: str | None = None  # the execution whose outputs a cache hit reused
    seconds: float = 0.0
    job_seconds: float = 0.0  # of `seconds`, how long the job's own process ran
    message: str = ""  # failure reason, condition outcome, fail message, registered version
    outputs: dict[str, str] = field(default_factory=dict)  # {output name: S3 URI or local file}
    work_dir: str | None = None
    # What later steps read of it ({"Get": "Steps.<step>..."}): kept so a selective run can stand in for the step.
    properties: dict[str, Any] = field(default_factory=dict)
    reused_from: str | None = None  # in a selective run: the source execution whose outputs stand in for the step
    interpreter: str | None = None  # a job's: the Python its process ran with (the run's `runtime` has its versions)


@dataclass
class RunResult:
    pipeline: str
    execution_id: str
    parameters: dict[str, Any]
    started: str
    execution_dir: str
    status: str = "Executing"  # Succeeded | Failed | Stopped
    failure_reason: str | None = None
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    # {"<step>.<report>.<key>": number} from each step's property files, {"<step>.<metric>": value} from training jobs.
    metrics: dict[str, float] = field(default_factory=dict)
    registered: dict[str, Any] | None = None  # {group, version, status, arn} of the model package it registered
    # `selection.definition_fingerprint` of the definition it ran: a selective run needs its source's to be equal.
    definition_fingerprint: str = ""
    source_execution: str | None = None  # a selective run's source execution
    # The step runtime the jobs ran with: {"interpreter", "python", "libraries": {name: version}} (step_runtime.py).
    runtime: dict[str, Any] | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def step(self, name: str) -> StepResult:
        for result in self.steps:
            if result.name == name:
                return result
        raise KeyError(f"step {name} did not run in {self.execution_id}; ran: {[s.name for s in self.steps]}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def numbers(document: Any, prefix: str) -> dict[str, float]:
    """{"<prefix>.<key>[.<key>...]": value} of every number in a JSON document (booleans are not numbers)."""
    if isinstance(document, dict):
        found: dict[str, float] = {}
        for key, value in document.items():
            found |= numbers(value, f"{prefix}.{key}")
        return found
    if isinstance(document, (int, float)) and not isinstance(document, bool):
        return {prefix: float(document)}
    return {}


def code_objects(properties: Mapping[str, Any]) -> list[str]:
    """The content-addressed code objects a job ran (their object names: `<hash>.<ext>`): its code input and step
    library (processing), its source tarball (training); [] for steps without code."""
    found = [
        str(item.get("S3Input", {}).get("S3Uri", "")).rsplit("/", 1)[-1]
        for item in properties.get("ProcessingInputs", [])
        if item.get("InputName") in ("code", "steplib")
    ]
    submitted = properties.get("HyperParameters", {}).get("sagemaker_submit_directory")
    if isinstance(submitted, str):
        found.append(submitted.strip('"').rsplit("/", 1)[-1])
    return found
