"""Step-by-step differences between two SageMaker pipeline definitions, read from synthesized templates.

`cdk diff` shows a changed `AWS::SageMaker::Pipeline` as one changed JSON string. The definitions are decoded by
the assembly reader (`pipeline_defs.local.assembly.pipeline_definitions`: CloudFormation values as stable
references such as `<GetAtt Role.Arn>`, content-addressed asset hashes as `asset:1234abcd`); this module compares
their parameters and steps by name, field by field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from difflib import SequenceMatcher
from typing import Any

SHORT_ASSET = re.compile(r"asset:[0-9a-f]{8}")
# Keys that name the items of a list in a definition (or an endpoint config's variants): such lists are compared
# item by item, by that name.
LIST_ITEM_NAMES = ("InputName", "OutputName", "ChannelName", "PropertyFileName", "VariantName", "Name", "Key")
# Keys of a step outside its `Arguments`; a Condition step's branches hold steps, compared as steps.
BRANCHES = ("IfSteps", "ElseSteps")
NONE = "(none)"


# --- comparing definitions --------------------------------------------------------------------------------------


def diff_definitions(old: dict | None, new: dict | None) -> list[str]:
    """Readable changes from `old` to `new` (None: the pipeline does not exist), in definition order."""
    if old is None and new is None:
        return []
    # A new or removed pipeline lists its parameters and steps; its Version, Metadata and such are not news.
    lines = ["(new pipeline)"] if old is None else ["(pipeline removed)"] if new is None else []
    both = not lines
    old, new = old or {}, new or {}
    for key in _merged(old, new):
        if key == "Parameters":
            lines += _diff_parameters(old.get(key, []), new.get(key, []))
        elif key == "Steps":
            lines += _diff_steps(_flat_steps(old.get(key, [])), _flat_steps(new.get(key, [])))
        elif both:
            lines += diff_values(key, old.get(key, NONE), new.get(key, NONE))
    return lines


def summarize(old: dict | None, new: dict | None) -> str:
    """The changes from `old` to `new` on one line, for a summary: which steps and parameters changed."""
    if new is None:
        return "pipeline removed"
    if old is None:
        return f"new pipeline ({_plural(len(_flat_steps(new.get('Steps', []))), 'step')})"
    old_steps, new_steps = _flat_steps(old.get("Steps", [])), _flat_steps(new.get("Steps", []))
    steps = {
        "changed": [name for name in new_steps if name in old_steps and old_steps[name] != new_steps[name]],
        "added": [name for name in new_steps if name not in old_steps],
        "removed": [name for name in old_steps if name not in new_steps],
    }
    parts = [f"{_plural(len(names), 'step')} {what} ({', '.join(names)})" for what, names in steps.items() if names]
    old_parameters, new_parameters = (_by_key(side.get("Parameters", []), "Name") for side in (old, new))
    parameters = [
        name for name in _merged(old_parameters, new_parameters) if old_parameters.get(name) != new_parameters.get(name)
    ]
    if parameters:
        parts.append(f"{_plural(len(parameters), 'parameter')} changed ({', '.join(parameters)})")
    others = [key for key in _merged(old, new) if key not in ("Steps", "Parameters") and old.get(key) != new.get(key)]
    if others:
        parts.append(f"{', '.join(others)} changed")
    return ", ".join(parts) or "no changes"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _diff_parameters(old: list[dict], new: list[dict]) -> list[str]:
    old_by_name, new_by_name = _by_key(old, "Name"), _by_key(new, "Name")
    lines = []
    for name in _merged(old_by_name, new_by_name):
        if name not in old_by_name:
            parameter = new_by_name[name]
            details = [str(parameter.get("Type", "String"))]
            if "DefaultValue" in parameter:
                details.append(f"default {_text(parameter['DefaultValue'])}")
            lines.append(f"+ parameter {name} ({', '.join(details)})")
        elif name not in new_by_name:
            lines.append(f"- parameter {name}")
        else:
            lines += diff_values(f"parameter {name}", old_by_name[name], new_by_name[name])
    return lines


def _flat_steps(steps: list[dict]) -> dict[str, dict]:
    """{step name: fields} in definition order; a Condition's branch steps follow it, its branches list names.

    A step's fields are its `Arguments` merged with its other keys (CacheConfig, PropertyFiles, DependsOn...),
    so that paths read `Train.ResourceConfig.InstanceType` rather than `Train.Arguments.ResourceConfig...`.
    """
    flat: dict[str, dict] = {}
    for step in steps:
        fields: dict[str, Any] = {}
        for key, value in step.items():
            if key == "Arguments" and isinstance(value, dict):
                fields |= {"Arguments." + k if k in step else k: v for k, v in value.items()}
            elif key != "Name":
                fields[key] = value
        branches = {key: fields[key] for key in BRANCHES if isinstance(fields.get(key), list)}
        for key, branch in branches.items():
            fields[key] = [branch_step.get("Name") for branch_step in branch]
        flat[step.get("Name", "(unnamed)")] = fields
        for branch in branches.values():
            flat |= _flat_steps(branch)
    return flat


def _diff_steps(old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    lines = []
    for name in _merged(old, new):
        if name not in old:
            lines.append(f"+ step {name} ({new[name].get('Type', '?')})")
        elif name not in new:
            lines.append(f"- step {name} ({old[name].get('Type', '?')})")
        else:
            old_code, new_code = _assets(old[name]), _assets(new[name])
            if old_code != new_code:
                lines.append(f"{name} code: {', '.join(old_code) or NONE} -> {', '.join(new_code) or NONE}")
            # The code line already says which assets changed: paths that differ only by an asset hash are noise.
            lines += diff_values(name, old[name], new[name], same=lambda a, b: _masked(a) == _masked(b))
    return lines


def _assets(value: Any) -> list[str]:
    return list(dict.fromkeys(SHORT_ASSET.findall(json.dumps(value))))


def _masked(value: Any) -> str:
    return SHORT_ASSET.sub("asset:*", json.dumps(value))


def diff_values(path: str, old: Any, new: Any, same: Callable[[Any, Any], bool] = lambda a, b: a == b) -> list[str]:
    """`path: old -> new` for each changed leaf; dicts by key, named lists by name, other lists by index.

    The renderer of every path diff (pipeline steps here, other resources' properties in `mlops diff`); with an
    empty `path`, the paths of two dicts start at their keys.
    """
    if same(old, new):
        return []
    # Dicts without a common key are different kinds of value (e.g. `{"Get": ...}` and `{"Std:JsonGet": ...}`).
    if isinstance(old, dict) and isinstance(new, dict) and (old.keys() & new.keys() or not old or not new):
        return [
            line
            for key in _merged(old, new)
            for line in _diff_child(f"{path}.{key}" if path else key, old, new, key, same)
        ]
    if isinstance(old, list) and isinstance(new, list):
        name_key = item_key(old, new)
        if name_key is not None:
            old_items, new_items = _by_key(old, name_key), _by_key(new, name_key)
            return [
                line
                for name in _merged(old_items, new_items)
                for line in _diff_child(f"{path}[{name}]", old_items, new_items, name, same)
            ]
        if len(old) == len(new) or any(isinstance(item, dict | list) for item in old + new):
            old_by_index, new_by_index = dict(enumerate(old)), dict(enumerate(new))
            return [
                line
                for index in range(max(len(old), len(new)))
                for line in _diff_child(f"{path}[{index}]", old_by_index, new_by_index, index, same)
            ]
    old_text, new_text = _text(old), _text(new)
    if old_text == new_text:  # e.g. "1" and 1: show the JSON types
        old_text, new_text = json.dumps(old), json.dumps(new)
    return [f"{path}: {old_text} -> {new_text}"]


def _diff_child(path: str, old: dict, new: dict, key: Any, same: Callable[[Any, Any], bool]) -> list[str]:
    return diff_values(path, old.get(key, NONE), new.get(key, NONE), same)


def item_key(old: list, new: list) -> str | None:
    """The key that names every item of both lists uniquely, if there is one (lists of them match items by it)."""
    items = old + new
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in LIST_ITEM_NAMES:
        if all(isinstance(item.get(key), str) for item in items) and all(
            len({item[key] for item in side}) == len(side) for side in (old, new)
        ):
            return key
    return None


def _by_key(items: list[dict], key: str) -> dict[Any, dict]:
    return {item.get(key): item for item in items}


def _merged(old: Iterable, new: Iterable) -> list:
    """The keys of both, in definition order: new order, each removed key where it stood in the old order."""
    old_keys, new_keys = list(old), list(new)
    merged = []
    matcher = SequenceMatcher(None, old_keys, new_keys, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        merged += old_keys[old_start:old_end] if tag != "insert" else []
        merged += new_keys[new_start:new_end] if tag not in ("equal", "delete") else []
    return list(dict.fromkeys(merged))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value or '""'
    return json.dumps(value, ensure_ascii=False)
