"""A pipeline definition as a graph: its steps, the references between them, and a mermaid rendering.

    .venv/bin/python -m pipeline_defs.graph                  # print both pipelines' graphs (dev unit)
    .venv/bin/python -m pipeline_defs.graph --update-readme  # rewrite the graphs between the README markers
    .venv/bin/python -m pipeline_defs.graph --check          # exit 1 when the README's graphs are stale

Steps refer to each other through pipeline expressions in their arguments (`{"Get": "Steps.<Name>..."}`,
`Std:JsonGet` on a step's property file) and through `DependsOn`; condition steps nest their branches. The same
walk serves the graph and `reference_errors`, which checks that every reference names something that exists.
Nothing here imports the SageMaker SDK except the CLI, which builds the dev unit's definitions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
PIPELINES = ("training", "evaluation")
UPDATE_COMMAND = ".venv/bin/python -m pipeline_defs.graph --update-readme"
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
# SageMaker's documented cache-key attributes per step type: tags, instance types and output paths are not
# among them, and a per-run value in any of them defeats caching.
CACHE_KEY_ATTRIBUTES = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
}
_PROPERTY_FILE = re.compile(r"Steps\.[^.]+\.PropertyFiles\.[^.]+")
_OUTPUT_REFERENCE = re.compile(r"ProcessingOutputConfig\.Outputs\['([^']*)'\]")
# Lower-case `end` and these keywords cannot be mermaid node ids.
_MERMAID_KEYWORDS = frozenset({"end", "graph", "flowchart", "subgraph", "class", "classDef", "click", "style"})


# Walking a definition ----------------------------------------------------------------------------
def steps(definition: Mapping[str, Any]) -> list[dict]:
    """Every step in definition order; a condition step is followed by its true, then its false branch."""

    def walk(step_list: list[dict]) -> Iterator[dict]:
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
            root, _, rest = get.partition(".")
            if root == "Parameters":
                if rest not in parameters:
                    errors.append(f"{where}: {get} names no declared parameter (declared: {', '.join(parameters)})")
            elif root == "Execution":
                if rest not in EXECUTION_VARIABLES:
                    errors.append(f"{where}: {get} names no pipeline execution variable")
            elif root == "Steps":
                errors.extend(f"{where}: {problem}" for problem in _step_reference_errors(get, step, by_name))
            else:
                errors.append(f"{where}: {get} is neither Parameters.*, Execution.* nor Steps.*")
        for node in json_nodes(own_arguments(step)):
            source = node.get("Std:JsonGet", {}).get("PropertyFile") if isinstance(node, dict) else None
            if isinstance(source, dict) and not _PROPERTY_FILE.fullmatch(str(source.get("Get"))):
                errors.append(f"{where}: Std:JsonGet reads {source}, which is not Steps.<step>.PropertyFiles.<name>")
        for name in step.get("DependsOn", []):
            if name not in by_name:
                errors.append(f"{where}: DependsOn names no step '{name}' in the pipeline")
    return errors


def _step_reference_errors(get: str, step: Mapping[str, Any], by_name: Mapping[str, Mapping]) -> list[str]:
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


def _duplicates(names: Iterator[str]) -> list[str]:
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


# README ------------------------------------------------------------------------------------------
def pipeline_graphs(training_definition: str, evaluation_definition: str) -> dict[str, str]:
    return {"training": mermaid(training_definition), "evaluation": mermaid(evaluation_definition)}


def dev_graphs() -> dict[str, str]:
    """Both graphs of the dev unit. Asset hashes do not appear in a graph, so a code edit keeps them."""
    # Imported here: building definitions loads the SageMaker SDK, which `mermaid` alone does not need.
    from config import load_config
    from pipeline_defs.definitions import build_definitions
    from pipeline_defs.packaging import content_addressed_uris

    config = load_config("dev")
    code_uris = content_addressed_uris(f"cdk-hnb659fds-assets-{config.account}-{config.region}")
    definitions = build_definitions(config, code_uris)
    return pipeline_graphs(definitions[config.training_pipeline_name], definitions[config.evaluation_pipeline_name])


def _markers(pipeline: str) -> tuple[str, str]:
    return f"<!-- pipeline-graph:{pipeline}:start -->", f"<!-- pipeline-graph:{pipeline}:end -->"


def with_graphs(readme: str, graphs: Mapping[str, str]) -> str:
    """`readme` with each pipeline's mermaid block between its markers; raises ValueError if markers are missing."""
    for pipeline, graph in graphs.items():
        start, end = _markers(pipeline)
        if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
            raise ValueError(f"README needs exactly one '{start}' followed by one '{end}'")
        head, rest = readme.split(start)
        tail = rest.split(end)[1]
        readme = f"{head}{start}\n```mermaid\n{graph}```\n{end}{tail}"
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the pipelines' DAGs (dev unit) as mermaid.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--update-readme", action="store_true", help=f"rewrite the graphs in {README.name}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 when the graphs in {README.name} are stale")
    args = parser.parse_args(argv)

    graphs = dev_graphs()
    if not (args.update_readme or args.check):
        for pipeline in PIPELINES:
            print(f"%% {pipeline}\n{graphs[pipeline]}")
        return 0
    current = README.read_text()
    try:
        updated = with_graphs(current, graphs)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if updated != current:
            print(f"{README.name}: the pipeline graphs are stale; run `{UPDATE_COMMAND}`", file=sys.stderr)
            return 1
        print(f"{README.name}: the pipeline graphs are up to date")
        return 0
    if updated != current:
        README.write_text(updated)
    print(f"{README.name}: pipeline graphs {'updated' if updated != current else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
