"""Which steps a selective run runs, and which it takes from a source execution: one rule for AWS and for local runs.

    selected = select(definition, from_step="Evaluate")        # Evaluate and every step after it
    selected = select(definition, steps=["Evaluate", "Score"])  # exactly these (checked, see below)
    reused = reused_steps(definition, selected)                # what they read from the source execution

SageMaker's selective execution (StartPipelineExecution's SelectiveExecutionConfig) runs the selected steps and takes
the outputs of the steps they depend on from a source execution of the same pipeline; every step on a path between
two selected steps must be selected too. `--from STEP` selects STEP and every step that depends on it, directly or
not (a branch step depends on its condition), which always satisfies that rule; `--steps` is checked against it.
A step's dependencies are its references (the one reference walker, `pipeline_defs.graph`), its `DependsOn` and, in
a branch, its condition step. Nothing here imports the SageMaker SDK or CDK.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_defs.graph import referenced_steps, steps

# StartPipelineExecution's limit on SelectedSteps.
MAX_SELECTED_STEPS = 50


class SelectionError(ValueError):
    """A step selection the pipeline cannot run; the message names the step and what to do."""


def definition_fingerprint(definition: Mapping[str, Any]) -> str:
    """SHA-256 of a definition's canonical JSON: two executions ran the same definition when these are equal."""
    return hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def dependencies(definition: Mapping[str, Any]) -> dict[str, list[str]]:
    """{step: the steps it directly depends on}, every step in definition order (branches after their condition)."""
    needs: dict[str, list[str]] = {}
    for step in steps(definition):
        needs.setdefault(step["Name"], [])
        needs[step["Name"]] += [*referenced_steps(step), *step.get("DependsOn", [])]
        if step.get("Type") == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                for branch_step in step["Arguments"].get(branch, []):
                    needs.setdefault(branch_step["Name"], []).append(step["Name"])
    return {name: list(dict.fromkeys(found)) for name, found in needs.items()}


def select(
    definition: Mapping[str, Any], *, from_step: str | None = None, steps: Sequence[str] | None = None
) -> list[str]:
    """The steps to run, in definition order: `from_step` and all that depend on it, or exactly `steps`."""
    if (from_step is None) == (steps is None):
        raise SelectionError("pass one of --from STEP or --steps A,B")
    needs = dependencies(definition)
    wanted = [from_step] if from_step is not None else list(steps or [])
    unknown = [name for name in wanted if name not in needs]
    if unknown:
        raise SelectionError(f"the pipeline has no step '{unknown[0]}' (its steps: {', '.join(needs)})")
    chosen = _descendants(needs, from_step) | {from_step} if from_step is not None else set(wanted)
    between = sorted(
        name
        for name in needs
        if name not in chosen
        and any(name in _descendants(needs, start) for start in chosen)
        and any(end in _descendants(needs, name) for end in chosen)
    )
    if between:
        raise SelectionError(
            f"step {between[0]} lies between selected steps: select it too (--steps), or use --from to select a "
            "step and everything after it"
        )
    ordered = [name for name in needs if name in chosen]
    if len(ordered) > MAX_SELECTED_STEPS:
        raise SelectionError(f"{len(ordered)} steps selected; a selective run runs at most {MAX_SELECTED_STEPS}")
    return ordered


def reused_steps(definition: Mapping[str, Any], selected: Sequence[str]) -> list[str]:
    """The steps the selected ones depend on, directly or not, that are not selected: the source execution's outputs
    stand in for theirs. In definition order."""
    needs = dependencies(definition)
    ancestors: set[str] = set()
    pending = [need for name in selected for need in needs[name]]
    while pending:
        name = pending.pop()
        if name not in ancestors:
            ancestors.add(name)
            pending += needs[name]
    return [name for name in needs if name in ancestors and name not in selected]


def _descendants(needs: Mapping[str, list[str]], start: str) -> set[str]:
    """Every step that depends on `start`, directly or not."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, direct in needs.items():
            if name not in found and (start in direct or found.intersection(direct)):
                found.add(name)
                changed = True
    return found
