"""The README's pipeline graphs, regenerated from the dev unit's definitions (a developer script).

    .venv/bin/python -m tools.readme_graphs                  # print every pipeline's graph (dev unit)
    .venv/bin/python -m tools.readme_graphs --update-readme  # rewrite the graphs between the README markers
    .venv/bin/python -m tools.readme_graphs --check          # exit 1 when the README's graphs are stale

The rendering is `pipeline_defs.graph.mermaid` (the library `mlops graph` uses too); building the definitions
loads the SageMaker SDK, which is why this lives in tools/ rather than beside the graph code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from pipeline_defs.graph import mermaid

README = Path(__file__).resolve().parents[1] / "README.md"
UPDATE_COMMAND = ".venv/bin/python -m tools.readme_graphs --update-readme"


def pipeline_graphs(definitions: Mapping[str, str]) -> dict[str, str]:
    """{pipeline kind: mermaid} of {pipeline kind: definition JSON}."""
    return {pipeline: mermaid(definition) for pipeline, definition in definitions.items()}


def dev_graphs() -> dict[str, str]:
    """Every graph of the dev unit. Asset hashes do not appear in a graph, so a code edit keeps them."""
    # Imported here: building definitions loads the SageMaker SDK, which rendering alone does not need.
    from config import load_config
    from pipeline_defs.definitions import build_definitions
    from pipeline_defs.packaging import content_addressed_uris

    config = load_config("dev")
    code_uris = content_addressed_uris(f"cdk-hnb659fds-assets-{config.account}-{config.region}")
    definitions = build_definitions(config, code_uris)
    return pipeline_graphs({kind: definitions[name] for kind, name in config.pipeline_names().items()})


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
        for pipeline, text in graphs.items():
            print(f"%% {pipeline}\n{text}")
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
