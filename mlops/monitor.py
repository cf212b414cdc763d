"""`mlops monitor --local [--version N] [--since D|Nh|Nd] [--fail-on-violation]`: what Model Monitor does, locally.

Which model: the version `mlops promote --local` pinned in `<state dir>/deployments.json`, or `--version N` of the local
registry; its baselines are what training registered with it: the data-quality statistics and constraints and the
model-quality constraints (local s3:// URIs). Traffic: the local endpoint's data capture
(`<state dir>/s3/local-artifacts/data-capture/<endpoint>/`), merged with the labels of `mlops ground-truth put --local`
(`<state dir>/s3/local-landing/ground-truth/<endpoint>/`) by inference id, by the merge step's own code
(pipeline_defs/steps/merge_capture.py), optionally only the requests since `--since`.

Data quality: the traffic in the analyzer's layout (the captured score first, then the request's features) is named
after the baseline statistics' features BY POSITION, as Model Monitor's analyzer names captured CSV columns; then the
data-quality step's own statistics and checks run on it (pipeline_defs/steps/data_quality.py: the same drift method and
error rate as the pipelines' CheckDrift). A column count that differs from the baseline's is an error, not a report
full of shifted columns.

Model quality (method and error rate): on the captured rows that have ground truth, the evaluator's own model_quality
(pipeline_defs/steps/evaluate.py: labels at a 0.5 probability threshold) is compared with each registered constraint
as a point comparison, like Model Monitor: a metric below its LessThanThreshold threshold (above a
GreaterThanThreshold one) is a violation. There is no confidence interval on either side: the thresholds are the
evaluation slice's own estimates x (1 - tolerance), and the traffic's metrics have their own sampling error, so a model
exactly as good as on its evaluation slice still alarms by chance. How often, by tolerance and number of labelled rows,
is measured by bench/monitor_false_alarms.py and written in the README ("Monitoring locally"). Read a violation as
"look", not as proof.
Below MIN_LABELS_PER_CLASS labelled rows of either class nothing is compared ("not checked: too few labels").

Outputs, Model Monitor's files in its layout under the local artifacts bucket:
    s3://local-artifacts/monitoring/<endpoint>/<run id: UTC yyyy-mm-ddTHH-MM-SS, -2, -3 ... for runs in one second>/
        data-quality/{statistics.json, constraints.json, constraint_violations.json}
        model-quality/{statistics.json, constraints.json, constraint_violations.json}   (when checked)
        run.json    {"endpoint", "model_package_version", "period", "records", "labelled", "baseline", "data_quality",
                     "model_quality", "created"}: written last, so a folder without it is an interrupted run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: every `mlops` command imports this module, none should pay for pandas
    import pandas as pd

from config import EnvironmentConfig
from mlops.common import UsageError, dig, shown
from mlops.local import read_json
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
from pipeline_defs.steps.merge_capture import Contract, Merged, Period, StepError, merge_capture

# A verdict needs both classes, and enough of each: with fewer than 30 positives one row moves recall by more than
# 3 %, and even with the default tolerance false alarms are frequent at 60-100 labelled rows. Below this floor the
# monitor says "not checked" rather than report noise; above it the verdict is still a point comparison, with the
# measured error rates of the README's "Monitoring locally" (Model Monitor wants 200 rows for its standard deviations).
MIN_LABELS_PER_CLASS = 30
# The data-quality step's inferred types back to the feature contract's types, to compute statistics by the baseline.
_CONTRACT_TYPES = {"Integral": "integer", "Fractional": "number", "String": "category"}
_SINCE = re.compile(r"([1-9]\d*)([hd])")
_RUN_ID_FORMAT = "%Y-%m-%dT%H-%M-%S"
_OPERATORS = {
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
}


@dataclass(frozen=True)
class Baselines:
    """What training registered with a version for monitoring (local s3:// URIs)."""

    version: int
    statistics: str
    constraints: str
    model_quality_constraints: str | None


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
    return monitor(config, s3, baselines, capture_dir, truth_dir, period, now)


def since_start(value: str | None, now: datetime) -> datetime | None:
    """The start of --since: a UTC date (YYYY-MM-DD), or N hours / days before now (Nh, Nd); None: every request."""
    if value is None:
        return None
    relative = _SINCE.fullmatch(value)
    if relative:
        amount, unit = int(relative[1]), relative[2]
        return now - (timedelta(hours=amount) if unit == "h" else timedelta(days=amount))
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(
            f"--since {value!r}: use a UTC date YYYY-MM-DD, or hours/days back such as 24h or 7d"
        ) from None


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
    return Baselines(chosen, statistics, constraints, quality if isinstance(quality, str) else None)


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
        _baseline(s3, uri, baselines.version) for uri in (baselines.statistics, baselines.constraints)
    )
    data_quality = check_data_quality(merged.traffic, statistics, constraints)
    model_quality = check_model_quality(merged, contract.label, s3, baselines)
    run_uri, folder = new_run_folder(config, s3, now)
    outputs = {
        "data-quality": data_quality,
        **({"model-quality": model_quality} if "statistics" in model_quality else {}),
    }
    for name, documents in outputs.items():
        for file_name in ("statistics", "constraints", "constraint_violations"):
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
        },
        "data_quality": {"violations": len(data_quality["constraint_violations"]["violations"])},
        "model_quality": model_quality.get("verdict", {}),
        "created": _iso(now),
        "outputs": run_uri,
        "local_outputs": str(folder),
    }
    _write_json(folder / "run.json", run)  # last: its presence marks a complete run
    return run


def check_data_quality(
    traffic: pd.DataFrame, statistics: dict[str, Any], constraints: dict[str, Any]
) -> dict[str, Any]:
    """Statistics, constraints and violations of the traffic, its columns named after the baseline's by position."""
    names = [feature["name"] for feature in statistics.get("features", [])]
    if len(names) != traffic.shape[1]:
        raise StepError(
            f"the baseline has {len(names)} feature(s) ({', '.join(names)}) but the captured traffic "
            f"{traffic.shape[1]} column(s) ({', '.join(traffic.columns)}): the analyzer matches them by position, "
            "output column first, so the baseline must be the score followed by the features in request order "
            "(a version whose baseline lacks the score column needs retraining)"
        )
    unknown = sorted({f["inferred_type"] for f in statistics["features"]} - set(_CONTRACT_TYPES))
    if unknown:
        raise StepError(f"the baseline has features of inferred type {unknown}: expected {sorted(_CONTRACT_TYPES)}")
    named = traffic.set_axis(names, axis="columns")
    by_baseline = {
        "features": [{"name": f["name"], "type": _CONTRACT_TYPES[f["inferred_type"]]} for f in statistics["features"]]
    }
    data_quality = _step("data_quality")
    try:
        current = data_quality.statistics(named, by_baseline)
        violations, _ = data_quality.check(named, statistics, constraints)
    except data_quality.StepError as error:
        raise StepError(str(error)) from None
    return {"statistics": current, "constraints": constraints, "constraint_violations": {"violations": violations}}


def check_model_quality(merged: Merged, label: str, s3: LocalS3, baselines: Baselines) -> dict[str, Any]:
    """Model-quality statistics, constraints and violations, with run.json's verdict; only the verdict if unchecked."""
    labelled = merged.labelled_data[label] != ""
    labels = merged.labelled_data.loc[labelled, label].astype(int).to_numpy()
    counts = [int((labels == value).sum()) for value in (0, 1)]
    if baselines.model_quality_constraints is None:
        return _not_checked(f"version {baselines.version} has no model-quality constraints (registered before them)")
    if min(counts) < MIN_LABELS_PER_CLASS:
        return _not_checked(
            f"too few labels: {counts[0]} of class 0 and {counts[1]} of class 1 among the captured requests "
            f"(each needs {MIN_LABELS_PER_CLASS})"
        )
    constraints = _baseline(s3, baselines.model_quality_constraints, baselines.version)
    probabilities = merged.traffic.loc[labelled, SCORE_COLUMN].astype(float).to_numpy()
    statistics = _step("evaluate").model_quality(labels, probabilities)
    violations = model_quality_violations(statistics, constraints)
    return {
        "statistics": statistics,
        "constraints": constraints,
        "constraint_violations": {"violations": violations},
        "verdict": {"checked": True, "violations": len(violations), "labelled": len(labels)},
    }


def model_quality_violations(statistics: dict[str, Any], constraints: dict[str, Any]) -> list[dict[str, str]]:
    """Model Monitor's violations of binary_classification_constraints: a point comparison per metric."""
    metrics = statistics["binary_classification_metrics"]
    violations = []
    for name, rule in sorted(constraints.get("binary_classification_constraints", {}).items()):
        operator, threshold = rule.get("comparison_operator"), rule.get("threshold")
        if name not in metrics or operator not in _OPERATORS or not isinstance(threshold, int | float):
            raise StepError(f"model-quality constraint {name}: {rule} is not a known metric, operator and threshold")
        value, deviation = metrics[name]["value"], metrics[name]["standard_deviation"]
        if _OPERATORS[operator](value, threshold):
            violations.append(
                {
                    "metric_name": name,
                    "constraint_check_type": operator,
                    "description": f"Metric {name} with {value:.4g} +/- {deviation:.4g} was {operator} '{threshold}'",
                }
            )
    return violations


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


def _not_checked(reason: str) -> dict[str, Any]:
    return {"verdict": {"checked": False, "reason": reason}}


def _baseline(s3: LocalS3, uri: str, version: int) -> dict[str, Any]:
    document = read_json(s3, uri)
    if not isinstance(document, dict):
        raise StepError(f"the baseline {uri} of version {version} is missing or not JSON under {shown(s3.root)}")
    return document


def _step(name: str) -> ModuleType:
    """A step script as a module: the monitor runs the pipelines' own checks, never a copy of them."""
    return importlib.import_module(f"pipeline_defs.steps.{name}")


def _uri(config: EnvironmentConfig, bucket: DeployTimeValue, key: str) -> str:
    return f"s3://{local_values(config.region)[bucket]}/{key}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, document: Any) -> None:
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
