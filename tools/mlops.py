"""Operator CLI: run the pipelines locally, manage the local model registry, render graphs, start runs in AWS.

    mlops run training|evaluation --local [--param K=V ...] [--assembly cdk.out] [--env dev] [--state-dir .local]
    mlops registry list|approve|reject [--version N] [--description TEXT] [--env dev] [--state-dir .local]
    mlops graph training|evaluation [--assembly cdk.out] [--env dev]
    mlops start training|evaluation --env <env> --experiment <id> [--input-data-uri s3://...]
    mlops demo [--assembly cdk.out] [--state-dir .local/demo]

`run` executes the definition `cdk synth` wrote into the assembly (pipeline_defs.local_runner), with no Docker and no
AWS account; the local buckets are <state dir>/s3/local-landing and .../local-artifacts. `start` is the only command
that calls AWS. Every command takes `--json` for scripts. Progress goes to stderr, results to stdout.
Exit codes: 0 done (`demo`: the demonstration went as expected), 1 a pipeline run or an AWS call failed,
2 bad usage or input (one `error:` line on stderr).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as `python tools/mlops.py`: the repository is not on sys.path
    sys.path.insert(0, str(REPO_ROOT))

from config import ConfigError, EnvironmentConfig, load_config  # noqa: E402 (needs the path above)
from pipeline_defs.expressions import LocalRunError  # noqa: E402
from pipeline_defs.local_registry import LocalModelRegistry  # noqa: E402
from pipeline_defs.local_runner import (  # noqa: E402
    STATE_MARKER,
    LocalRunner,
    LocalS3,
    RunResult,
    load_assembly,
    local_values,
)

PIPELINES = ("training", "evaluation")
DEFAULT_ASSEMBLY = REPO_ROOT / "cdk.out"
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
DEMO_STATE_DIR = DEFAULT_STATE_DIR / "demo"
SAMPLE_DATA = REPO_ROOT / "pipeline_defs" / "sample_data"
DEMO_DATASET = "sample-v1"
DEMO_EXPERIMENT = "demo"
EXPERIMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class UsageError(Exception):
    """Bad input to the CLI: printed as one `error:` line, exit code 2."""


# Shared ----------------------------------------------------------------------------------------------------------
def pipeline_name(config: EnvironmentConfig, pipeline: str) -> str:
    return config.training_pipeline_name if pipeline == "training" else config.evaluation_pipeline_name


def parse_parameters(items: Sequence[str]) -> dict[str, str]:
    """`["K=V", ...]` -> {K: V}; values stay text and are typed by the pipeline's parameter declarations."""
    parameters = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise UsageError(f"--param {item!r}: expected NAME=VALUE, e.g. --param ExperimentId=exp-1")
        parameters[name.strip()] = value
    return parameters


def shown(path: str | Path) -> str:
    """A path relative to the working directory when it is below it: shorter to read."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def stderr_progress(line: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {line}", file=sys.stderr, flush=True)


def runner_for(
    args: argparse.Namespace, config: EnvironmentConfig, pipeline: str, state_dir: Path, progress=stderr_progress
) -> LocalRunner:
    assembly = load_assembly(args.assembly, config.region)
    name = pipeline_name(config, pipeline)
    if name not in assembly.definitions:
        unit = f"-c env={config.env_name}" + (f" -c sandbox={config.sandbox}" if config.sandbox else "")
        raise UsageError(
            f"{shown(args.assembly)} has no pipeline {name} (it has: {', '.join(assembly.definitions) or 'none'}); "
            f"synthesize it first: cdk synth {unit}"
        )
    return LocalRunner(
        assembly.definitions[name],
        pipeline_name=name,
        state_dir=state_dir,
        region=config.region,
        assets=assembly.assets,
        progress=progress,
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
        for label, where in outputs:
            local = s3.describe(where) if where.startswith("s3://") else where
            lines.append(f"  {label.ljust(width)}  {shown(local)}")
    lines.append(f"Logs: {shown(Path(result.execution_dir) / 'steps')}/<step>/log.txt")
    if result.failure_reason:
        lines.append(f"Failed: {result.failure_reason}")
    return "\n".join(lines)


def result_json(result: RunResult, s3: LocalS3) -> dict:
    document = result.to_dict()
    for step in document["steps"]:
        step["local_outputs"] = {
            name: s3.describe(where) if where.startswith("s3://") else where for name, where in step["outputs"].items()
        }
    return document


# Commands --------------------------------------------------------------------------------------------------------
def command_run(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError("`run` executes a pipeline on this machine: pass --local (to run in AWS: mlops start)")
    runner = runner_for(args, config, args.pipeline, args.state_dir)
    result = runner.run(parse_parameters(args.param))
    if args.json:
        print(json.dumps(result_json(result, runner.s3), indent=2))
    else:
        print(run_summary(result, runner.s3))
    return 0 if result.succeeded else 1


def command_registry(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    registry = LocalModelRegistry(args.state_dir / "registry", config.region)
    group = args.group or config.model_package_group_name
    if args.action == "list":
        versions = registry.versions(group)
        s3 = LocalS3(args.state_dir / "s3")
        rows = [
            {
                "version": package["ModelPackageVersion"],
                "status": package["ModelApprovalStatus"],
                "created": package["CreationTime"],
                "roc_auc": _roc_auc(package, s3),
                "experiment_id": package.get("CustomerMetadataProperties", {}).get("experiment-id"),
                "arn": package["ModelPackageArn"],
            }
            for package in versions
        ]
        if args.json:
            print(json.dumps({"group": group, "versions": rows}, indent=2))
            return 0
        print(f"Model package group {group} (local registry {shown(registry.root)}): {len(rows)} version(s)")
        for row in rows:
            auc = f"{row['roc_auc']:.4f}" if row["roc_auc"] is not None else "-"
            print(
                f"  {row['version']:>3}  {row['status']:<22}  roc_auc {auc:<7}  "
                f"experiment {row['experiment_id'] or '-'}  created {row['created'][:19]}"
            )
        return 0
    version = args.version
    if version is None:
        pending = registry.latest(group, "PendingManualApproval")
        if pending is None:
            raise UsageError(f"no version of {group} is PendingManualApproval: pass --version N")
        version = pending["ModelPackageVersion"]
    status = "Approved" if args.action == "approve" else "Rejected"
    package = registry.set_approval(group, version, status, args.description)
    if args.json:
        print(json.dumps(package, indent=2))
    else:
        print(f"{group} version {version}: {status} ({package['ModelPackageArn']})")
    return 0


def _roc_auc(package: Mapping[str, Any], s3: LocalS3) -> float | None:
    """The candidate ROC AUC the Evaluate step recorded for this version, if its report is still here."""
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    try:
        report = json.loads(s3.read_bytes(uri))
        return float(report["binary_classification_metrics"]["auc"]["value"])
    except (LocalRunError, KeyError, TypeError, ValueError):
        return None


def command_graph(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    try:
        from pipeline_defs.graph import mermaid  # written alongside the runner: imported when used
    except ImportError as error:
        raise UsageError(f"pipeline_defs.graph is not available in this checkout ({error})") from error
    assembly = load_assembly(args.assembly, config.region)
    name = pipeline_name(config, args.pipeline)
    if name not in assembly.definitions:
        raise UsageError(f"{shown(args.assembly)} has no pipeline {name}: run cdk synth first")
    graph = mermaid(json.dumps(assembly.definitions[name]))
    print(json.dumps({"pipeline": name, "mermaid": graph}) if args.json else graph, end="" if not args.json else "\n")
    return 0


def start_request(
    config: EnvironmentConfig, pipeline: str, experiment_id: str, input_data_uri: str | None, token: str
) -> dict:
    """The StartPipelineExecution request for a deployed pipeline (the token makes a retried call idempotent)."""
    if not EXPERIMENT_ID.fullmatch(experiment_id):
        raise UsageError(
            f"experiment id {experiment_id!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if input_data_uri is not None and not input_data_uri.startswith("s3://"):
        raise UsageError(f"--input-data-uri {input_data_uri!r} is not an s3:// URI")
    if pipeline == "training" and input_data_uri is None:
        raise UsageError("the training pipeline needs --input-data-uri s3://<landing bucket>/datasets/<dataset-id>/")
    parameters = [{"Name": "ExperimentId", "Value": experiment_id}]
    if input_data_uri is not None:
        parameters.append({"Name": "InputDataUri", "Value": input_data_uri})
    display_name = re.sub(r"[^A-Za-z0-9-]", "-", f"{experiment_id}-{token[:8]}")
    return {
        "PipelineName": pipeline_name(config, pipeline),
        "PipelineExecutionDisplayName": display_name[:82],
        "PipelineExecutionDescription": f"Started with mlops start, experiment {experiment_id}",
        "PipelineParameters": parameters,
        "ClientRequestToken": token,
    }


def command_start(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    request = start_request(config, args.pipeline, args.experiment, args.input_data_uri, str(uuid.uuid4()))
    try:
        client = boto3.client("sagemaker", region_name=config.region)
        response = client.start_pipeline_execution(**request)
    except (BotoCoreError, ClientError) as error:
        print(f"error: starting {request['PipelineName']} failed: {error}", file=sys.stderr)
        return 1
    arn = response["PipelineExecutionArn"]
    if args.json:
        print(json.dumps({"PipelineExecutionArn": arn, "request": request}, indent=2))
    else:
        print(f"started {request['PipelineName']} ({request['PipelineExecutionDisplayName']}): {arn}")
        print(f"  follow it: aws sagemaker describe-pipeline-execution --pipeline-execution-arn {arn}")
    return 0


# Demo ------------------------------------------------------------------------------------------------------------
def command_demo(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    """Train on the bundled sample, approve, re-train (cached), then evaluate on a drifted sample."""
    state_dir = args.state_dir
    fresh_state_dir(state_dir)
    out = sys.stderr if args.json else sys.stdout
    say = lambda line: print(line, file=out, flush=True)  # noqa: E731 (in step with the progress lines)
    training = runner_for(args, config, "training", state_dir)
    evaluation = runner_for(args, config, "evaluation", state_dir)
    s3, registry = training.s3, training.registry
    landing = local_values(config.region)["LandingBucket"]
    dataset_uri = f"s3://{landing}/{config.dataset_prefix}{DEMO_DATASET}/"
    evaluation_uri = f"s3://{landing}/{config.evaluation_data_prefix}"
    copy_sample(SAMPLE_DATA / "churn", s3.path(dataset_uri), marker=config.marker_name)
    copy_sample(SAMPLE_DATA / "churn-drifted", s3.path(evaluation_uri))
    parameters = {
        "InputDataUri": dataset_uri,
        "ExperimentId": DEMO_EXPERIMENT,
        "ModelApprovalStatus": "PendingManualApproval",  # so that approving is a real step of the story
    }
    say(f"Demo in {shown(state_dir)}: the sample dataset is {dataset_uri} ({shown(s3.path(dataset_uri))})")

    say(f"\n1. Train {training.pipeline_name} on the bundled sample")
    first = training.run(parameters)
    say(run_summary(first, s3))
    registered = _registered_version(first)

    say("\n2. Approve the registered model")
    if registered is not None:
        registry.set_approval(config.model_package_group_name, registered, "Approved", "approved by mlops demo")
        say(f"{config.model_package_group_name} version {registered}: Approved")
    else:
        say("nothing was registered, so there is nothing to approve")

    say("\n3. Train again with unchanged inputs")
    second = training.run(parameters)
    say(run_summary(second, s3))
    hits = [step.name for step in second.steps if step.cache_hit]
    reran = [step.name for step in second.steps if step.cacheable and not step.cache_hit]
    say(f"cache hits: {', '.join(hits) or 'none'}; re-ran: {', '.join(reran) or 'none'}")
    incumbents = [_incumbent(run, s3) for run in (first, second)]
    if "Evaluate" in reran and incumbents[0] != incumbents[1]:
        say(
            "Evaluate re-ran because one of its inputs changed, as it must: the incumbent model went from "
            f"{incumbents[0]} (no approved model yet) to {incumbents[1]} (version {registered}, just approved)."
        )

    say(f"\n4. Evaluate the approved model on drifted data ({evaluation_uri})")
    third = evaluation.run({"ExperimentId": DEMO_EXPERIMENT})
    say(run_summary(third, s3))
    failed_by_gate = third.status == "Failed" and bool(third.steps) and third.steps[-1].type == "Fail"
    if failed_by_gate:
        say(f"As expected, the eval-only pipeline failed loudly on the drifted sample: {third.failure_reason}")
        for violation in _drift_violations(third, s3):
            say(f"  {violation['feature_name']}: {violation['constraint_check_type']}: {violation['description']}")

    expected = (
        first.succeeded
        and registered == 1
        and second.succeeded
        and {"Preprocess", "Train", "Baseline"} <= set(hits)
        and failed_by_gate
    )
    say(
        "\nDemo finished as expected."
        if expected
        else "\nDemo did NOT go as expected: see the runs above (logs under each execution's steps/ folder)."
    )
    if args.json:
        runs = {"training-1": first, "training-2": second, "evaluation": third}
        document = {name: result_json(result, s3) for name, result in runs.items()}
        print(json.dumps({"expected": expected, "approved_version": registered, "runs": document}, indent=2))
    return 0 if expected else 1


def fresh_state_dir(state_dir: Path) -> None:
    """Empty `state_dir` for the demo; refuses to delete a non-empty folder that is not a local state dir."""
    if state_dir.exists() and any(state_dir.iterdir()):
        if not (state_dir / STATE_MARKER).exists():
            raise UsageError(f"{shown(state_dir)} is not empty and is not a local state dir: pick another --state-dir")
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_MARKER).touch()


def copy_sample(source: Path, destination: Path, marker: str | None = None) -> None:
    """A bundled sample into a local bucket prefix; `marker` is written last, as producers do."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(source, destination)
    if marker:
        (destination / marker).touch()


def _registered_version(result: RunResult) -> int | None:
    for step in result.steps:
        if step.type == "RegisterModel" and step.status == "Succeeded":
            return int(Path(step.outputs["model package"]).stem)
    return None


def _incumbent(result: RunResult, s3: LocalS3) -> str | None:
    """The incumbent model URI that the run's ResolveIncumbent step reported."""
    try:
        uri = result.step("ResolveIncumbent").outputs["resolved"]
        return json.loads(s3.read_bytes(f"{uri.rstrip('/')}/resolved.json"))["model_data_url"]
    except (KeyError, LocalRunError, ValueError):
        return None


def _drift_violations(result: RunResult, s3: LocalS3) -> list[dict]:
    """The CheckDrift step's constraint violations (Model Monitor format), if it ran."""
    try:
        uri = result.step("CheckDrift").outputs["drift"]
        return json.loads(s3.read_bytes(f"{uri.rstrip('/')}/constraint_violations.json"))["violations"]
    except (KeyError, LocalRunError, ValueError):
        return []


# Command line ----------------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mlops", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--env", default="dev", help="environment of the unit (default: dev)")
        sub.add_argument("--sandbox", help="a developer sandbox of dev")
        sub.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        return sub

    def local_options(sub: argparse.ArgumentParser, state_dir: Path = DEFAULT_STATE_DIR) -> None:
        sub.add_argument(
            "--state-dir", type=Path, default=state_dir, help=f"local buckets, registry, cache ({shown(state_dir)})"
        )

    def assembly_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--assembly", type=Path, default=DEFAULT_ASSEMBLY, help="cdk synth output (default: cdk.out)")

    run = command("run", "run a pipeline's synthesized definition on this machine")
    run.add_argument("pipeline", choices=PIPELINES)
    run.add_argument("--local", action="store_true", help="required: run locally (mlops start runs in AWS)")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline parameter")
    assembly_option(run)
    local_options(run)

    registry = command("registry", "list, approve or reject model versions in the local registry")
    registry.add_argument("action", choices=("list", "approve", "reject"))
    registry.add_argument("--version", type=int, help="default: the newest version pending approval")
    registry.add_argument("--description", help="ApprovalDescription to record")
    registry.add_argument("--group", help="model package group (default: the unit's)")
    local_options(registry)

    graph = command("graph", "print a pipeline's DAG as mermaid")
    graph.add_argument("pipeline", choices=PIPELINES)
    assembly_option(graph)

    start = command("start", "start the deployed pipeline in AWS (StartPipelineExecution)")
    start.add_argument("pipeline", choices=PIPELINES)
    start.add_argument("--experiment", required=True, help="ExperimentId: tags every job and names the output path")
    start.add_argument("--input-data-uri", help="InputDataUri (required for training)")

    demo = command("demo", "train on the bundled sample, approve, re-train (cached), evaluate on drifted data")
    assembly_option(demo)
    local_options(demo, DEMO_STATE_DIR)
    return root


COMMANDS = {
    "run": command_run,
    "registry": command_registry,
    "graph": command_graph,
    "start": command_start,
    "demo": command_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.env, args.sandbox)
        return COMMANDS[args.command](args, config)
    except (UsageError, LocalRunError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
