"""`mlops monitor --local`: captured traffic against the served version's baselines, Model Monitor's outputs.

The state is built the way the local flow leaves it, without a training run: a registered version whose baselines
are computed by the step scripts' own functions on sample rows with the score first (the analyzer's layout), pinned
by `mlops promote --local`; requests captured by the local endpoint's writer; labels put by `mlops ground-truth put`.
"""

from __future__ import annotations

import importlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from config import load_config
from mlops.capture import CaptureWriter, record
from mlops.cli import main
from mlops.monitor import new_run_folder
from mlops.monitor_checks import MIN_LABELS_PER_CLASS
from pipeline_defs.local import LocalModelRegistry, LocalS3
from pipeline_defs.packaging import STEPS_DIR
from tests.cli.conftest import one_error_line

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "pipeline_defs" / "sample_data" / "churn" / "part-0000.csv"
DRIFTED = REPO_ROOT / "pipeline_defs" / "sample_data" / "churn-drifted" / "part-0000.csv"
CONTRACT = json.loads((STEPS_DIR / "feature_contract.json").read_text())
FEATURES = [feature["name"] for feature in CONTRACT["features"]]
ENDPOINT = "churn-dev-endpoint"
GROUP = "churn-dev-models"
BASELINE = "s3://local-artifacts/pipelines/churn-dev-training/test/exec-1"
CAPTURE = f"s3://local-artifacts/data-capture/{ENDPOINT}/AllTraffic/"
data_quality = importlib.import_module("pipeline_defs.steps.data_quality")
evaluate = importlib.import_module("pipeline_defs.steps.evaluate")


def clean_rows(path: Path, count: int) -> pd.DataFrame:
    """The first `count` rows with every feature present and numeric where declared, and a 0/1 label (as text)."""
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    numeric = [f["name"] for f in CONTRACT["features"] if f["type"] != "category"]
    complete = rows[FEATURES].ne("").all(axis=1) & rows[numeric].apply(pd.to_numeric, errors="coerce").notna().all(
        axis=1
    )
    return rows[complete & rows[CONTRACT["label"]].isin(["0", "1"])].head(count).reset_index(drop=True)


def churn_probability(rows: pd.DataFrame) -> np.ndarray:
    """A fixed "model": the sample's churn mechanism, roughly (short tenure, high charges, monthly contracts)."""
    tenure, charges = rows["tenure_months"].astype(float), rows["monthly_charges"].astype(float)
    logit = 0.06 * (charges - 65) - 0.08 * (tenure - 12) + 1.2 * (rows["contract"] == "month-to-month") - 1
    return (1 / (1 + np.exp(-logit))).to_numpy().round(6)


BASELINE_ROWS = clean_rows(SAMPLE, 400)


def write_json(s3: LocalS3, uri: str, document: dict[str, Any]) -> None:
    s3.path(uri).parent.mkdir(parents=True, exist_ok=True)
    s3.path(uri).write_text(json.dumps(document))


def register_version(state: Path, region: str, score_first: bool = True, model_quality: bool = True) -> int:
    """A version whose baselines the step scripts compute on BASELINE_ROWS: (score,) features, no label."""
    s3 = LocalS3(state / "s3")
    scores = churn_probability(BASELINE_ROWS)
    table = BASELINE_ROWS[FEATURES]
    features = CONTRACT["features"]
    if score_first:
        table = pd.concat([pd.DataFrame({"churn_probability": [repr(float(s)) for s in scores]}), table], axis=1)
        features = [{"name": "churn_probability", "type": "number"}, *features]
    declared = {"features": features}
    statistics = data_quality.statistics(table, declared)
    write_json(s3, f"{BASELINE}/DataQualityBaseline/statistics.json", statistics)
    write_json(s3, f"{BASELINE}/DataQualityBaseline/constraints.json", data_quality.constraints(statistics, declared))
    labels = BASELINE_ROWS[CONTRACT["label"]].astype(int).to_numpy()
    quality = evaluate.model_quality(labels, scores, load_config().model_quality_probability_threshold)
    write_json(s3, f"{BASELINE}/Evaluate/model_quality.json", quality)
    write_json(s3, f"{BASELINE}/Evaluate/constraints.json", evaluate.model_quality_constraints(quality, 0.05))
    model_metrics = {
        "Statistics": {"ContentType": "application/json", "S3Uri": f"{BASELINE}/Evaluate/model_quality.json"}
    }
    if model_quality:
        model_metrics["Constraints"] = {
            "ContentType": "application/json",
            "S3Uri": f"{BASELINE}/Evaluate/constraints.json",
        }
    package = LocalModelRegistry(state / "registry", region).register(
        {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "Approved",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": "local/sklearn",
                        "ModelDataUrl": f"{BASELINE}/Train/model.tar.gz",
                        "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": f"{BASELINE}/code/inference.tar.gz"},
                    }
                ],
                "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            },
            "ModelMetrics": {"ModelQuality": model_metrics},
            "DriftCheckBaselines": {
                "ModelDataQuality": {
                    key: {
                        "ContentType": "application/json",
                        "S3Uri": f"{BASELINE}/DataQualityBaseline/{key.lower()}.json",
                    }
                    for key in ("Statistics", "Constraints")
                }
            },
        }
    )
    return int(package["ModelPackageVersion"])


def capture(state: Path, rows: pd.DataFrame, when: datetime, ids: bool = True) -> None:
    """The requests as the local endpoint captures them: one CSV row each, answered with the model's probability."""
    writer = CaptureWriter(LocalS3(state / "s3").path(CAPTURE), 100)
    for index, (row, score) in enumerate(zip(rows[FEATURES].values.tolist(), churn_probability(rows), strict=True)):
        request = (",".join(row).encode(), "text/csv")
        line = record(request, (f"{score}\n".encode(), "text/csv"), when, f"req-{index}" if ids else None)
        writer.write(line, when)
    writer.close()


def put_labels(state: Path, labels: list[str], tmp_path: Path) -> None:
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text("inference_id,label\n" + "".join(f"req-{i},{label}\n" for i, label in enumerate(labels)))
    assert main(["ground-truth", "put", str(labels_file), "--local", "--state-dir", str(state)]) == 0


@pytest.fixture
def state(tmp_path, dev_config, capsys) -> Path:
    """Version 1 registered with score-first baselines and promoted locally."""
    folder = tmp_path / "state"
    register_version(folder, dev_config.region)
    assert main(["promote", "--local", "--version", "1", "--state-dir", str(folder)]) == 0
    capsys.readouterr()
    return folder


def monitor(state: Path, *options: str) -> int:
    return main(["monitor", "--local", "--state-dir", str(state), *options])


def last_run(state: Path) -> tuple[dict[str, Any], Path]:
    [run_file] = sorted((state / "s3" / "local-artifacts" / "monitoring" / ENDPOINT).glob("*/run.json"))
    return json.loads(run_file.read_text()), run_file.parent


NOW = datetime.now(UTC).replace(microsecond=0)


# Verdicts -----------------------------------------------------------------------------------------------------------
def test_the_baselines_own_rows_with_their_labels_violate_nothing(state, tmp_path, capsys) -> None:
    capture(state, BASELINE_ROWS, NOW - timedelta(minutes=1))
    put_labels(state, BASELINE_ROWS[CONTRACT["label"]].tolist(), tmp_path)
    capsys.readouterr()

    assert monitor(state, "--fail-on-violation") == 0

    run, folder = last_run(state)
    assert run["data_quality"] == {"violations": 0}
    assert run["model_quality"] == {"checked": True, "violations": 0, "labelled": len(BASELINE_ROWS)}
    assert (run["model_package_version"], run["records"], run["labelled"]) == (
        1,
        len(BASELINE_ROWS),
        len(BASELINE_ROWS),
    )
    assert run["baseline"]["statistics"] == f"{BASELINE}/DataQualityBaseline/statistics.json"
    assert run["baseline"]["model_quality_constraints"] == f"{BASELINE}/Evaluate/constraints.json"
    for kind in ("data-quality", "model-quality"):
        for name in ("statistics", "constraints", "constraint_violations"):
            assert json.loads((folder / kind / f"{name}.json").read_text()), (kind, name)
    statistics = json.loads((folder / "data-quality" / "statistics.json").read_text())
    assert [f["name"] for f in statistics["features"]] == ["churn_probability", *FEATURES]  # named by position
    assert statistics["dataset"]["item_count"] == len(BASELINE_ROWS)
    out = capsys.readouterr().out
    assert "data quality: 0 violation(s)" in out and f"model quality: 0 violation(s) on {len(BASELINE_ROWS)}" in out


def test_drifted_traffic_violates_the_drift_check_of_the_drifted_features(state, capsys) -> None:
    capture(state, clean_rows(DRIFTED, 300), NOW - timedelta(minutes=1), ids=False)

    assert monitor(state, "--fail-on-violation") == 1

    run, folder = last_run(state)
    violations = json.loads((folder / "data-quality" / "constraint_violations.json").read_text())["violations"]
    drifted = {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
    # Deequ's robust distance: the contract shift in 300 rows (gap 0.22) stays within its sampling margin (0.14).
    assert {"monthly_charges", "internet_service", "support_calls", "churn_probability"} <= drifted
    assert run["data_quality"]["violations"] == len(violations)
    distances = json.loads((folder / "data-quality" / "drift_report.json").read_text())["per_feature"]
    assert {name for name, entry in distances.items() if entry["drifted"]} == drifted
    assert run["model_quality"] == {
        "checked": False,
        "reason": f"too few labels: 0 of class 0 and 0 of class 1 among the captured requests (each needs "
        f"{MIN_LABELS_PER_CLASS})",
    }
    assert not (folder / "model-quality").exists()
    out = capsys.readouterr().out
    assert "data-quality: monthly_charges: baseline_drift_check: Distance" in out


def test_the_report_page_of_a_run_shows_each_features_drift_distance(state, tmp_path, capsys) -> None:
    # No request has a payment method (the contract lets it be missing): nothing to compare, no distance.
    capture(state, clean_rows(DRIFTED, 300).assign(payment_method=""), NOW - timedelta(minutes=1), ids=False)
    assert monitor(state) == 0
    _, folder = last_run(state)
    distances = json.loads((folder / "data-quality" / "drift_report.json").read_text())["per_feature"]
    page = tmp_path / "page.html"

    assert (
        main(["report", "--monitoring-run", folder.name, "--local", "--state-dir", str(state), "--html", str(page)])
        == 0
    )

    shown = dict(re.findall(r"<tr[^>]*><td>(\w+)</td><td>\w+</td><td>([^<]*)</td>", page.read_text()))
    assert set(distances) == {"churn_probability", *FEATURES} and distances["payment_method"]["distance"] is None
    assert {name: shown[name] for name in distances} == {
        name: "-" if entry["distance"] is None else f"{entry['distance']:.4f}" for name, entry in distances.items()
    }


def test_flipped_labels_violate_the_model_quality_constraints(state, tmp_path) -> None:
    capture(state, BASELINE_ROWS, NOW - timedelta(minutes=1))
    put_labels(state, [str(1 - int(label)) for label in BASELINE_ROWS[CONTRACT["label"]]], tmp_path)

    assert monitor(state, "--fail-on-violation") == 1

    run, folder = last_run(state)
    violations = json.loads((folder / "model-quality" / "constraint_violations.json").read_text())["violations"]
    assert {v["metric_name"] for v in violations} >= {"auc", "f1", "recall"}
    assert {v["constraint_check_type"] for v in violations} == {"LessThanThreshold"}
    # The AUC by its drop from the version's registered evaluation AUC (its model-quality statistics).
    [auc] = [v["description"] for v in violations if v["metric_name"] == "auc"]
    assert "below the version's evaluated" in auc and "lower bound of the drop" in auc
    assert run["baseline"]["model_quality_statistics"] == f"{BASELINE}/Evaluate/model_quality.json"
    assert run["model_quality"]["violations"] == len(violations) and run["data_quality"]["violations"] == 0


def test_json_prints_run_json_and_since_leaves_out_older_requests(state, capsys) -> None:
    capture(state, BASELINE_ROWS.head(50), NOW - timedelta(hours=3))
    capture(state, BASELINE_ROWS.tail(60), NOW - timedelta(minutes=1))
    capsys.readouterr()

    assert monitor(state, "--since", "2h", "--json") == 0

    printed = json.loads(capsys.readouterr().out)
    run, _ = last_run(state)
    assert printed == run and run["records"] == 60 and run["merge"]["records"] == 110
    assert datetime.fromisoformat(run["period"]["start"]) < NOW - timedelta(hours=1)


def test_runs_in_the_same_second_get_folders_of_their_own(tmp_path, dev_config) -> None:
    s3, now = LocalS3(tmp_path / "s3"), datetime(2026, 11, 29, 13, 30, 5, tzinfo=UTC)
    first, second = (new_run_folder(dev_config, s3, now) for _ in range(2))
    assert first[0] == f"s3://local-artifacts/monitoring/{ENDPOINT}/2026-11-29T13-30-05/"
    assert second[0] == f"s3://local-artifacts/monitoring/{ENDPOINT}/2026-11-29T13-30-05-2/"
    assert first[1].is_dir() and second[1].is_dir()


# Bad input ---------------------------------------------------------------------------------------------------------
def error_line(capsys) -> str:
    return one_error_line(capsys.readouterr().err)


def test_usage_errors_are_one_line_exit_2(state, tmp_path, dev_config, capsys) -> None:
    assert main(["monitor", "--state-dir", str(state)]) == 2
    assert "pass --local" in error_line(capsys)
    assert monitor(state) == 2
    assert f"no data capture of {ENDPOINT} under" in error_line(capsys)

    capture(state, BASELINE_ROWS.head(5), NOW - timedelta(minutes=1))
    assert monitor(state, "--since", "yesterday") == 2
    assert "--since 'yesterday': use a UTC date YYYY-MM-DD" in error_line(capsys)
    assert monitor(state, "--version", "7") == 2
    assert "churn-dev-models has no version 7" in error_line(capsys)

    (state / "deployments.json").unlink()
    assert monitor(state) == 2
    assert "nothing is promoted for dev" in error_line(capsys)

    registry = LocalModelRegistry(state / "registry", dev_config.region)
    registry.register(
        {"ModelPackageGroupName": GROUP, "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://b/m"}]}}
    )
    assert monitor(state, "--version", "2") == 2
    assert "version 2 has no data-quality baseline" in error_line(capsys)


def test_a_baseline_without_the_score_column_is_one_error_naming_both_counts(tmp_path, dev_config, capsys) -> None:
    state = tmp_path / "state"
    version = register_version(state, dev_config.region, score_first=False)
    capture(state, BASELINE_ROWS.head(40), NOW - timedelta(minutes=1))

    assert monitor(state, "--version", str(version)) == 1

    line = error_line(capsys)
    assert "the baseline has 7 feature(s)" in line and "the captured traffic 8 column(s) (churn_probability, " in line
    assert not list((state / "s3").rglob("run.json"))


def test_bad_traffic_is_the_merge_steps_error_exit_1(state, tmp_path, capsys) -> None:
    capture(state, BASELINE_ROWS.head(3), NOW - timedelta(minutes=1))
    labels = tmp_path / "other.csv"
    labels.write_text("inference_id,label\nnobody,1\n")
    assert main(["ground-truth", "put", str(labels), "--local", "--state-dir", str(state)]) == 0
    capsys.readouterr()

    assert monitor(state) == 1
    line = error_line(capsys)
    assert "none of the 1 ground-truth label(s) under" in line and "(e.g. 'nobody')" in line

    writer = CaptureWriter(LocalS3(state / "s3").path(CAPTURE), 100)
    writer.write(record((b"1,2,3", "text/csv"), (b"0.5\n", "text/csv"), NOW), NOW)
    writer.close()
    assert monitor(state) == 1
    assert "line 1: the request has 3 columns: expected 7" in error_line(capsys)
    assert not list((state / "s3").rglob("run.json"))


def test_a_version_without_model_quality_constraints_is_not_checked_for_it(tmp_path, dev_config, capsys) -> None:
    state = tmp_path / "state"
    version = register_version(state, dev_config.region, model_quality=False)
    capture(state, BASELINE_ROWS, NOW - timedelta(minutes=1))
    put_labels(state, BASELINE_ROWS[CONTRACT["label"]].tolist(), tmp_path)

    assert monitor(state, "--version", str(version), "--fail-on-violation") == 0

    run, _ = last_run(state)
    assert run["model_quality"] == {
        "checked": False,
        "reason": "version 1 has no model-quality constraints (registered before them)",
    }
