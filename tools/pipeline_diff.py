"""Step-by-step differences between two SageMaker pipeline definitions, read from synthesized templates.

`cdk diff` shows a changed `AWS::SageMaker::Pipeline` as one changed JSON string. This module decodes the
definition (the `Fn::Sub` body, inline or in the `Custom::CDKBucketDeployment` that writes it to S3), renders
CloudFormation values as stable references (`<GetAtt Role.Arn>`) and shortens content-addressed asset hashes
(`asset:1234abcd`), then compares parameters and steps by name, field by field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from difflib import SequenceMatcher
from typing import Any

PIPELINE_TYPE = "AWS::SageMaker::Pipeline"
BUCKET_DEPLOYMENT_TYPE = "Custom::CDKBucketDeployment"
# CDK file assets are named by the SHA-256 of their content: a changed script is a new hash.
ASSET_HASH = re.compile(r"(?<![0-9a-f])([0-9a-f]{8})[0-9a-f]{56}(?![0-9a-f])")
SHORT_ASSET = re.compile(r"asset:[0-9a-f]{8}")
# Keys that name the items of a list in a definition: such lists are compared item by item, by that name.
LIST_ITEM_NAMES = ("InputName", "OutputName", "ChannelName", "PropertyFileName", "Name", "Key")
# Keys of a step outside its `Arguments`; a Condition step's branches hold steps, compared as steps.
BRANCHES = ("IfSteps", "ElseSteps")
NONE = "(none)"


# --- reading templates ------------------------------------------------------------------------------------------


def pipeline_definitions(template: dict, variables: Mapping[str, str] | None = None) -> dict[str, dict]:
    """{pipeline name: definition} of every `AWS::SageMaker::Pipeline` in a synthesized template.

    CloudFormation values in the definition become readable references, asset hashes become `asset:<8 hex>`.
    An S3-located definition is read from the BucketDeployment that writes it; without one, the definition is
    its S3 location (so a changed key still shows).
    `variables` ({Fn::Sub variable: value}) is for running a definition rather than reviewing it (the local
    runner): each variable takes its value from there, an unknown one is an error, and asset hashes stay whole.
    """
    resources = template.get("Resources", {})
    definitions = {}
    for resource in resources.values():
        if resource.get("Type") != PIPELINE_TYPE:
            continue
        properties = resource.get("Properties", {})
        name = render(properties.get("PipelineName", "(unnamed)"))
        source = properties.get("PipelineDefinition", {})
        if "PipelineDefinitionBody" in source:
            definition = _decode(source["PipelineDefinitionBody"], name, variables)
        else:
            location = source.get("PipelineDefinitionS3Location", {})
            body = _deployed_body(resources, location)
            if body is None and variables is not None:
                raise ValueError(f"pipeline {name}: no definition body in the template, only {_rendered(location)}")
            definition = (
                _decode(body, name, variables)
                if body is not None
                else {"PipelineDefinitionS3Location": _rendered(location)}
            )
        definitions[name] = definition if variables is not None else _shorten_assets(definition)
    return definitions


def _decode(body: Any, name: str, variables: Mapping[str, str] | None = None) -> dict:
    # Rendered references and values go into JSON strings: escape them so that the body stays valid JSON.
    escape = lambda text: json.dumps(text)[1:-1]  # noqa: E731
    if variables is not None and isinstance(body, dict) and "Fn::Sub" in body:
        text, values = body["Fn::Sub"] if isinstance(body["Fn::Sub"], list) else (body["Fn::Sub"], {})
        unknown = sorted(set(values) - set(variables))
        if unknown:
            raise ValueError(f"pipeline {name}: no value for the Fn::Sub variable(s) {', '.join(unknown)}")
        body = {"Fn::Sub": [text, {variable: escape(variables[variable]) for variable in values}]}
    return json.loads(render(body, escape=escape))


def _deployed_body(resources: dict, location: dict) -> Any:
    """The definition body that the BucketDeployment referenced by `location` writes, if there is one."""
    for logical_id in _referenced_resources(location):
        resource = resources.get(logical_id, {})
        if resource.get("Type") != BUCKET_DEPLOYMENT_TYPE:
            continue
        for markers in resource.get("Properties", {}).get("SourceMarkers", []):
            for value in markers.values():
                if isinstance(value, dict) and "Fn::Sub" in value:
                    return value
    return None


def _referenced_resources(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "Ref" in value:
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield target[0] if isinstance(target, list) else str(target).split(".")[0]
        for item in value.values():
            yield from _referenced_resources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _referenced_resources(item)


def _shorten_assets(value: Any) -> Any:
    if isinstance(value, str):
        return ASSET_HASH.sub(r"asset:\1", value)
    if isinstance(value, dict):
        return {key: _shorten_assets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten_assets(item) for item in value]
    return value


# --- rendering CloudFormation values ----------------------------------------------------------------------------


def render(value: Any, escape: Callable[[str], str] = lambda text: text) -> str:
    """A CloudFormation value as text: literal strings as they are, references as `<...>` (passed to `escape`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        return _render_sub(value["Fn::Sub"], escape)
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(render(part, escape) for part in parts)
    return escape(_reference(value))


def _render_sub(arguments: Any, escape: Callable[[str], str]) -> str:
    text, variables = (arguments[0], arguments[1]) if isinstance(arguments, list) else (arguments, {})

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("!"):  # `${!Literal}` is the escaped text `${Literal}`
            return "${" + name[1:] + "}"
        if name in variables:
            return render(variables[name], escape)
        return escape(f"<GetAtt {name}>" if "." in name else f"<Ref {name}>")

    return re.sub(r"\$\{([^}]*)\}", substitute, text)


def _reference(value: Any) -> str:
    """`<Ref X>`, `<GetAtt X.Arn>`, `<import name>`, ... for a CloudFormation intrinsic (any JSON value)."""
    if not isinstance(value, dict) or len(value) != 1:
        return json.dumps(value)
    (function, arguments), *_ = value.items()
    if function == "Ref":
        return f"<Ref {arguments}>"
    if function == "Fn::GetAtt":
        return f"<GetAtt {'.'.join(arguments) if isinstance(arguments, list) else arguments}>"
    if function == "Fn::ImportValue":
        return f"<import {render(arguments)}>"
    if function == "Fn::GetStackOutput":
        return f"<output {arguments.get('StackName')}.{arguments.get('OutputName')}>"
    if function in ("Fn::Sub", "Fn::Join"):
        return render(value)
    if function == "Fn::Select" and isinstance(arguments, list) and "Fn::Split" in _as_dict(arguments[-1]):
        # CDK's idiom for a part of an ARN: read left to right, e.g. <import x-arn | split ":" [5] | split "/" [0]>
        delimiter, source = arguments[1]["Fn::Split"]
        inner = render(source)
        inner = inner[:-1] if inner.startswith("<") and inner.endswith(">") else f"<{json.dumps(inner)}"
        return f"{inner} | split {json.dumps(delimiter)} [{arguments[0]}]>"
    rendered = [render(item) for item in arguments] if isinstance(arguments, list) else render(arguments)
    return f"<{function.removeprefix('Fn::')} {json.dumps(rendered)}>"


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _rendered(value: Any) -> Any:
    """A structure (e.g. an S3 location) with each CloudFormation value in it rendered."""
    if isinstance(value, dict) and not any(key == "Ref" or key.startswith("Fn::") for key in value):
        return {key: _rendered(item) for key, item in value.items()}
    return render(value)


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
            lines += _diff_values(key, old.get(key, NONE), new.get(key, NONE))
    return lines


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
            lines += _diff_values(f"parameter {name}", old_by_name[name], new_by_name[name])
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
            lines += _diff_values(name, old[name], new[name], same=lambda a, b: _masked(a) == _masked(b))
    return lines


def _assets(value: Any) -> list[str]:
    return list(dict.fromkeys(SHORT_ASSET.findall(json.dumps(value))))


def _masked(value: Any) -> str:
    return SHORT_ASSET.sub("asset:*", json.dumps(value))


def _diff_values(path: str, old: Any, new: Any, same: Callable[[Any, Any], bool] = lambda a, b: a == b) -> list[str]:
    """`path: old -> new` for each changed leaf; dicts by key, named lists by name, other lists by index."""
    if same(old, new):
        return []
    # Dicts without a common key are different kinds of value (e.g. `{"Get": ...}` and `{"Std:JsonGet": ...}`).
    if isinstance(old, dict) and isinstance(new, dict) and (old.keys() & new.keys() or not old or not new):
        return [line for key in _merged(old, new) for line in _diff_child(f"{path}.{key}", old, new, key, same)]
    if isinstance(old, list) and isinstance(new, list):
        item_key = _item_key(old, new)
        if item_key is not None:
            old_items, new_items = _by_key(old, item_key), _by_key(new, item_key)
            return [
                line
                for name in _merged(old_items, new_items)
                for line in _diff_child(f"{path}[{name}]", old_items, new_items, name, same)
            ]
        if len(old) == len(new) or any(isinstance(item, dict | list) for item in old + new):
            old_items, new_items = dict(enumerate(old)), dict(enumerate(new))
            return [
                line
                for index in range(max(len(old), len(new)))
                for line in _diff_child(f"{path}[{index}]", old_items, new_items, index, same)
            ]
    old_text, new_text = _text(old), _text(new)
    if old_text == new_text:  # e.g. "1" and 1: show the JSON types
        old_text, new_text = json.dumps(old), json.dumps(new)
    return [f"{path}: {old_text} -> {new_text}"]


def _diff_child(path: str, old: dict, new: dict, key: Any, same: Callable[[Any, Any], bool]) -> list[str]:
    return _diff_values(path, old.get(key, NONE), new.get(key, NONE), same)


def _item_key(old: list, new: list) -> str | None:
    """The key that names every item of both lists uniquely, if there is one."""
    items = old + new
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in LIST_ITEM_NAMES:
        if all(isinstance(item.get(key), str) for item in items) and all(
            len({item[key] for item in side}) == len(side) for side in (old, new)
        ):
            return key
    return None


def _by_key(items: list[dict], key: str) -> dict[str, dict]:
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
