"""Local runs as the commands show them: the runner for a unit's pipeline, the run summary, the JSON document."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.common import UsageError, pipeline_name, shown, stderr_progress, unit_context
from pipeline_defs.local import Assembly, LocalRunError, LocalRunner, LocalS3, RunResult, load_assembly


def read_assembly(directory: Path, config: EnvironmentConfig) -> Assembly:
    """The synthesized unit in `directory`; one line saying how to make it when there is none."""
    if not (directory / "manifest.json").is_file():
        raise UsageError(
            f"{shown(directory)} holds no synthesized unit (no manifest.json): run `make synth` "
            f"(or `cdk synth {unit_context(config)} --output {shown(directory)}`) first"
        )
    return load_assembly(directory, config.region)


def runner_for(
    assembly_dir: Path,
    config: EnvironmentConfig,
    pipeline: str,
    state_dir: Path,
    progress: Callable[[str], None] = stderr_progress,
    jobs: int | None = None,
) -> LocalRunner:
    assembly = read_assembly(assembly_dir, config)
    name = pipeline_name(config, pipeline)
    if name not in assembly.definitions:
        raise UsageError(
            f"{shown(assembly_dir)} has no pipeline {name} (it has: {', '.join(assembly.definitions) or 'none'}); "
            f"synthesize it first: cdk synth {unit_context(config)}"
        )
    return LocalRunner(
        assembly.definitions[name],
        pipeline_name=name,
        state_dir=state_dir,
        region=config.region,
        assets=assembly.assets,
        progress=progress,
        jobs=jobs,
    )


def run_summary(result: RunResult, s3: LocalS3) -> str:
    """The table of steps (status, cache, duration) and where each output and log went."""
    lines = [f"Pipeline {result.pipeline}, execution {result.execution_id}: {result.status} in {result.seconds:.1f}s"]
    rows = [("step", "type", "status", "cache", "duration", "note")]
    for step in result.steps:
        cache = ("hit" if step.cache_hit else "miss") if step.cacheable else "-"
        duration = f"{step.seconds:.1f}s" if step.work_dir else "-"
        note = f"outputs of execution {step.cache_source}" if step.cache_hit else step.message
        rows.append((step.name, step.type, step.status, cache, duration, note))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines += [
        ("  " + "  ".join(value.ljust(widths[i]) for i, value in enumerate(row[:5])) + f"  {row[5]}").rstrip()
        for row in rows
    ]
    outputs = [(f"{step.name}/{name}", where) for step in result.steps for name, where in step.outputs.items()]
    if outputs:
        lines.append("Outputs and reports:")
        width = max(len(label) for label, _ in outputs)
        lines += [f"  {label.ljust(width)}  {shown(local_location(s3, where))}" for label, where in outputs]
    lines.append(f"Logs: {shown(Path(result.execution_dir) / 'steps')}/<step>/log.txt")
    if result.failure_reason:
        lines.append(f"Failed: {result.failure_reason}")
    return "\n".join(lines)


def result_json(result: RunResult, s3: LocalS3) -> dict[str, Any]:
    document: dict[str, Any] = result.to_dict()
    for step in document["steps"]:
        step["local_outputs"] = {name: local_location(s3, where) for name, where in step["outputs"].items()}
    return document


def local_location(s3: LocalS3, where: str) -> str:
    """Where an output (an S3 URI or already a local file) is on this machine."""
    return s3.describe(where) if where.startswith("s3://") else where


def read_json(s3: LocalS3, uri: str) -> Any:
    """A JSON report in a local bucket, or None when it is not there (or not JSON)."""
    try:
        return json.loads(s3.read_bytes(uri))
    except (LocalRunError, ValueError):
        return None
