"""`mlops demo`: train on the bundled sample, approve, re-train (cached), evaluate on a drifted sample, then promote
the approved version, serve it locally and send both samples through it (captured as the endpoint would), label the
requests, monitor the traffic both ways (as Model Monitor would, and with the eval-only pipeline on the capture),
write the HTML reports, and score the drifted sample as a customer list by batch transform (the scoring pipeline)."""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from config.deployments import write_pin
from mlops.common import UsageError, sample_data_dir, shown
from mlops.demo_state import fresh_state_dir, record_demo_files
from mlops.endpoint import labelled_request_rows
from mlops.ground_truth import object_key, parse_file, put_local
from mlops.local import read_json, result_json, run_and_track, run_summary, runner_for
from mlops.monitor import monitor_local
from mlops.monitor import summary as monitoring_summary
from mlops.promote import pin_from_package
from mlops.registry import LocalRegistry, details_lines, version_details
from mlops.report.command import local_report, write_report
from mlops.serve import local_endpoint
from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.contract import DATA_CAPTURE_PREFIX, GROUND_TRUTH_PREFIX, ApprovalStatus, DeployTimeValue, Parameter
from pipeline_defs.local import LocalModelRegistry, LocalS3, RunResult, local_values
from pipeline_defs.local.assembly import LOCAL_ACCOUNT

DEMO_DATASET = "sample-v1"
# The customer list the demo scores: the drifted sample, under the scoring prefix.
DEMO_CUSTOMERS = "customers-v1"
# Customers the demo prints from the scoring summary's top-N.
DEMO_TOP_CUSTOMERS = 5
# What the demo did (the --json document), written last into its state dir.
DEMO_SUMMARY = "demo.json"
DEMO_EXPERIMENT = "demo"
# Requests the demo sends per sample: enough for a drift check on the capture, few enough for a quick demo.
TRAFFIC_ROWS = 300
# Where callers put InvokeEndpoint's InferenceId; data capture records it as eventMetadata.inferenceId.
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"


def command_demo(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    state_dir: Path = args.state_dir
    fresh_state_dir(state_dir)
    out = sys.stderr if args.json else sys.stdout
    say: Callable[[str], None] = lambda line: print(line, file=out, flush=True)  # noqa: E731
    training = runner_for(args.assembly, config, "training", state_dir)
    evaluation = runner_for(args.assembly, config, "evaluation", state_dir)
    s3, registry = training.s3, training.registry
    landing = local_values(config.region)[DeployTimeValue.LANDING_BUCKET]
    dataset_uri = f"s3://{landing}/{config.dataset_prefix}{DEMO_DATASET}/"
    evaluation_uri = f"s3://{landing}/{config.evaluation_data_prefix}"
    copy_sample(sample_data_dir() / "churn", s3.path(dataset_uri), marker=config.marker_name)
    copy_sample(sample_data_dir() / "churn-drifted", s3.path(evaluation_uri))
    parameters = {
        Parameter.INPUT_DATA_URI.value: dataset_uri,
        Parameter.EXPERIMENT_ID.value: DEMO_EXPERIMENT,
        # So that approving is a real step of the story.
        Parameter.MODEL_APPROVAL_STATUS.value: ApprovalStatus.PENDING.value,
    }
    say(f"Demo in {shown(state_dir)}: the sample dataset is {dataset_uri} ({shown(s3.path(dataset_uri))})")

    say(f"\n1. Train {training.pipeline_name} on the bundled sample")
    first = run_and_track(training, parameters)
    say(run_summary(first, s3))
    registered = _registered_version(first)

    say("\n2. Approve the registered model")
    if registered is not None:
        group = config.model_package_group_name
        registry.set_approval(group, registered, ApprovalStatus.APPROVED, "approved by mlops demo")
        show = f"mlops registry show {registered} --local --state-dir {shown(state_dir)}"
        say(f"{group} version {registered}: Approved. Its lineage ({show}):")
        details = version_details(LocalRegistry(state_dir, config.region), group, registered)
        for line in details_lines({key: details[key] for key in ("metadata", "metrics", "baselines")}):
            say(line)
    else:
        say("nothing was registered, so there is nothing to approve")

    say("\n3. Train again with unchanged inputs")
    second = run_and_track(training, parameters)
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
    third = run_and_track(evaluation, {Parameter.EXPERIMENT_ID.value: DEMO_EXPERIMENT})
    say(run_summary(third, s3))
    failed_by_gate = third.status == "Failed" and bool(third.steps) and third.steps[-1].type == "Fail"
    if failed_by_gate:
        say(f"As expected, the eval-only pipeline failed loudly on the drifted sample: {third.failure_reason}")
        for violation in _drift_violations(third, s3):
            say(f"  {violation['feature_name']}: {violation['constraint_check_type']}: {violation['description']}")

    say("\n5. Promote the approved version, serve it locally, send it the sample's rows, then the drifted rows")
    served = _serve_sample_traffic(args, config, say) if registered is not None else None
    if served is None:
        say("nothing was approved, so there is nothing to serve")

    monitored = _monitor_traffic(args, config, say, third) if served is not None else None
    scored = _score_customers(args, config, say) if registered is not None else None

    expected = (
        first.succeeded
        and registered == 1
        and second.succeeded
        and {"Preprocess", "Train", "Score", "Baseline"} <= set(hits)
        and failed_by_gate
        and served is not None
        and served["captured"] == served["sent"]
        and monitored is not None
        and monitored["drift_violations"] > 0
        and monitored["capture_run_failed_by_gate"]
        and scored is not None
        and scored["failed_by_drift"]
        and scored["rows"] == scored["prepared_rows"] > 0
    )
    say(
        "\nDemo finished as expected."
        if expected
        else "\nDemo did NOT go as expected: see the runs above (logs under each execution's steps/ folder)."
    )
    runs = {"training-1": first, "training-2": second, "evaluation": third}
    summary = {
        "expected": expected,
        "approved_version": registered,
        "runs": {name: result_json(result, s3) for name, result in runs.items()},
        "served": served,
        "monitored": monitored,
        "scored": scored,
    }
    # Kept beside the state it describes, for scripts that check a demo they did not start (--json prints it too).
    write_atomically(state_dir / DEMO_SUMMARY, json.dumps(summary, indent=2) + "\n")
    record_demo_files(state_dir)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0 if expected else 1


def _serve_sample_traffic(
    args: argparse.Namespace, config: EnvironmentConfig, say: Callable[[str], None]
) -> dict[str, Any]:
    """Promote the newest Approved version into the state dir, serve it, send both samples; what was captured."""
    state_dir: Path = args.state_dir
    package = LocalModelRegistry(state_dir / "registry", config.region).latest(
        config.model_package_group_name, ApprovalStatus.APPROVED.value
    )
    if package is None:
        raise UsageError("the demo approved a version but the local registry has no Approved one")
    pins = state_dir / "deployments.json"
    pin = pin_from_package(package, config, LOCAL_ACCOUNT, lambda uri: read_json(LocalS3(state_dir / "s3"), uri))
    write_pin(pins, config, pin)
    say(f"promoted version {pin.version} in {shown(pins)} (mlops promote --local --latest-approved)")
    samples = {
        name: labelled_request_rows(sample_data_dir() / name / "part-0000.csv")[:TRAFFIC_ROWS]
        for name in ("churn", "churn-drifted")
    }
    with local_endpoint(config, state_dir, args.assembly, pin.version, port=0, sampling=100) as (server, started):
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        try:
            scores = {
                name: _invoke_rows(server.url, [(f"{name}-{i}", body) for i, (body, _) in enumerate(rows)])
                for name, rows in samples.items()
            }
        finally:
            server.shutdown()
            server.stop()
    for name, values in scores.items():
        say(f"  {len(values)} rows of the {name} sample: mean churn probability {sum(values) / len(values):.3f}")
    captured = server.capture.written if server.capture else 0
    say(f"{captured} requests captured in SageMaker's data capture format under {shown(started['capture_folder'])}")
    # The labels arrive later, as producers send them (mlops ground-truth put): each names its request's inference id.
    labels = [(f"{name}-{i}", label) for name, rows in samples.items() for i, (_, label) in enumerate(rows) if label]
    labels_file = state_dir / "demo-labels.csv"
    labels_file.write_text("inference_id,label\n" + "".join(f"{id_},{label}\n" for id_, label in labels))
    _, where = put_local(state_dir, config, object_key(config.endpoint_name, datetime.now(UTC), labels_file.name),
                         parse_file(labels_file))  # fmt: skip
    say(f"{len(labels)} labels for those requests, by inference id, in {shown(Path(where))} (mlops ground-truth put)")
    return {
        "version": pin.version,
        "sent": sum(len(rows) for rows in samples.values()),
        "captured": captured,
        "capture_folder": started["capture_folder"],
        "labels": len(labels),
    }


def _invoke_rows(url: str, rows: list[tuple[str, bytes]]) -> list[float]:
    """POST each (inference id, row) to the local endpoint's /invocations over one keep-alive connection; the churn
    probabilities."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    scores = []
    try:
        for inference_id, row in rows:
            headers = {"Content-Type": "text/csv", "Accept": "text/csv", INFERENCE_ID_HEADER: inference_id}
            connection.request("POST", "/invocations", body=row, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise UsageError(f"the local endpoint answered {response.status}: {body.decode(errors='replace')}")
            scores.append(float(body))
    finally:
        connection.close()
    return scores


def _monitor_traffic(
    args: argparse.Namespace, config: EnvironmentConfig, say: Callable[[str], None], dataset_run: RunResult
) -> dict[str, Any]:
    """Both monitoring paths on the captured traffic, and the HTML reports of the runs."""
    state_dir: Path = args.state_dir
    say("\n6. Monitor the served traffic against the version's baselines, as Model Monitor would (mlops monitor)")
    run = monitor_local(config, state_dir)
    say(monitoring_summary(run))

    values = local_values(config.region)
    capture = f"s3://{values[DeployTimeValue.ARTIFACTS_BUCKET]}/{DATA_CAPTURE_PREFIX}{config.endpoint_name}/"
    truth = f"s3://{values[DeployTimeValue.LANDING_BUCKET]}/{GROUND_TRUTH_PREFIX}{config.endpoint_name}/"
    say(f"\n7. The path of every account: the eval-only pipeline on the capture ({capture}) and its ground truth")
    captured = run_and_track(
        runner_for(args.assembly, config, "evaluation", state_dir),
        {
            Parameter.EXPERIMENT_ID.value: DEMO_EXPERIMENT,
            Parameter.INPUT_DATA_URI.value: capture,
            Parameter.GROUND_TRUTH_URI.value: truth,
        },
    )
    say(run_summary(captured, LocalS3(state_dir / "s3")))
    failed_by_gate = captured.status == "Failed" and bool(captured.steps) and captured.steps[-1].type == "Fail"

    say("\n8. Reports people can look at (mlops report ... --html)")
    pages = {
        "eval-only run on the drifted sample": ("report-evaluation.html", {"execution": dataset_run.execution_id}),
        "eval-only run on the captured traffic": ("report-capture.html", {"execution": captured.execution_id}),
        "monitoring run": ("report-monitoring.html", {"monitoring_run": run["local_outputs"]}),
    }
    for title, (file_name, which) in pages.items():
        write_report(local_report(config, state_dir, **which), state_dir / file_name)
        say(f"  {title}: {shown(state_dir / file_name)}")
    return {
        "monitoring_run": run["outputs"],
        "drift_violations": run["data_quality"]["violations"],
        "model_quality": run["model_quality"],
        "capture_run": captured.execution_id,
        "capture_run_failed_by_gate": failed_by_gate,
        "reports": [str(state_dir / file_name) for file_name, _ in pages.values()],
    }


def _score_customers(args: argparse.Namespace, config: EnvironmentConfig, say: Callable[[str], None]) -> dict[str, Any]:
    """The scoring pipeline on the drifted sample as a customer list: its drift, its top customers, its report."""
    state_dir: Path = args.state_dir
    runner = runner_for(args.assembly, config, "scoring", state_dir)
    landing = local_values(config.region)[DeployTimeValue.LANDING_BUCKET]
    customers = f"s3://{landing}/{config.scoring_data_prefix}{DEMO_CUSTOMERS}/"
    copy_sample(sample_data_dir() / "churn-drifted", runner.s3.path(customers), marker=config.marker_name)
    say(f"\n9. Score the drifted sample as a customer list ({customers}) by batch transform, with capture")
    result = runner.run({Parameter.INPUT_DATA_URI.value: customers, Parameter.EXPERIMENT_ID.value: DEMO_EXPERIMENT})
    say(run_summary(result, runner.s3))
    summary = _step_report(result, runner.s3, "Summarize", "summary", "summary.json") or {}
    failed_by_drift = result.status == "Failed" and bool(result.steps) and result.steps[-1].name == "DriftDetected"
    if failed_by_drift:
        say("As expected, the scores are written and the run fails on the drift it found:")
        for violation in _drift_violations(result, runner.s3):
            say(f"  {violation['feature_name']}: {violation['constraint_check_type']}")
    top = summary.get("top", [])[:DEMO_TOP_CUSTOMERS]
    say(f"The {len(top)} customers most likely to churn (row key hash, score, contract, tenure in months):")
    for entry in top:
        say(f"  {entry['row_key']}  {entry['score']:.3f}  {entry['contract']}  {entry['tenure_months']}")
    page = state_dir / "report-scoring.html"
    write_report(local_report(config, state_dir, execution=result.execution_id), page)
    say(f"  the scoring run's report: {shown(page)}")
    prepared = _step_report(result, runner.s3, "Preprocess", "report", "preprocess_report.json") or {}
    return {
        "execution": result.execution_id,
        "rows": summary.get("rows"),
        "prepared_rows": prepared.get("rows_written", {}).get("score"),
        "mean_score": summary.get("mean_score"),
        "failed_by_drift": failed_by_drift,
        "top": top,
        "report": str(page),
    }


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


def _step_report(result: RunResult, s3: LocalS3, step: str, output: str, file_name: str) -> Any:
    """A JSON report that `step` of the run wrote into its output `output`, or None."""
    try:
        uri = result.step(step).outputs[output]
    except KeyError:
        return None
    return read_json(s3, f"{uri.rstrip('/')}/{file_name}")


def _incumbent(result: RunResult, s3: LocalS3) -> str | None:
    """The incumbent model URI that the run's ResolveIncumbent step reported."""
    report = _step_report(result, s3, "ResolveIncumbent", "resolved", "resolved.json")
    return report.get("model_data_url") if isinstance(report, dict) else None


def _drift_violations(result: RunResult, s3: LocalS3) -> list[dict[str, Any]]:
    """The CheckDrift step's constraint violations (Model Monitor format), if it ran."""
    report = _step_report(result, s3, "CheckDrift", "drift", "constraint_violations.json")
    violations = report.get("violations", []) if isinstance(report, dict) else []
    return violations if isinstance(violations, list) else []
