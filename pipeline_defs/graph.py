"""A pipeline definition as a graph: its steps, the references between them, and a mermaid rendering.

    graph.mermaid(definition_json)        # the DAG as a mermaid flowchart (`mlops graph`, the README's graphs)
    graph.reference_errors(definition)    # one message per reference to something that does not exist

Steps refer to each other through pipeline expressions in their arguments (`{"Get": "Steps.<Name>..."}`,
`Std:JsonGet` on a step's property file) and through `DependsOn`; condition steps nest their branches. This is the
one reference walker: the graph, `reference_errors` (the definition tests) and the local engine's plan
(`pipeline_defs.local.planning`) all read references through it. Nothing here imports the SageMaker SDK or CDK.
The README's copies of the graphs are refreshed by `tools/readme_graphs.py`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# The pipelines of a unit, in the order they are shown.
PIPELINES = ("training", "evaluation", "scoring")
# The SageMaker pipeline execution variables (`{"Get": "Execution.<name>"}`).
EXECUTION_VARIABLES = frozenset(
    {
        "CurrentDateTime",
        "PipelineArn",
        "PipelineExecutionArn",
        "PipelineExecutionId",
        "PipelineName",
        "ProcessingJobName",
        "StartDateTime",
        "TrainingJobName",
    }
)
_PROPERTY_FILE = re.compile(r"Steps\.[^.]+\.PropertyFiles\.[^.]+")
_OUTPUT_REFERENCE = re.compile(r"ProcessingOutputConfig\.Outputs\['([^']*)'\]")
# Lower-case `end` and these keywords cannot be mermaid node ids.
_MERMAID_KEYWORDS = frozenset({"end", "graph", "flowchart", "subgraph", "class", "classDef", "click", "style"})


# Walking a definition ----------------------------------------------------------------------------
def steps(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step in definition order; a condition step is followed by its true, then its false branch."""

    def walk(step_list: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for step in step_list:
            yield step
            if step.get("Type") == "Condition":
                yield from walk(step["Arguments"].get("IfSteps", []))
                yield from walk(step["Arguments"].get("ElseSteps", []))

    return list(walk(definition.get("Steps", [])))


def own_arguments(step: Mapping[str, Any]) -> Any:
    """What a step itself evaluates: a condition step's conditions, without the steps of its branches."""
    if step.get("Type") == "Condition":
        return step["Arguments"].get("Conditions", [])
    return step.get("Arguments", {})


def json_nodes(value: Any) -> Iterator[Any]:
    """`value` and every object and array inside it, depth first."""
    yield value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        yield from json_nodes(child)


def gets(value: Any) -> Iterator[str]:
    """Every `{"Get": "..."}` reference in `value`, including a `Std:JsonGet`'s property file."""
    for node in json_nodes(value):
        if isinstance(node, dict) and isinstance(node.get("Get"), str):
            yield node["Get"]


def json_gets(value: Any) -> Iterator[tuple[str, str, str]]:
    """(step, property file, path) of every `Std:JsonGet` on a step's property file in `value`."""
    for node in json_nodes(value):
        if isinstance(node, dict) and isinstance(node.get("Std:JsonGet"), dict):
            reference = node["Std:JsonGet"].get("PropertyFile", {}).get("Get", "")
            parts = reference.split(".")
            if len(parts) == 4 and parts[0] == "Steps" and parts[2] == "PropertyFiles":
                yield parts[1], parts[3], node["Std:JsonGet"].get("Path", "")


def referenced_steps(step: Mapping[str, Any]) -> list[str]:
    """Names of the steps whose properties `step` reads, in order of first use."""
    names = [get.split(".")[1] for get in gets(own_arguments(step)) if get.startswith("Steps.")]
    return list(dict.fromkeys(names))


def reference_errors(definition: Mapping[str, Any]) -> list[str]:
    """One message per reference to a step, property file, output, parameter or execution variable that is missing."""
    all_steps = steps(definition)
    by_name = {step["Name"]: step for step in all_steps}
    parameters = sorted(parameter["Name"] for parameter in definition.get("Parameters", []))
    errors = [f"step name '{name}' is used more than once" for name in _duplicates(s["Name"] for s in all_steps)]
    for step in all_steps:
        where = f"step '{step['Name']}'"
        for get in dict.fromkeys(gets(own_arguments(step))):
            errors.extend(f"{where}: {problem}" for problem in _get_errors(get, step, by_name, parameters))
        for node in json_nodes(own_arguments(step)):
            source = node.get("Std:JsonGet", {}).get("PropertyFile") if isinstance(node, dict) else None
            if isinstance(source, dict) and not _PROPERTY_FILE.fullmatch(str(source.get("Get"))):
                errors.append(f"{where}: Std:JsonGet reads {source}, which is not Steps.<step>.PropertyFiles.<name>")
        for name in step.get("DependsOn", []):
            if name not in by_name:
                errors.append(f"{where}: DependsOn names no step '{name}' in the pipeline")
    return errors


def _get_errors(
    get: str, step: Mapping[str, Any], by_name: Mapping[str, Mapping[str, Any]], parameters: list[str]
) -> list[str]:
    """What is wrong with one `{"Get": ...}` reference of `step` ([] when it names something that exists)."""
    root, _, rest = get.partition(".")
    if root == "Parameters":
        return [] if rest in parameters else [f"{get} names no declared parameter (declared: {', '.join(parameters)})"]
    if root == "Execution":
        return [] if rest in EXECUTION_VARIABLES else [f"{get} names no pipeline execution variable"]
    if root == "Steps":
        return _step_reference_errors(get, step, by_name)
    return [f"{get} is neither Parameters.*, Execution.* nor Steps.*"]


def _step_reference_errors(get: str, step: Mapping[str, Any], by_name: Mapping[str, Mapping[str, Any]]) -> list[str]:
    name, _, path = get[len("Steps.") :].partition(".")
    if name not in by_name:
        return [f"{get} names no step '{name}' in the pipeline (steps: {', '.join(by_name)})"]
    if name == step["Name"]:
        return [f"{get} refers to the step itself"]
    target = by_name[name]
    if path.startswith("PropertyFiles."):
        declared = [file["PropertyFileName"] for file in target.get("PropertyFiles", [])]
        file_name = path[len("PropertyFiles.") :]
        if file_name not in declared:
            return [f"{get}: step '{name}' declares no property file '{file_name}' (it declares: {declared or 'none'})"]
    output = _OUTPUT_REFERENCE.match(path)
    if output:
        outputs = [o["OutputName"] for o in target["Arguments"].get("ProcessingOutputConfig", {}).get("Outputs", [])]
        if output.group(1) not in outputs:
            return [f"{get}: step '{name}' has no processing output '{output.group(1)}' (it has: {outputs or 'none'})"]
    return []


def _duplicates(names: Iterable[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


# Mermaid -----------------------------------------------------------------------------------------
def mermaid(definition_json: str) -> str:
    """The pipeline's DAG as a mermaid `flowchart TD`; the same definition always gives the same text.

    Nodes: one per step, labelled with its name and type (a condition is a rhombus, a cached step says so and has
    the `cached` class, a fail step has the `fail` class). Edges: `-->` from each step whose properties a step
    reads, `-.->` for a `DependsOn` without data, `-->|true|` / `-->|false|` from a condition to its branches.
    """
    definition = json.loads(definition_json)
    all_steps = steps(definition)
    ids = _node_ids([step["Name"] for step in all_steps])
    lines = ["flowchart TD"]
    for step in all_steps:
        lines.append(f"  {ids[step['Name']]}{_node_shape(step)}")
    for step in all_steps:
        target = ids[step["Name"]]
        data = referenced_steps(step)
        lines.extend(f"  {ids[source]} --> {target}" for source in data if source in ids)
        lines.extend(
            f"  {ids[source]} -.-> {target}"
            for source in step.get("DependsOn", [])
            if source in ids and source not in data
        )
        if step.get("Type") == "Condition":
            for branch, label in (("IfSteps", "true"), ("ElseSteps", "false")):
                lines.extend(f"  {target} -->|{label}| {ids[s['Name']]}" for s in step["Arguments"].get(branch, []))
    classes = {
        "cached": [ids[s["Name"]] for s in all_steps if s.get("CacheConfig", {}).get("Enabled")],
        "fail": [ids[s["Name"]] for s in all_steps if s.get("Type") == "Fail"],
    }
    styles = {"cached": "stroke-dasharray: 5 5", "fail": "fill:#fdd,stroke:#c00"}
    for name, members in classes.items():
        if members:
            lines.append(f"  classDef {name} {styles[name]}")
            lines.append(f"  class {','.join(members)} {name}")
    return "\n".join(lines) + "\n"


def _node_shape(step: Mapping[str, Any]) -> str:
    label = f"{step['Name']}<br/>{step.get('Type', 'Unknown')}"
    cache = step.get("CacheConfig", {})
    if cache.get("Enabled"):
        label += f"<br/>cached {cache.get('ExpireAfter', '')}".rstrip()
    label = label.replace('"', "#quot;")
    return f'{{"{label}"}}' if step.get("Type") == "Condition" else f'["{label}"]'


def _node_ids(names: list[str]) -> dict[str, str]:
    """A mermaid-safe, unique node id per step name: the name itself where possible."""
    ids: dict[str, str] = {}
    for name in names:
        candidate = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not candidate[:1].isalpha() or candidate in _MERMAID_KEYWORDS:
            candidate = f"step_{candidate}"
        unique, number = candidate, 2
        while unique in ids.values():
            unique, number = f"{candidate}_{number}", number + 1
        ids[name] = unique
    return ids
