"""`mlops graph training|evaluation`: a synthesized pipeline's DAG as mermaid."""

from __future__ import annotations

import argparse
import json

from config import EnvironmentConfig
from mlops.common import UsageError, pipeline_name, shown
from mlops.local import read_assembly
from pipeline_defs.graph import mermaid


def command_graph(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    assembly = read_assembly(args.assembly, config)
    name = pipeline_name(config, args.pipeline)
    if name not in assembly.definitions:
        raise UsageError(f"{shown(args.assembly)} has no pipeline {name}: run `make synth` first")
    graph = mermaid(json.dumps(assembly.definitions[name]))
    if args.json:
        print(json.dumps({"pipeline": name, "mermaid": graph}))
    else:
        print(graph, end="")
    return 0
