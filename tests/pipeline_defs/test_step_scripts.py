"""The pipeline step scripts, run the way SageMaker runs them: one process each, with paths passed as arguments.

The serving functions and the SageMaker registry backend are imported in-process instead, because the container calls
the former and the test needs a stubbed boto3 client for the latter. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from datetime import datetime
from pathlib import Path
from types import ModuleType

import boto3
import numpy as np
import pandas as pd
import pytest
import scipy.stats
from botocore.stub import Stubber

from pipeline_defs.local.forkserver import preloaded
from pipeline_defs.local.inference import InferenceProcess, ModelCodeError
from pipeline_defs.local.step_runtime import steps_python
from tests.helpers import load_module, step_runtime_probabilities

pytestmark = pytest.mark.heavy(seconds=35)  # scheduled first, longest first (tests/conftest.py)

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = REPO_ROOT / "pipeline_defs" / "steps"
SAMPLE_DATA = REPO_ROOT / "pipeline_defs" / "sample_data"
GROUP = "churn-dev-models"
CONTRACT = json.loads((STEPS / "feature_contract.json").read_text())
LABEL = CONTRACT["label"]
FEATURES = [feature["name"] for feature in CONTRACT["features"]]


def run_script(script: Path, *args: object, env: dict[str, str] | None = None, expect: int = 0):
    """The script run on the step runtime as a local run's job is (through its preloaded server)."""
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(
        preloaded([steps_python(), str(script), *map(str, args)], environment),
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == expect, f"{script.name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def run_step(name: str, *args: object, env: dict[str, str] | None = None, expect: int = 0):
    return run_script(STEPS / f"{name}.py", *args, env=env, expect=expect)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def import_step(name: str) -> ModuleType:
    return load_module(f"step_{name}", STEPS / f"{name}.py")


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def model_package(version: int, status: str, model_data_url: str) -> dict:
    """A DescribeModelPackage response as boto3 returns it; version N was created on day N of May 2024."""
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/{version}"
    baselines = "s3://artifacts/baselines/data-quality"
    return {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageName": GROUP,
        "ModelPackageArn": arn,
        "CreationTime": datetime.fromisoformat(f"2024-05-{version:02d}T12:00:00+00:00"),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [{"Image": "sklearn:1.4-2", "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{baselines}/statistics.json"},
                "Constraints": {"ContentType": "application/json", "S3Uri": f"{baselines}/constraints.json"},
            }
        },
    }


def register_locally(registry: Path, package: dict) -> None:
    """Stores `package` the way the local registry keeps it: CreationTime as an ISO 8601 string."""
    path = registry / GROUP / f"{package['ModelPackageVersion']:06d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**package, "CreationTime": package["CreationTime"].isoformat().replace("+00:00", "Z")}))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("prepared")
    run_step("preprocess", "--input-dir", SAMPLE_DATA / "churn", "--output-dir", output)
    return output


def train(prepared: Path, model_dir: Path, *hyperparameters: object) -> subprocess.CompletedProcess:
    return run_step(
        "train",
        "--train",
        prepared / "train",
        "--validation",
        prepared / "validation",
        "--model-dir",
        model_dir,
        "--output-data-dir",
        model_dir.parent / f"{model_dir.name}-output",
        *hyperparameters,
    )


@pytest.fixture(scope="module")
def model_dir(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("training") / "model"
    result = train(prepared, model_dir)
    roc_auc = float(re.search(r"^validation_roc_auc=([0-9.]+)$", result.stdout, re.MULTILINE).group(1))
    assert 0.75 <= roc_auc <= 0.95
    assert read_json(model_dir.parent / "model-output" / "metrics.json")["validation_roc_auc"] == pytest.approx(roc_auc)
    return model_dir


@pytest.fixture(scope="module")
def worse_model_dir(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-stump model, packaged as model.tar.gz like a training job's output."""
    model_dir = tmp_path_factory.mktemp("worse-training") / "model"
    train(prepared, model_dir, "--n-estimators", 1, "--max-depth", 1)
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as archive:
        archive.add(model_dir / "model.joblib", arcname="model.joblib")
    (model_dir / "model.joblib").unlink()
    return model_dir


@pytest.fixture(scope="module")
def baseline_dir(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("baseline")
    run_step("data_quality", "baseline", "--data-dir", prepared / "test", "--output-dir", output)
    return output


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The drifted sample as the eval-only pipeline's Preprocess leaves it (every clean row in test/)."""
    output = tmp_path_factory.mktemp("drifted")
    run_step("preprocess", "--input-dir", SAMPLE_DATA / "churn-drifted", "--output-dir", output, "--mode", "evaluate")
    return output


def resolve(registry: Path, output_dir: Path, *args: object, expect: int = 0) -> subprocess.CompletedProcess:
    env = {"REGISTRY_BACKEND": "local", "LOCAL_REGISTRY_DIR": str(registry), "MODEL_PACKAGE_GROUP_NAME": GROUP}
    return run_step("resolve_model", "--output-dir", output_dir, *args, env=env, expect=expect)


def evaluate(candidate: Path, incumbent: Path, data_dir: Path, output_dir: Path, confidence: float = 0.95) -> dict:
    """Runs evaluate.py on data_dir/test and returns its evaluation.json."""
    run_step(
        "evaluate",
        *("--model-dir", candidate, "--incumbent-dir", incumbent, "--test-dir", data_dir / "test"),
        *("--confidence-level", confidence, "--probability-threshold", 0.5, "--output-dir", output_dir),
    )
    return read_json(output_dir / "evaluation.json")


def test_sample_data_is_up_to_date() -> None:
    run_script(SAMPLE_DATA / "generate.py", "--check")


def test_preprocess_is_deterministic_and_splits_without_overlap(prepared: Path, tmp_path: Path) -> None:
    run_step("preprocess", "--input-dir", SAMPLE_DATA / "churn", "--output-dir", tmp_path)

    parts = {name: prepared / name / f"{name}.csv" for name in ("train", "validation", "test")}
    for name, path in parts.items():
        assert (tmp_path / name / f"{name}.csv").read_bytes() == path.read_bytes()
        assert (tmp_path / name / "row_keys.txt").read_bytes() == (path.parent / "row_keys.txt").read_bytes()
    frames = {name: pd.read_csv(path) for name, path in parts.items()}
    keys = {name: (prepared / name / "row_keys.txt").read_text().split() for name in parts}
    assert all(len(keys[name]) == len(frames[name]) for name in parts)
    assert not set(keys["train"]) & set(keys["validation"])
    assert not set(keys["train"]) & set(keys["test"])
    assert not set(keys["validation"]) & set(keys["test"])
    total = sum(len(frame) for frame in frames.values())
    # A hash split is a fair coin per row: within 3 standard deviations (~18 rows) of 20 % of ~2,000.
    assert len(frames["test"]) == pytest.approx(0.2 * total, abs=54)
    assert len(frames["validation"]) == pytest.approx(0.2 * total, abs=54)
    for frame in frames.values():
        assert list(frame.columns) == [*FEATURES, LABEL]
        assert set(frame[LABEL]) == {0, 1}
        assert not frame.isna().any().any()


def test_preprocess_evaluate_mode_writes_every_clean_row_to_test(tmp_path: Path) -> None:
    run_step("preprocess", "--input-dir", SAMPLE_DATA, "--output-dir", tmp_path, "--mode", "evaluate")

    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.csv")) == ["test/test.csv"]
    raw = pd.concat([pd.read_csv(path, dtype=str) for path in sorted(SAMPLE_DATA.rglob("*.csv"))])
    test = pd.read_csv(tmp_path / "test" / "test.csv")
    report = read_json(tmp_path / "report" / "preprocess_report.json")
    # The bundled sample's dirt: 5 tenures of "?" break the contract (not a number) and their rows are dropped.
    assert report["invalid_values"] == {"tenure_months": {"not a number": 5}}
    # Rows without a label stay, their label empty: captured traffic is scored and drift-checked before anyone labels
    # it (the bundled sample has some); the rest of the contract holds for them as for every row.
    clean = raw.drop_duplicates()
    assert len(test) == len(clean) - 5 == report["rows_written"]["test"]
    assert report["unlabelled_rows"] == int(test[LABEL].isna().sum()) == int(clean[LABEL].isna().sum()) > 0
    assert not test.drop(columns=[LABEL]).isna().any().any()
    assert set(test[LABEL].dropna()) == {0, 1}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"_SUCCESS": ""}, "no *.csv files found"),
        ({"part.csv": "tenure_months,contract\n3,one-year\n"}, "label column 'churned' not found"),
    ],
)
def test_preprocess_rejects_bad_input_with_one_line(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, content in files.items():
        (tmp_path / "input" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "input" / name).write_text(content)

    result = run_step("preprocess", "--input-dir", tmp_path / "input", "--output-dir", tmp_path / "out", expect=1)
    assert_one_line_error(result, message)


def test_preprocess_names_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "part.csv").write_bytes("tenure_months,contract,churned\n3,één-jaar,0\n".encode("latin-1"))

    result = run_step("preprocess", "--input-dir", tmp_path / "input", "--output-dir", tmp_path / "out", expect=1)
    assert_one_line_error(result, "part.csv is not UTF-8 text (invalid continuation byte): save it as UTF-8")


def test_first_run_has_no_incumbent(model_dir: Path, prepared: Path, tmp_path: Path) -> None:
    resolved_dir = tmp_path / "resolved"
    resolve(
        tmp_path / "empty-registry",
        resolved_dir,
        *("--no-incumbent-uri", "s3://artifacts/run/resolved/none", "--no-quality-uri", "s3://artifacts/placeholder/"),
    )

    assert read_json(resolved_dir / "resolved.json") == {
        "found": False,
        "model_package_arn": None,
        "model_package_version": None,
        "model_data_url": "s3://artifacts/run/resolved/none",
        "statistics_uri": None,
        "constraints_uri": None,
        "baseline_uri": None,
        "model_quality_statistics_uri": None,
        "model_quality_input_uri": "s3://artifacts/placeholder/",
    }
    evaluation = evaluate(model_dir, resolved_dir / "none", prepared, tmp_path / "evaluation")
    assert evaluation["has_incumbent"] is False
    assert evaluation["incumbent"] is None
    assert evaluation["incumbent_score"] is None
    assert evaluation["comparison"] is None
    assert evaluation["delta"] is None
    # The gate's condition compares numbers (and ORs on has_incumbent): no incumbent is 0.0, never a fake score.
    assert evaluation["regression"] == evaluation["regression_lower_bound"] == 0.0
    rows = evaluation["candidate"]["rows"]
    assert (
        evaluation["summary"]
        == f"roc_auc {evaluation['candidate_score']:.4g} on {rows} labelled test rows; no incumbent compared."
    )
    assert evaluation["metric"] == "roc_auc"
    assert evaluation["candidate_score"] == evaluation["candidate"]["roc_auc"]
    assert 0.75 <= evaluation["candidate_score"] <= 0.95
    assert set(evaluation["candidate"]) == {"roc_auc", "accuracy", "f1", "precision", "recall", "rows"}
    assert evaluation["candidate"]["rows"] == len(pd.read_csv(prepared / "test" / "test.csv"))

    quality = read_json(tmp_path / "evaluation" / "model_quality.json")
    assert quality["version"] == 0.0
    assert quality["dataset"]["item_count"] == evaluation["candidate"]["rows"]
    metrics = quality["binary_classification_metrics"]
    assert metrics["auc"]["value"] == evaluation["candidate_score"]
    for name in ("accuracy", "f1", "precision", "recall", "auc", "f0_5", "f2", "true_positive_rate"):
        assert 0.0 < metrics[name]["standard_deviation"] < 0.1
    matrix = metrics["confusion_matrix"]
    assert sum(matrix[actual][predicted] for actual in "01" for predicted in "01") == evaluation["candidate"]["rows"]


def test_incumbent_from_the_registry_is_evaluated_on_the_same_rows(
    model_dir: Path, worse_model_dir: Path, prepared: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    register_locally(registry, model_package(1, "Approved", str(model_dir)))
    register_locally(registry, model_package(2, "Rejected", "s3://elsewhere"))
    resolve(registry, tmp_path / "resolved", "--no-incumbent-uri", "s3://artifacts/run/resolved/none")

    resolved = read_json(tmp_path / "resolved" / "resolved.json")
    assert resolved == {
        "found": True,
        "model_package_arn": f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/1",
        "model_package_version": 1,
        "model_data_url": str(model_dir),
        "statistics_uri": "s3://artifacts/baselines/data-quality/statistics.json",
        "constraints_uri": "s3://artifacts/baselines/data-quality/constraints.json",
        "baseline_uri": "s3://artifacts/baselines/data-quality",
        "model_quality_statistics_uri": None,  # registered without model-quality statistics: "none"
        "model_quality_input_uri": None,  # and no --no-quality-uri (the training pipeline's ResolveIncumbent)
    }
    assert not (tmp_path / "resolved" / "none").exists()

    same = evaluate(model_dir, Path(resolved["model_data_url"]), prepared, tmp_path / "same")
    assert same["has_incumbent"] is True
    assert same["incumbent"] == same["candidate"]
    assert same["delta"] == pytest.approx(0.0, abs=1e-12)
    # The same model on the same rows: the paired interval is exactly [0, 0].
    assert same["comparison"]["lower_bound"] == same["comparison"]["upper_bound"] == 0.0
    assert same["comparison"]["incumbent_trained_on_test_rows"] == 0  # the hash split keeps test rows out of training

    worse = evaluate(worse_model_dir, Path(resolved["model_data_url"]), prepared, tmp_path / "worse")
    assert worse["incumbent_score"] == same["candidate_score"]
    assert worse["candidate_score"] < worse["incumbent_score"] - 0.01
    assert worse["delta"] == pytest.approx(worse["candidate_score"] - worse["incumbent_score"])
    comparison = worse["comparison"]
    assert worse["regression"] == pytest.approx(-worse["delta"]) == pytest.approx(comparison["regression"])
    assert comparison["rows"] == worse["candidate"]["rows"]
    assert 0.01 < comparison["lower_bound"] == worse["regression_lower_bound"] < comparison["regression"]
    assert comparison["upper_bound"] - comparison["regression"] == pytest.approx(
        1.96 * comparison["standard_error"], rel=1e-3
    )
    assert worse["summary"] == (
        f"candidate roc_auc {worse['candidate_score']:.4g} vs approved model roc_auc {worse['incumbent_score']:.4g} on "
        f"the same {comparison['rows']} test rows: regression {comparison['regression']:.4g}, 95% CI "
        f"[{comparison['lower_bound']:.4g}, {comparison['upper_bound']:.4g}]."
    )
    wider = evaluate(worse_model_dir, Path(resolved["model_data_url"]), prepared, tmp_path / "wider", confidence=0.99)
    assert wider["comparison"]["lower_bound"] < comparison["lower_bound"]
    assert "99% CI" in wider["summary"]


def test_a_candidate_given_by_its_scores_gets_the_report_of_its_model(
    model_dir: Path, worse_model_dir: Path, prepared: Path, tmp_path: Path
) -> None:
    """--candidate-scores (how experiments hand a candidate over): the same report as the model that scored them.
    Through the step's importable run(), in the step runtime: one interpreter for the three runs."""
    calls = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(STEPS)!r})
import evaluate
common = dict(incumbent_dir=Path({str(model_dir)!r}), test_dir=Path({str(prepared / "test")!r}),
              contract=Path({str(STEPS / "feature_contract.json")!r}), confidence_level=0.95, probability_threshold=0.5)
out, candidate = Path({str(tmp_path)!r}), Path({str(worse_model_dir)!r})
by_model = evaluate.run(model_dir=candidate, output_dir=out / "by-model", **common)
evaluate.run(model_dir=candidate, test_dir=common["test_dir"], contract=common["contract"], output_dir=out / "scored",
             score_only=True)
by_scores = evaluate.run(candidate_scores=out / "scored" / "scored.csv", output_dir=out / "by-scores", **common)
print(json.dumps([by_model, by_scores]))
"""
    done = subprocess.run([steps_python(), "-c", calls], capture_output=True, text=True, timeout=120, check=True)
    by_model, by_scores = json.loads(done.stdout.splitlines()[-1])
    assert by_scores == by_model == read_json(tmp_path / "by-model" / "evaluation.json")
    assert by_model["has_incumbent"] and by_model["comparison"]["lower_bound"] > 0  # a real comparison, not [0, 0]
    assert read_json(tmp_path / "by-scores" / "curves.json") == read_json(tmp_path / "by-model" / "curves.json")

    scores = tmp_path / "scored" / "scored.csv"
    short = tmp_path / "short.csv"
    short.write_text("".join(scores.read_text().splitlines(keepends=True)[:-1]))
    rows = len(scores.read_text().splitlines()) - 1
    step = import_step("evaluate")
    with pytest.raises(step.StepError, match=f"has {rows - 1} scores for the {rows} test rows"):
        step.read_candidate_scores(short, rows, "churn_probability")
    with pytest.raises(step.StepError, match="needs a numeric 'score' column"):
        step.read_candidate_scores(scores, rows, "score")


def test_resolve_writes_the_no_incumbent_marker_to_the_sentinel_dir(tmp_path: Path) -> None:
    resolve(tmp_path / "empty-registry", tmp_path / "resolved", "--sentinel-dir", tmp_path / "sentinel")

    assert (tmp_path / "sentinel" / "NO_INCUMBENT").is_file()
    assert not (tmp_path / "resolved" / "none").exists()
    assert read_json(tmp_path / "resolved" / "resolved.json")["found"] is False


def test_resolve_requires_an_approved_package_when_asked(tmp_path: Path) -> None:
    result = resolve(tmp_path / "empty-registry", tmp_path / "resolved", "--require", expect=1)

    assert_one_line_error(result, f"no Approved model package in group '{GROUP}'")
    assert not (tmp_path / "resolved" / "resolved.json").exists()


def test_resolve_sagemaker_backend_asks_for_the_latest_approved_package() -> None:
    resolve_model = import_step("resolve_model")
    client = boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    package = model_package(3, "Approved", "s3://artifacts/model.tar.gz")
    evaluated = "s3://artifacts/run/Evaluate/evaluation/model_quality.json"
    package["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluated}}}
    summary = {key: package[key] for key in ("ModelPackageArn", "CreationTime", "ModelPackageStatus")}
    list_request = {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 1,
    }
    with Stubber(client) as stubber:
        stubber.add_response("list_model_packages", {"ModelPackageSummaryList": [summary]}, list_request)
        stubber.add_response("describe_model_package", package, {"ModelPackageName": package["ModelPackageArn"]})
        stubber.add_response("list_model_packages", {"ModelPackageSummaryList": []}, list_request)
        stubber.add_client_error("describe_model_package", "ValidationException", "Model package does not exist.")

        registry = resolve_model.SageMakerRegistry(client)
        found = resolve_model.find(registry, GROUP, "latest")
        assert resolve_model.resolved(found, None, "s3://artifacts/placeholder/") == {
            "found": True,
            "model_package_arn": package["ModelPackageArn"],
            "model_package_version": 3,
            "model_data_url": "s3://artifacts/model.tar.gz",
            "statistics_uri": "s3://artifacts/baselines/data-quality/statistics.json",
            "constraints_uri": "s3://artifacts/baselines/data-quality/constraints.json",
            "baseline_uri": "s3://artifacts/baselines/data-quality",
            "model_quality_statistics_uri": evaluated,
            "model_quality_input_uri": evaluated,  # the registered statistics, not the placeholder
        }
        assert resolve_model.find(registry, GROUP, "latest") is None
        with pytest.raises(resolve_model.StepError, match=r"describe_model_package failed.*does not exist"):
            resolve_model.find(registry, GROUP, package["ModelPackageArn"])
        stubber.assert_no_pending_responses()


def test_data_quality_baseline_is_in_model_monitor_format(baseline_dir: Path, prepared: Path) -> None:
    statistics = read_json(baseline_dir / "statistics.json")
    constraints = read_json(baseline_dir / "constraints.json")

    test_rows = len(pd.read_csv(prepared / "test" / "test.csv"))
    assert statistics["dataset"] == {"item_count": test_rows}
    types = {feature["name"]: feature["inferred_type"] for feature in statistics["features"]}
    assert types == {
        "tenure_months": "Integral",
        "monthly_charges": "Fractional",
        "total_charges": "Fractional",
        "contract": "String",
        "payment_method": "String",
        "internet_service": "String",
        "support_calls": "Integral",
    }
    for feature in statistics["features"]:
        if feature["inferred_type"] == "String":
            buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
            assert sum(bucket["count"] for bucket in buckets) == test_rows
        else:
            numeric = feature["numerical_statistics"]
            assert numeric["common"] == {"num_present": test_rows, "num_missing": 0}
            buckets = numeric["distribution"]["kll"]["buckets"]
            assert sum(bucket["count"] for bucket in buckets) == test_rows
            assert buckets[0]["lower_bound"] == numeric["min"] and buckets[-1]["upper_bound"] == numeric["max"]
    assert [feature["name"] for feature in constraints["features"]] == list(types)
    assert constraints["features"][3]["string_constraints"]["domains"] == ["month-to-month", "one-year", "two-year"]
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == "Robust"
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1


def test_eval_only_path_scores_new_data_and_flags_its_drift(
    model_dir: Path, baseline_dir: Path, drifted: Path, tmp_path: Path
) -> None:
    evaluation = evaluate(model_dir, tmp_path / "no-incumbent-mounted", drifted, tmp_path / "evaluation")
    assert evaluation["has_incumbent"] is False
    assert evaluation["candidate"]["rows"] == 500

    args = ("--data-dir", drifted / "test", "--baseline-dir", baseline_dir, "--output-dir", tmp_path / "drift")
    run_step("data_quality", "check", *args)
    violations = read_json(tmp_path / "drift" / "constraint_violations.json")["violations"]
    report = read_json(tmp_path / "drift" / "drift_report.json")
    assert report["violations"] == len(violations) > 0
    assert report["features_checked"] == 7
    flagged = {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
    # The generator shifts charges, contracts, fiber and support calls; with the baseline's Robust distance the
    # contract shift (a 0.22 gap in shares) stays within the sampling margin for 392 vs 500 rows (0.12).
    assert {"monthly_charges", "internet_service", "support_calls"} <= flagged
    assert report["max_distance"] > 0.1
    assert all(report["per_feature"][name]["drifted"] for name in flagged)


def test_data_quality_passes_clean_held_out_data(baseline_dir: Path, prepared: Path, tmp_path: Path) -> None:
    args = ("--data-dir", prepared / "validation", "--baseline-dir", baseline_dir, "--output-dir", tmp_path)
    run_step("data_quality", "check", *args)

    assert read_json(tmp_path / "constraint_violations.json") == {"violations": []}
    report = read_json(tmp_path / "drift_report.json")
    assert report["violations"] == 0
    assert report["features_checked"] == 7
    # Every feature compared; the robust distance takes off the sampling margin, so same-population data sits near 0.
    assert all(entry["distance"] is not None for entry in report["per_feature"].values())
    assert 0.0 <= report["max_distance"] < 0.1


def test_data_quality_check_reports_each_constraint_violation(baseline_dir: Path, prepared: Path) -> None:
    data_quality = import_step("data_quality")
    features = (
        data_quality.read_features(prepared / "test", LABEL).drop(columns=["support_calls"]).assign(region="north")
    )
    quarter = len(features) // 4
    features.loc[:quarter, "tenure_months"] = "unknown"
    features.loc[:quarter, "contract"] = "three-year"
    features.loc[:10, "payment_method"] = ""

    violations, report = data_quality.check(
        features, read_json(baseline_dir / "statistics.json"), read_json(baseline_dir / "constraints.json")
    )
    assert {(violation["feature_name"], violation["constraint_check_type"]) for violation in violations} == {
        ("support_calls", "missing_column_check"),
        ("region", "extra_column_check"),
        ("tenure_months", "data_type_check"),
        ("contract", "categorical_values_check"),
        ("contract", "baseline_drift_check"),
    }  # payment_method's missing values are no violation: the contract declares it nullable
    # A feature the contract does not let be missing keeps the baseline's completeness as its floor.
    strict = {**CONTRACT, "features": [{**f, "nullable": f["name"] != "payment_method"} for f in CONTRACT["features"]]}
    statistics = read_json(baseline_dir / "statistics.json")
    violations, _ = data_quality.check(features, statistics, data_quality.constraints(statistics, strict))
    assert ("payment_method", "completeness_check") in {
        (violation["feature_name"], violation["constraint_check_type"]) for violation in violations
    }
    assert set(report) == {
        "tenure_months",
        "monthly_charges",
        "total_charges",
        "contract",
        "payment_method",
        "internet_service",
    }


def test_in_range_outliers_in_the_baseline_do_not_blind_the_drift_check(prepared: Path, drifted: Path) -> None:
    """Ten legal rows at monthly_charges 9999 stretch the baseline's equal-width buckets; the distance must not care."""
    data_quality = import_step("data_quality")
    ceiling = next(feature["max"] for feature in CONTRACT["features"] if feature["name"] == "monthly_charges")
    baseline_rows = data_quality.read_features(prepared / "test", LABEL)
    outliers = baseline_rows.head(10).assign(monthly_charges=str(ceiling - 1))  # inside the contract's range
    new_rows = data_quality.read_features(drifted / "test", LABEL)

    def monthly_charges_drift(rows: pd.DataFrame) -> dict:
        statistics = data_quality.statistics(rows, CONTRACT)
        _, report = data_quality.check(new_rows, statistics, data_quality.constraints(statistics, CONTRACT))
        return report["monthly_charges"]

    plain = monthly_charges_drift(baseline_rows)
    stretched = monthly_charges_drift(pd.concat([baseline_rows, outliers], ignore_index=True))
    assert plain["drifted"] and stretched["drifted"]
    assert stretched["distance"] == pytest.approx(plain["distance"], abs=0.05)  # 10 of 402 rows move the CDF 2.5 %


def one_feature_drift(baseline: dict, cells: list, method: str) -> dict:
    """The drift report entry of feature "x" with `baseline` statistics, compared by `method` at threshold 0.1."""
    data_quality = import_step("data_quality")
    inferred_type = "String" if "string_statistics" in baseline else "Fractional"
    distribution = {**data_quality.MONITORING_CONFIG["distribution_constraints"], "comparison_method": method}
    constraints = {
        "features": [{"name": "x", "inferred_type": inferred_type, "completeness": 0.0}],
        "monitoring_config": {**data_quality.MONITORING_CONFIG, "distribution_constraints": distribution},
    }
    statistics = {"features": [{"name": "x", "inferred_type": inferred_type, **baseline}]}
    _, report = data_quality.check(pd.DataFrame({"x": [str(cell) for cell in cells]}), statistics, constraints)
    return report["x"]


def sketch(*levels: list[float]) -> dict:
    """Numeric baseline statistics holding only a KLL sketch: an item in level h weighs 2**h."""
    return {"numerical_statistics": {"distribution": {"kll": {"sketch": {"data": [list(level) for level in levels]}}}}}


def categories(counts: dict[str, int]) -> dict:
    buckets = [{"value": value, "count": count} for value, count in counts.items()]
    return {"string_statistics": {"distribution": {"categorical": {"buckets": buckets}}}}


def repeated(**counts: int) -> list[str]:
    """Category cells: each name as many times as its count."""
    return [name for name, count in counts.items() for _ in range(count)]


def robust(gap: float, n: int, m: int) -> float:
    """Deequ's linf_robust, written out: the gap less 1.8 x sqrt((n + m) / (n m)), floored at 0."""
    return max(0.0, gap - 1.8 * ((n + m) / (n * m)) ** 0.5)


@pytest.mark.parametrize(
    ("baseline", "cells", "gap", "n", "m"),
    [
        # Deequ's own k=2 sketch of 1..6 (1 and 3 weigh 2) against 4..7. CDFs at 1, 3, 4, 5, 6, 7: baseline 2/6, 4/6,
        # 4/6, 5/6, 1, 1; new 0, 0, 1/4, 2/4, 3/4, 1: the largest gap is 4/6 - 0 at 3.
        (sketch([5.0, 6.0], [1.0, 3.0]), [4, 5, 6, 7], 2 / 3, 6, 4),
        # 0..99 each weighing 2 (n = 200) against 50..249: at 99 the baseline is done (1.0), the new data a quarter.
        (sketch([], [float(v) for v in range(100)]), list(range(50, 250)), 0.75, 200, 200),
        # Deequ's KLLDistanceTest: the largest share gap is category e, 10/76 - 5/70.
        (
            categories({"a": 10, "b": 20, "c": 25, "d": 10, "e": 5}),
            repeated(a=11, b=20, c=25, d=10, e=10),
            10 / 76 - 5 / 70,
            70,
            76,
        ),
        (categories({"x": 900, "y": 100}), repeated(x=500, y=500), 0.4, 1000, 1000),
    ],
)
def test_the_drift_distance_is_deequs_simple_or_robust_as_the_constraints_say(
    baseline: dict, cells: list, gap: float, n: int, m: int
) -> None:
    simple, robust_entry = (one_feature_drift(baseline, cells, method) for method in ("Simple", "Robust"))
    assert simple["distance"] == pytest.approx(gap)
    assert robust_entry["distance"] == pytest.approx(robust(gap, n, m))
    assert (simple["drifted"], robust_entry["drifted"]) == (gap > 0.1, robust(gap, n, m) > 0.1)


@pytest.mark.parametrize(
    ("baseline_rows", "new_rows", "integers"),
    [(50, 30, False), (700, 1500, False), (2050, 400, True), (300, 9, True)],  # 2050: the most one level holds
)
def test_the_distance_is_the_exact_two_sample_ks_statistic_while_the_sketch_holds_every_value(
    baseline_rows: int, new_rows: int, integers: bool
) -> None:
    data_quality = import_step("data_quality")
    rng = np.random.default_rng(baseline_rows + new_rows)
    if integers:  # many ties: every copy counts, as in the KS statistic
        old, new = rng.integers(0, 30, baseline_rows), rng.integers(3, 33, new_rows)
    else:
        old, new = rng.normal(0.0, 1.0, baseline_rows), rng.normal(0.3, 1.0, new_rows)
    declared = {"features": [{"name": "x", "type": "integer" if integers else "number"}]}
    [feature] = data_quality.statistics(pd.DataFrame({"x": [repr(v) for v in old.tolist()]}), declared)["features"]
    assert [len(level) for level in feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]] == [
        baseline_rows
    ]

    entry = one_feature_drift(feature, new.tolist(), "Simple")

    assert entry["distance"] == pytest.approx(scipy.stats.ks_2samp(old, new).statistic, abs=1e-12)


def test_a_baseline_without_a_sketch_or_with_an_unknown_method_is_one_error(
    baseline_dir: Path, prepared: Path, tmp_path: Path
) -> None:
    statistics = read_json(baseline_dir / "statistics.json")
    del statistics["features"][1]["numerical_statistics"]["distribution"]["kll"]["sketch"]
    (tmp_path / "no-sketch").mkdir()
    (tmp_path / "no-sketch" / "statistics.json").write_text(json.dumps(statistics))
    shutil.copy(baseline_dir / "constraints.json", tmp_path / "no-sketch")
    args = ("--data-dir", prepared / "validation", "--output-dir", tmp_path / "out")
    result = run_step("data_quality", "check", *args, "--baseline-dir", tmp_path / "no-sketch", expect=1)
    assert_one_line_error(result, "the baseline of feature 'monthly_charges' has no KLL sketch")

    constraints = read_json(baseline_dir / "constraints.json")
    constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] = "linf_robust"
    (tmp_path / "unknown").mkdir()
    (tmp_path / "unknown" / "constraints.json").write_text(json.dumps(constraints))
    shutil.copy(baseline_dir / "statistics.json", tmp_path / "unknown")
    result = run_step("data_quality", "check", *args, "--baseline-dir", tmp_path / "unknown", expect=1)
    assert_one_line_error(result, "comparison_method 'linf_robust' is unknown")


def test_inference_round_trips_csv_and_json(model_dir: Path, prepared: Path) -> None:
    """The inference script served as the container serves it, on the step runtime (local/inference.py)."""
    rows = pd.read_csv(prepared / "test" / "test.csv").head(5)
    features = rows.drop(columns=[LABEL])
    expected = step_runtime_probabilities(model_dir / "model.joblib", features)
    served = InferenceProcess(STEPS / "inference.py", model_dir)
    try:
        requests = [
            (rows.to_csv(index=False).encode(), "text/csv"),
            (features.to_csv(index=False, header=False).encode(), "text/csv; charset=utf-8"),
            (features.to_json(orient="records").encode(), "application/json"),
        ]
        for body, content_type in requests:
            answer, answer_type = served.invoke(body, content_type, "application/json")
            assert answer_type == "application/json"
            assert json.loads(answer) == {"churn_probability": pytest.approx(expected)}
        one = json.dumps(features.iloc[0].to_dict()).encode()
        answer, answer_type = served.invoke(one, "application/json", "text/csv")
        assert answer_type == "text/csv"
        assert [float(line) for line in answer.decode().splitlines()] == pytest.approx(expected[:1])

        with pytest.raises(ModelCodeError, match="unsupported content type 'application/x-npy'") as refused:
            served.invoke(b"\x93NUMPY", "application/x-npy", "text/csv")
        assert refused.value.bad_input and refused.value.type_name == "ValueError"
        with pytest.raises(ModelCodeError, match="unsupported accept type 'application/x-recordio-protobuf'"):
            served.invoke(requests[0][0], "text/csv", "application/x-recordio-protobuf")
    finally:
        served.close()


def test_evaluate_derives_the_model_quality_constraints_from_its_own_metrics(
    model_dir: Path, prepared: Path, tmp_path: Path
) -> None:
    """What the endpoint's model-quality monitor checks: each metric below its evaluated value x (1 - tolerance)."""
    arguments = ("--model-dir", model_dir, "--incumbent-dir", tmp_path / "none", "--test-dir", prepared / "test")
    arguments += ("--probability-threshold", 0.5)
    run_step("evaluate", *arguments, "--quality-tolerance", 0.1, "--output-dir", tmp_path / "out")

    metrics = read_json(tmp_path / "out" / "model_quality.json")["binary_classification_metrics"]
    constraints = read_json(tmp_path / "out" / "model_quality_constraints.json")
    assert constraints["version"] == 0.0
    assert set(constraints["binary_classification_constraints"]) == {"auc", "f1", "precision", "recall"}
    for name, constraint in constraints["binary_classification_constraints"].items():
        assert constraint["comparison_operator"] == "LessThanThreshold"
        assert constraint["threshold"] == pytest.approx(metrics[name]["value"] * 0.9, abs=1e-6)
    assert "e-" not in (tmp_path / "out" / "model_quality_constraints.json").read_text()  # plain decimals

    result = run_step("evaluate", *arguments, "--quality-tolerance", 1.5, "--output-dir", tmp_path / "bad", expect=1)
    assert_one_line_error(result, "--quality-tolerance 1.5 is out of range: use 0 <= tolerance < 1")
