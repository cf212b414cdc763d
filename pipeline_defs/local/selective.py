"""A local selective run: the selected steps run, the source execution's outputs stand in for the steps they need.

    source = SelectiveRun.prepare(definition, state_dir, pipeline, s3, from_step="Evaluate")  # or steps=[...]
    runner.run(parameters, selective=source)

As in SageMaker (`pipeline_defs.selection`), the source is an execution of the same pipeline: the newest one that
succeeded, or the one named. It is refused, before any step runs and with one message, when it ran another
definition (cdk.out was synthesized again from other code or config since), when it lacks a needed step's outputs
(the step did not succeed there, or the run predates recorded properties) or when those outputs are gone from the
local buckets. The run's parameters default to the source's. It neither reads nor writes the step cache.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_defs.local.errors import DefinitionError
from pipeline_defs.local.results import StepResult
from pipeline_defs.local.s3 import LocalS3
from pipeline_defs.selection import SelectionError, definition_fingerprint, reused_steps, select

WHOLE_RUN = "run the whole pipeline once (without --from/--steps)"


@dataclass(frozen=True)
class SelectiveRun:
    source: str  # the source execution's id
    selected: tuple[str, ...]
    reused: Mapping[str, StepResult]  # the source's results of the steps the selected ones need
    parameters: Mapping[str, Any] = field(default_factory=dict)  # the source's

    @classmethod
    def prepare(
        cls,
        definition: Mapping[str, Any],
        state_dir: Path,
        pipeline: str,
        s3: LocalS3,
        *,
        from_step: str | None = None,
        steps: Sequence[str] | None = None,
        source: str | None = None,
    ) -> SelectiveRun:
        try:
            selected = select(definition, from_step=from_step, steps=steps)
        except SelectionError as error:
            raise DefinitionError(str(error)) from None
        document = _source_document(state_dir / "executions" / pipeline, source)
        execution = document["execution_id"]
        if document.get("definition_fingerprint") != definition_fingerprint(definition):
            raise DefinitionError(
                f"execution {execution} ran another definition of {pipeline} (cdk.out was synthesized from other "
                f"code or config since): {WHOLE_RUN}, or pass --source with an execution of this definition"
            )
        ran = {step["name"]: step for step in document.get("steps", [])}
        reused = {}
        for name in reused_steps(definition, selected):
            step = ran.get(name)
            if step is None or step.get("status") != "Succeeded" or "properties" not in step:
                raise DefinitionError(
                    f"execution {execution} has no outputs of step {name} (it did not run or did not succeed there): "
                    f"pass --source with an execution where it succeeded, or {WHOLE_RUN}"
                )
            gone = [uri for uri in step.get("outputs", {}).values() if uri.startswith("s3://") and not s3.objects(uri)]
            if gone:
                raise DefinitionError(f"output {gone[0]} of step {name} (execution {execution}) is gone: {WHOLE_RUN}")
            reused[name] = StepResult(**step)
        return cls(execution, tuple(selected), reused, dict(document.get("parameters", {})))


def _source_document(folder: Path, source: str | None) -> dict[str, Any]:
    """The execution.json of execution `source`, or of the newest execution that succeeded."""
    documents: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*/execution.json")) if folder.is_dir() else []:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a run killed while writing it: not a source
        if isinstance(document, dict):
            documents.append(document)
    if source is not None:
        found = [document for document in documents if document.get("execution_id") == source]
        if not found:
            newest = sorted(documents, key=lambda document: str(document.get("started", "")), reverse=True)[:5]
            known = ", ".join(str(document.get("execution_id")) for document in newest) or "none"
            raise DefinitionError(f"no execution {source} of {folder.name} in this state dir (newest: {known})")
        return found[0]
    succeeded = [document for document in documents if document.get("status") == "Succeeded"]
    if not succeeded:
        raise DefinitionError(f"{folder.name} has no succeeded execution in this state dir to start from: {WHOLE_RUN}")
    return max(succeeded, key=lambda document: str(document.get("started", "")))
