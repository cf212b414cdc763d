"""Local runs as the commands show them: the runner for a unit's pipeline, the run summary, the JSON document."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.common import UsageError, default_assembly, pipeline_name, shown, stderr_progress, synth_command
from pipeline_defs.local import Assembly, LocalRunError, LocalRunner, LocalS3, RunResult, load_assembly
from pipeline_defs.packaging import STEPS_DIR, code_bytes

# stacks/pipelines_stack.py names the asset of each step code object `Code-<code name>` (its display name in cdk.out).
CODE_ASSET_PREFIX = "Code-"


def read_assembly(directory: Path, config: EnvironmentConfig, steps_dir: Path = STEPS_DIR) -> Assembly:
    """The synthesized unit in `directory`; one line saying how to make it when there is none or it is stale."""
    if not (directory / "manifest.json").is_file():
        synth = f"`{synth_command(config, directory)}`"
        if not config.sandbox:  # make synth writes an environment's unit into cdk.out; a sandbox has its own folder
            synth = f"`make synth{'' if config.env_name == 'dev' else f' ENV={config.env_name}'}` (or {synth})"
        raise UsageError(f"{shown(directory)} holds no synthesized unit (no manifest.json): run {synth} first")
    assembly = load_assembly(directory, config.region)
    check_code_current(assembly, steps_dir)
    return assembly


def check_code_current(assembly: Assembly, steps_dir: Path = STEPS_DIR) -> None:
    """UsageError when the step code staged in the assembly is not what `steps_dir` ships now (or was truncated).

    The definitions name their code by content hash, so a script edited after the synth would silently run the old
    code: its staged asset is compared, byte for byte, with what packaging builds from the checkout today.
    """
    for name, data in code_bytes(steps_dir).items():
        staged = assembly.named_assets.get(f"{CODE_ASSET_PREFIX}{name}")
        if staged is not None and staged.read_bytes() != data:
            raise UsageError(
                f"re-synthesize: steps changed since the last synth ({name} is not what {shown(staged)} holds): "
                "run `make synth`"
            )


def runner_for(
    assembly_dir: Path,
    config: EnvironmentConfig,
    pipeline: str,
    state_dir: Path,
    progress: Callable[[str], None] = stderr_progress,
    *,
    use_cache: bool = True,
    jobs: int | None = None,
) -> LocalRunner:
    assembly = read_assembly(assembly_dir, config)
    name = pipeline_name(config, pipeline)
    if name not in assembly.definitions:
        # It holds another unit: synthesizing this one there would replace that one, so it goes to its own folder.
        own = default_assembly(config)
        then = "" if own == assembly_dir else f", then pass --assembly {shlex.quote(shown(own))}"
        raise UsageError(
            f"{shown(assembly_dir)} has no pipeline {name} (it has: {', '.join(assembly.definitions) or 'none'}); "
            f"synthesize the unit into its own folder first: `{synth_command(config, own)}`{then}"
        )
    return LocalRunner(
        assembly.definitions[name],
        pipeline_name=name,
        state_dir=state_dir,
        region=config.region,
        assets=assembly.assets,
        progress=progress,
        use_cache=use_cache,
        jobs=jobs,
    )


def run_summary(result: RunResult, s3: LocalS3) -> str:
    """The table of steps (status, cache, duration) and where each output and log went."""
    lines = [f"Pipeline {result.pipeline}, execution {result.execution_id}: {result.status} in {result.seconds:.1f}s"]
    if result.source_execution:
        lines[0] += f" (selective: the other steps' outputs are execution {result.source_execution}'s)"
    rows = [("step", "type", "status", "cache", "duration", "note")]
    for step in result.steps:
        cache = ("hit" if step.cache_hit else "miss") if step.cacheable else "-"
        duration = f"{step.seconds:.1f}s" if step.work_dir else "-"
        note = f"outputs of execution {step.cache_source}" if step.cache_hit else step.message
        if step.reused_from:
            note = f"not run: outputs of execution {step.reused_from}"
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
    headline = {key: value for key, value in result.metrics.items() if key.count(".") <= 2}  # no nested details
    if headline:
        lines.append("Metrics: " + ", ".join(f"{key} {value:.4g}" for key, value in headline.items()))
    if result.registered:
        registered = result.registered
        lines.append(f"Registered: {registered['group']} version {registered['version']} ({registered['status']})")
    if result.runtime:
        libraries = ", ".join(f"{name} {version}" for name, version in result.runtime["libraries"].items())
        lines.append(f"Step runtime: Python {result.runtime['python']} ({libraries}): {result.runtime['interpreter']}")
    lines.append(f"Logs: {shown(Path(result.execution_dir) / 'steps')}/<step>/log.txt")
    if result.failure_reason:
        lines.append(f"{result.status}: {result.failure_reason}")
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


def run_and_track(runner: LocalRunner, parameters: dict[str, Any], selective: Any = None) -> RunResult:
    """One local execution, then its record in the state dir's MLflow store (`mlops.tracking`; a failure there is a
    warning, never the run's)."""
    from mlops import tracking

    result = runner.run(parameters, selective)
    tracking.log_execution(runner.state_dir, result, runner.s3)
    return result
