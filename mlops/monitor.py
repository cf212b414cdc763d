"""`mlops monitor --local [--version N] [--since D|Nh|Nd] [--fail-on-violation]`: what Model Monitor does, locally.

Which model: the version `mlops promote --local` pinned in `<state dir>/deployments.json`, or `--version N` of the local
registry; its baselines are what training registered with it: the data-quality statistics and constraints and the
model-quality constraints (local s3:// URIs). Traffic: the local endpoint's data capture
(`<state dir>/s3/local-artifacts/data-capture/<endpoint>/`), merged with the labels of `mlops ground-truth put --local`
(`<state dir>/s3/local-landing/ground-truth/<endpoint>/`) by inference id, by the merge step's own code
(pipeline_defs/steps/merge_capture.py), optionally only the requests since `--since`.

The checks, their method and error rates: mlops/monitor_checks.py (data quality by the data-quality step's own
statistics and drift distance, model quality by the evaluator's metrics against the registered constraints).

Outputs, Model Monitor's files in its layout under the local artifacts bucket:
    s3://local-artifacts/monitoring/<endpoint>/<run id: UTC yyyy-mm-ddTHH-MM-SS, -2, -3 ... for runs in one second>/
        data-quality/{statistics.json, constraints.json, constraint_violations.json, drift_report.json (CheckDrift's:
                      every feature's distance and threshold, which `mlops report` draws)}
        model-quality/{statistics.json, constraints.json, constraint_violations.json}   (when checked)
        run.json    {"endpoint", "model_package_version", "period", "records", "labelled", "baseline", "data_quality",
                     "model_quality", "created"}: written last, so a folder without it is an interrupted run.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops import tracking
from mlops.common import UsageError, dig, shown, since_start
from mlops.monitor_checks import Baselines, check_data_quality, check_model_quality, read_baseline
from mlops.promote import MODEL_QUALITY_CONSTRAINTS_PATH, REGISTERED_URIS
from mlops.serve import promoted_version
from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.contract import (
    DATA_CAPTURE_PREFIX,
    GROUND_TRUTH_PREFIX,
    MONITORING_PREFIX,
    SCORE_COLUMN,
    DeployTimeValue,
)
from pipeline_defs.local import LocalModelRegistry, LocalS3, local_values
from pipeline_defs.packaging import FEATURE_CONTRACT, STEPS_DIR
from pipeline_defs.steps.merge_capture import Contract, Period, merge_capture
from steplib import StepError

_RUN_ID_FORMAT = "%Y-%m-%dT%H-%M-%S"


def command_monitor(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError(
            "mlops monitor checks the local endpoint's traffic: pass --local (in AWS, Model Monitor's schedules or "
            "the eval-only pipeline check the deployed endpoint)"
        )
    try:
        run = monitor_local(config, args.state_dir, args.version, args.since)
    except StepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(run, indent=2, sort_keys=True) if args.json else summary(run))
    violations = run["data_quality"]["violations"] + run["model_quality"].get("violations", 0)
    return 1 if args.fail_on_violation and violations else 0


def monitor_local(
    config: EnvironmentConfig, state_dir: Path, version: int | None = None, since: str | None = None
) -> dict[str, Any]:
    """One monitoring run on the local endpoint's capture (and ground truth) in `state_dir`: run.json's document.

    UsageError: nothing to monitor or no baselines; StepError: bad traffic (the merge step's messages)."""
    now = datetime.now(UTC)
    period = Period(since_start(since, now), now)
    s3 = LocalS3(state_dir / "s3")
    baselines = version_baselines(config, state_dir, version)
    capture_dir = s3.path(
        _uri(config, DeployTimeValue.ARTIFACTS_BUCKET, f"{DATA_CAPTURE_PREFIX}{config.endpoint_name}/")
    )
    if not any(capture_dir.rglob("*.jsonl")):
        raise UsageError(
            f"no data capture of {config.endpoint_name} under {shown(capture_dir)}: serve the version "
            f"(mlops serve --local --promoted --state-dir {shown(state_dir)}) and send it requests"
        )
    truth_dir = s3.path(_uri(config, DeployTimeValue.LANDING_BUCKET, f"{GROUND_TRUTH_PREFIX}{config.endpoint_name}/"))
    run = monitor(config, s3, baselines, capture_dir, truth_dir, period, now)
    tracking.log_monitoring(state_dir, run)  # a failure there is a warning line, never the monitoring run's
    return run


def version_baselines(config: EnvironmentConfig, state_dir: Path, version: int | None) -> Baselines:
    """The baselines of `version` (default: the locally promoted one) from the local registry."""
    chosen = version if version is not None else promoted_version(config, state_dir)
    package = LocalModelRegistry(state_dir / "registry", config.region).describe(
        config.model_package_group_name, chosen
    )
    statistics = dig(package, REGISTERED_URIS["data quality statistics baseline"])
    constraints = dig(package, REGISTERED_URIS["data quality constraints baseline"])
    if not isinstance(statistics, str) or not isinstance(constraints, str):
        raise UsageError(
            f"{config.model_package_group_name} version {chosen} has no data-quality baseline (DriftCheckBaselines): "
            f"only versions registered by {config.training_pipeline_name} can be monitored"
        )
    quality = dig(package, MODEL_QUALITY_CONSTRAINTS_PATH)
    evaluated = dig(package, REGISTERED_URIS["model quality statistics (the evaluation metrics)"])
    return Baselines(
        chosen,
        statistics,
        constraints,
        quality if isinstance(quality, str) else None,
        evaluated if isinstance(evaluated, str) else None,
    )


def monitor(
    config: EnvironmentConfig,
    s3: LocalS3,
    baselines: Baselines,
    capture_dir: Path,
    truth_dir: Path,
    period: Period,
    now: datetime,
) -> dict[str, Any]:
    """Merge, check both qualities, write the outputs; run.json's document. StepError: bad traffic or baselines."""
    contract = Contract.read(STEPS_DIR / FEATURE_CONTRACT)
    merged = merge_capture(capture_dir, truth_dir, contract, period, SCORE_COLUMN, warn=_warn)
    statistics, constraints = (
        read_baseline(s3, uri, baselines.version) for uri in (baselines.statistics, baselines.constraints)
    )
    data_quality = check_data_quality(merged.traffic, statistics, constraints)
    threshold = config.model_quality_probability_threshold  # Model Monitor's analyzer and Evaluate use the same
    model_quality = check_model_quality(merged, contract.label, s3, baselines, threshold, config.confidence_level)
    run_uri, folder = new_run_folder(config, s3, now)
    outputs = {
        "data-quality": data_quality,
        **({"model-quality": model_quality} if "statistics" in model_quality else {}),
    }
    for name, documents in outputs.items():
        for file_name in ("statistics", "constraints", "constraint_violations", "drift_report"):
            if file_name in documents:  # drift_report: data quality only
                _write_json(folder / name / f"{file_name}.json", documents[file_name])
    run = {
        "endpoint": config.endpoint_name,
        "model_package_version": baselines.version,
        "period": {"start": merged.report["period"]["start"] if merged.report["period"] else None, "end": _iso(now)},
        "records": merged.report["rows"],
        "labelled": merged.report["labelled"],
        "merge": merged.report,
        "baseline": {
            "statistics": baselines.statistics,
            "constraints": baselines.constraints,
            "model_quality_constraints": baselines.model_quality_constraints,
            "model_quality_statistics": baselines.model_quality_statistics,
        },
        "data_quality": {"violations": len(data_quality["constraint_violations"]["violations"])},
        "model_quality": model_quality.get("verdict", {}),
        "created": _iso(now),
        "outputs": run_uri,
        "local_outputs": str(folder),
    }
    _write_json(folder / "run.json", run)  # last: its presence marks a complete run
    return run


def summary(run: dict[str, Any]) -> str:
    period = run["period"]
    lines = [
        f"Monitored {run['endpoint']} (version {run['model_package_version']}): "
        f"{run['records']} captured request row(s) "
        f"from {period['start'] or 'the first capture'} to {period['end']}, {run['labelled']} with ground truth"
    ]
    folder = Path(run["local_outputs"])
    for kind in ("data-quality", "model-quality"):
        path = folder / kind / "constraint_violations.json"
        for violation in json.loads(path.read_text())["violations"] if path.is_file() else []:
            subject = violation.get("feature_name") or violation.get("metric_name")
            lines.append(f"  {kind}: {subject}: {violation['constraint_check_type']}: {violation['description']}")
    lines.append(f"data quality: {run['data_quality']['violations']} violation(s)")
    quality = run["model_quality"]
    lines.append(
        f"model quality: {quality['violations']} violation(s) on {quality['labelled']} labelled row(s)"
        if quality["checked"]
        else f"model quality: not checked: {quality['reason']}"
    )
    lines.append(f"Outputs: {shown(folder)}/ ({run['outputs']})")
    return "\n".join(lines)


def new_run_folder(config: EnvironmentConfig, s3: LocalS3, now: datetime) -> tuple[str, Path]:
    """The run's own folder, created here (never shared): <run id>/, or <run id>-2/ ... for runs in the same second."""
    run_id = f"{now:{_RUN_ID_FORMAT}}"
    for attempt in range(1, 100):
        suffix = f"-{attempt}" if attempt > 1 else ""
        uri = _uri(
            config, DeployTimeValue.ARTIFACTS_BUCKET, f"{MONITORING_PREFIX}{config.endpoint_name}/{run_id}{suffix}/"
        )
        folder = s3.path(uri)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return uri, folder
    raise StepError(f"99 monitoring runs already exist for {run_id}: run again")


def _uri(config: EnvironmentConfig, bucket: DeployTimeValue, key: str) -> str:
    return f"s3://{local_values(config.region)[bucket]}/{key}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, document: Any) -> None:
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
