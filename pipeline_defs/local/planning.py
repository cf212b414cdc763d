"""The plan of a definition: its steps in the order they run, and every check that needs no run.

    steps = plan(definition, runnable=("Processing", "Training", ...))   # {step name: PlannedStep}, in run order
    seconds, chain = critical_path(steps, {"Preprocess": 2.0, ...})      # the longest chain of needs

Steps run in dependency order: data references (the one reference walker, `pipeline_defs.graph`), `DependsOn`, and a
branch step after its condition; otherwise in definition order. Before any step runs, a definition is rejected
(`DefinitionError`, one message) for a step type nothing runs, a duplicate or missing name, a reference to
something that does not exist, an unsupported function or condition, a malformed ExpireAfter, or a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_defs.contract import retry_policy_errors
from pipeline_defs.graph import reference_errors, referenced_steps
from pipeline_defs.local.cache import expire_after
from pipeline_defs.local.errors import DefinitionError
from pipeline_defs.local.expressions import check, check_conditions

Branch = tuple[str, bool]  # (condition step, outcome that runs the step)


@dataclass(frozen=True)
class PlannedStep:
    definition: dict[str, Any]
    needs: tuple[str, ...]  # steps that must succeed first
    branch_of: Branch | None

    @property
    def type(self) -> str:
        return str(self.definition.get("Type", ""))


def plan(definition: Mapping[str, Any], runnable: Collection[str]) -> dict[str, PlannedStep]:
    """{step name: planned step} in the order the steps run; `runnable`: the step types there is a handler for."""
    found: dict[str, tuple[dict[str, Any], Branch | None]] = {}
    _walk(definition.get("Steps", []), None, runnable, found)
    # References to steps, property files, outputs, parameters and execution variables: the one checker
    # the definition tests use too.
    errors = reference_errors(definition)
    if errors:
        raise DefinitionError(errors[0])
    planned: dict[str, PlannedStep] = {}
    for name, (step, branch_of) in found.items():
        arguments = step.get("Arguments", {})
        if step["Type"] == "Condition":  # its own values: the conditions, not the steps of its branches
            check_conditions(arguments.get("Conditions", []))
        else:
            check(arguments)
        cache = step.get("CacheConfig") or {}
        if cache.get("Enabled"):
            expire_after(cache)
        # Accepted as SageMaker accepts them; never applied here: a local script failure is not a retryable error.
        retry_errors = retry_policy_errors(step.get("RetryPolicies", []))
        if retry_errors:
            raise DefinitionError(f"step '{name}': {retry_errors[0]}")
        needs = [*referenced_steps(step), *step.get("DependsOn", []), *([branch_of[0]] if branch_of else [])]
        planned[name] = PlannedStep(step, tuple(dict.fromkeys(needs)), branch_of)
    return {name: planned[name] for name in _topological_order(planned)}


def _walk(
    steps: Any,
    branch_of: Branch | None,
    runnable: Collection[str],
    found: dict[str, tuple[dict[str, Any], Branch | None]],
) -> None:
    """Every step into `found`, a condition's IfSteps then ElseSteps right after it."""
    if not isinstance(steps, list):
        raise DefinitionError(f"steps must be a list, got {steps!r}")
    for step in steps:
        name = _checked_name(step, found)
        kind = step.get("Type")
        if kind not in runnable:
            raise DefinitionError(
                f"step '{name}' has type '{kind}', which the local runner cannot run (it runs {', '.join(runnable)})"
            )
        found[name] = (step, branch_of)
        if kind == "Condition":
            arguments = step.get("Arguments", {})
            _walk(arguments.get("IfSteps", []), (name, True), runnable, found)
            _walk(arguments.get("ElseSteps", []), (name, False), runnable, found)


def _checked_name(step: Any, found: Mapping[str, object]) -> str:
    if not isinstance(step, dict):
        raise DefinitionError(f"a step must be an object, got {step!r}")
    name = step.get("Name")
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"a step has no Name: {json.dumps(step)[:120]}")
    if name in found:
        raise DefinitionError(f"step name '{name}' is used more than once")
    return name


def _topological_order(planned: Mapping[str, PlannedStep]) -> list[str]:
    """Definition order, except that a step comes after every step it needs."""
    order: list[str] = []
    remaining = list(planned)
    while remaining:
        ready = next((name for name in remaining if all(need in order for need in planned[name].needs)), None)
        if ready is None:
            raise DefinitionError(
                f"the steps {', '.join(remaining)} cannot run: their references and DependsOn form a cycle"
            )
        order.append(ready)
        remaining.remove(ready)
    return order


def critical_path(planned: Mapping[str, PlannedStep], seconds: Mapping[str, float]) -> tuple[float, list[str]]:
    """The longest chain of needs through the steps that ran (`seconds`: {step: its time}): no schedule, however
    parallel, finishes the run sooner. Returns its total and its steps in run order."""
    longest: dict[str, tuple[float, list[str]]] = {}
    for name, step in planned.items():  # plan order: a step's needs come before it
        if name not in seconds:
            continue
        before = max((longest[need] for need in step.needs if need in longest), key=lambda c: c[0], default=(0.0, []))
        longest[name] = (before[0] + seconds[name], [*before[1], name])
    return max(longest.values(), key=lambda chain: chain[0], default=(0.0, []))
