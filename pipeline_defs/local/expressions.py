"""Pipeline definition values, evaluated the way SageMaker Pipelines evaluates them at run time.

    parameters = resolve_parameters(definition["Parameters"], {"MaxRegression": "0.05"})
    value = evaluate({"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Parameters.ExperimentId"}]}}, context)
    holds = condition_holds({"Type": "GreaterThan", "LeftValue": 2, "RightValue": 1}, context)

A `Context` answers the two questions a value can ask: `get` (a `{"Get": "Parameters.* | Execution.* | Steps.*"}`
reference) and `json_get` (a `Std:JsonGet` on a step's property file). What a value refers to is found by the one
reference walker, `pipeline_defs.graph`; `check` and `check_conditions` evaluate a value without answering
anything, so that an unsupported function or condition type stops a run before any step starts.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from pipeline_defs.local.errors import DefinitionError, ExpressionError

PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}
# `Outputs['train']`, `FinalMetricDataList['validation:roc_auc']`: list items named by one of these keys.
ITEM_NAME_KEYS = ("OutputName", "InputName", "ChannelName", "MetricName", "PropertyFileName", "Name", "Key")
_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_:-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class Context(Protocol):
    def get(self, reference: str) -> Any: ...

    def json_get(self, step: str, property_file: str, path: str) -> Any: ...


# Parameters ------------------------------------------------------------------------------------------------------
def resolve_parameters(declared: Iterable[Mapping[str, Any]], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """{name: typed value}: each declared parameter's override, else its default. Strings are parsed by type."""
    declared = list(declared)
    names = [str(parameter.get("Name")) for parameter in declared]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise DefinitionError(f"unknown parameter(s) {', '.join(unknown)}; the pipeline declares: {', '.join(names)}")
    kinds = {}
    for parameter in declared:
        name, kind = parameter.get("Name"), parameter.get("Type", "String")
        if kind not in PARAMETER_TYPES:
            raise DefinitionError(f"parameter {name} has type '{kind}'; expected one of {', '.join(PARAMETER_TYPES)}")
        if "DefaultValue" in parameter:
            typed(name, kind, parameter["DefaultValue"], parse=False, source="its DefaultValue")
        kinds[name] = kind
    values = {name: typed(name, kinds[name], value, parse=isinstance(value, str)) for name, value in overrides.items()}
    for parameter in declared:
        name = parameter["Name"]
        if name not in values:
            if "DefaultValue" not in parameter:
                raise DefinitionError(
                    f"parameter {name} ({kinds[name]}) has no default value: pass one (--param {name}=...)"
                )
            values[name] = typed(name, kinds[name], parameter["DefaultValue"], parse=False)
    return values


def typed(name: Any, kind: str, value: Any, *, parse: bool, source: str = "the value") -> Any:
    """`value` as a `kind` parameter value; `parse` reads it from text (a command line's `K=V`)."""
    problem = f"parameter {name} is {kind}, but {source} {value!r}"
    if kind == "String":
        if not isinstance(value, str):
            raise DefinitionError(f"{problem} is not a string")
        return value
    if parse:
        return _parsed(kind, value.strip(), problem)
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise DefinitionError(f"{problem} is not a boolean")
        return value
    if kind == "Integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise DefinitionError(f"{problem} is not an integer")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(f"{problem} is not a number")
    return float(value)


def _parsed(kind: str, text: str, problem: str) -> bool | int | float:
    if kind == "Boolean":
        if text.lower() not in ("true", "false"):
            raise DefinitionError(f"{problem} is not true or false")
        return text.lower() == "true"
    try:
        number = int(text) if kind == "Integer" else float(text)
    except ValueError:
        raise DefinitionError(f"{problem} is not {'an integer' if kind == 'Integer' else 'a number'}") from None
    if not math.isfinite(number):
        raise DefinitionError(f"{problem} is not a finite number")
    return number


# Values ----------------------------------------------------------------------------------------------------------
def evaluate(value: Any, context: Context) -> Any:
    """`value` with every pipeline expression in it replaced by its value."""
    if isinstance(value, list):
        return [evaluate(item, context) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Get":
            if not isinstance(argument, str):
                raise DefinitionError(f"Get needs a reference string, got {argument!r}")
            return context.get(argument)
        if function == "Std:Join":
            return _join(argument, context)
        if function == "Std:JsonGet":
            return _json_get(argument, context)
        if function.startswith("Std:"):
            raise DefinitionError(f"pipeline function '{function}' is not supported (supported: Std:Join, Std:JsonGet)")
    return {key: evaluate(item, context) for key, item in value.items()}


def text(value: Any) -> str:
    """A value as Std:Join writes it: strings as they are, other values as JSON (true, 0.5, null)."""
    return value if isinstance(value, str) else json.dumps(value)


def _join(argument: Any, context: Context) -> str:
    if not isinstance(argument, dict) or not isinstance(argument.get("Values"), list):
        raise DefinitionError(f"Std:Join needs {{'On': separator, 'Values': [...]}}, got {argument!r}")
    separator = evaluate(argument.get("On", ""), context)
    return text(separator).join(text(evaluate(item, context)) for item in argument["Values"])


def _json_get(argument: Any, context: Context) -> Any:
    source = argument.get("PropertyFile") if isinstance(argument, dict) else None
    reference = source.get("Get") if isinstance(source, dict) else None
    parts = reference.split(".") if isinstance(reference, str) else []
    if len(parts) != 4 or parts[0] != "Steps" or parts[2] != "PropertyFiles":
        raise DefinitionError(
            f"Std:JsonGet reads {source!r}; the local runner supports {{'Get': 'Steps.<step>.PropertyFiles.<name>'}}"
        )
    if argument.get("Path") in (None, ""):
        raise DefinitionError(f"Std:JsonGet on {reference} has no Path")
    return context.json_get(parts[1], parts[3], evaluate(argument["Path"], context))


# Conditions ------------------------------------------------------------------------------------------------------
def condition_holds(condition: Any, context: Context) -> bool:
    """One condition of a Condition step. Every operand is evaluated (no short cut), so bad references always show."""
    kind = _condition_type(condition)
    if kind in COMPARISONS:
        left, right = evaluate(condition.get("LeftValue"), context), evaluate(condition.get("RightValue"), context)
        return _compare(kind, left, right)
    if kind == "Not":
        return not condition_holds(condition.get("Condition"), context)
    if kind == "Or":
        return any([condition_holds(inner, context) for inner in condition.get("Conditions", [])])
    query, values = evaluate(condition.get("QueryValue"), context), evaluate(condition.get("Values"), context)
    return any(_compare("Equals", query, value) for value in values)


def _condition_type(condition: Any) -> str:
    """The type of a condition; DefinitionError when it is not one the runner evaluates."""
    kind = condition.get("Type") if isinstance(condition, dict) else None
    if kind in COMPARISONS or kind in ("Not", "Or", "In"):
        return str(kind)
    raise DefinitionError(
        f"condition type {kind!r} is not supported (supported: {', '.join([*COMPARISONS, 'Not', 'Or', 'In'])})"
    )


def _compare(kind: str, left: Any, right: Any) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    same_kind = numbers or type(left) is type(right)
    if kind == "Equals":
        return same_kind and bool(left == right)
    if not same_kind or isinstance(left, bool | dict | list) or left is None:
        raise ExpressionError(f"condition {kind} cannot compare {left!r} with {right!r}")
    return COMPARISONS[kind](left, right)


# Checks before a run ---------------------------------------------------------------------------------------------
class _Unanswered:
    """A Context that answers nothing: evaluating with it only checks that every function is supported."""

    def get(self, reference: str) -> None:
        return None

    def json_get(self, step: str, property_file: str, path: str) -> None:
        return None


def check(value: Any) -> None:
    """DefinitionError when `value` uses a pipeline function the runner cannot evaluate, or uses one wrongly."""
    evaluate(value, _Unanswered())


def check_conditions(conditions: Any) -> None:
    """`check` for a Condition step's list of conditions: every condition type and every operand."""
    if not isinstance(conditions, list):
        raise DefinitionError(f"Conditions must be a list, got {conditions!r}")
    for condition in conditions:
        _check_condition(condition)


def _check_condition(condition: Any) -> None:
    kind = _condition_type(condition)
    if kind == "Not":
        _check_condition(condition.get("Condition"))
    elif kind == "Or":
        check_conditions(condition.get("Conditions", []))
    else:
        check({key: item for key, item in condition.items() if key != "Type"})


# Paths -----------------------------------------------------------------------------------------------------------
def path_tokens(path: str) -> list[str | int]:
    """`A.B['x'][0].C` -> ["A", "B", "x", 0, "C"]; a leading `$.` (JSONPath root) is allowed."""
    path = path.removeprefix("$").removeprefix(".") if path.startswith("$") else path
    tokens: list[str | int] = []
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if not match or (position == 0 and path.startswith(".")):
            raise ExpressionError(f"cannot read path {path!r} at {path[position:]!r}")
        name, index, quoted, double_quoted = match.groups()
        tokens.append(int(index) if index is not None else next(t for t in (name, quoted, double_quoted) if t))
        position = match.end()
    return tokens


def follow(document: Any, path: Any, where: str) -> Any:
    """The value at `path` in `document`; a list item may be named by its OutputName, ChannelName, ... ."""
    if not isinstance(path, str):
        raise ExpressionError(f"{where}: the path {path!r} is not text")
    value = document
    for token in path_tokens(path):
        value = _child(value, token, path, where)
    return value


def _child(value: Any, token: str | int, path: str, where: str) -> Any:
    if isinstance(value, dict) and isinstance(token, str):
        if token in value:
            return value[token]
        raise ExpressionError(
            f"{where}: path {path!r} has no {token!r} (there: {', '.join(map(str, value)) or 'none'})"
        )
    if isinstance(value, list) and isinstance(token, int):
        if 0 <= token < len(value):
            return value[token]
        raise ExpressionError(f"{where}: path {path!r}: index {token} is outside the {len(value)} item(s)")
    if isinstance(value, list) and isinstance(token, str):
        names = [next((item[k] for k in ITEM_NAME_KEYS if k in item), None) for item in value if isinstance(item, dict)]
        for item, name in zip(value, names, strict=False):
            if name == token:
                return item
        raise ExpressionError(f"{where}: path {path!r} has no item {token!r} (items: {', '.join(map(str, names))})")
    raise ExpressionError(f"{where}: path {path!r} cannot read {token!r} from {type(value).__name__} {value!r}")
