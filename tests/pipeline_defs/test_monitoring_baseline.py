"""The data-quality baseline as Model Monitor reads it: score first, then the features in the inference contract's
order, no label; Deequ's KLL sketch; the eval-only pipeline checks drift against that same baseline in that layout."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from pipeline_defs.contract import SCORE_COLUMN
from pipeline_defs.graph import steps as pipeline_steps
from tests.helpers import ALL_UNITS, load_module

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = REPO_ROOT / "pipeline_defs" / "steps"
SAMPLE_DATA = REPO_ROOT / "pipeline_defs" / "sample_data"


def step(name: str) -> ModuleType:
    return load_module(f"monitoring_step_{name}", STEPS / f"{name}.py")


def run(name: str, *args: object) -> None:
    assert step(name).main([str(arg) for arg in args]) == 0, f"{name} {args}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitoring-baseline")
    run("preprocess", "--input-dir", SAMPLE_DATA / "churn", "--output-dir", root / "prepared")
    run(
        "train",
        *("--train", root / "prepared" / "train", "--validation", root / "prepared" / "validation"),
        *("--model-dir", root / "model", "--output-data-dir", root / "train-output", "--n-estimators", 5),
    )
    # The training pipeline's Score and Baseline steps, with the arguments the definition gives them.
    run("evaluate", "--model-dir", root / "model", "--test-dir", root / "prepared" / "test", "--score-only",
        "--score-column", SCORE_COLUMN, "--output-dir", root / "scored")  # fmt: skip
    run("data_quality", "baseline", "--data-dir", root / "scored", "--score-column", SCORE_COLUMN,
        "--output-dir", root / "baseline")  # fmt: skip
    return root


def test_the_baseline_columns_are_the_analyzers_layout_of_a_captured_request(trained: Path) -> None:
    """Model Monitor names captured CSV columns by position after the baseline: output first, then the request."""
    inference = step("inference")
    statistics = json.loads((trained / "baseline" / "statistics.json").read_text())
    constraints = json.loads((trained / "baseline" / "constraints.json").read_text())
    request_columns = inference.feature_names()  # what the endpoint receives, in this order, no label

    names = [feature["name"] for feature in statistics["features"]]
    assert names == [SCORE_COLUMN, *request_columns]
    assert [feature["name"] for feature in constraints["features"]] == names
    assert statistics["features"][0]["inferred_type"] == "Fractional"
    assert json.loads((STEPS / "feature_contract.json").read_text())["label"] not in names
    # A captured request row through the real inference functions, laid out as the analyzer does, fits it exactly.
    scored = pd.read_csv(trained / "scored" / "scored.csv")
    assert list(scored.columns) == names
    row = scored.iloc[0]
    request = ",".join(str(row[name]) for name in request_columns)
    model = inference.model_fn(str(trained / "model"))
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn(request, "text/csv"), model), "text/csv")
    captured = [float(body.strip()), *inference.input_fn(request, "text/csv").iloc[0].tolist()]
    assert len(captured) == len(names)
    assert captured[0] == pytest.approx(row[SCORE_COLUMN])


def test_the_scores_in_the_baseline_are_the_models_own(trained: Path) -> None:
    statistics = json.loads((trained / "baseline" / "statistics.json").read_text())
    score = statistics["features"][0]["numerical_statistics"]
    scored = pd.read_csv(trained / "scored" / "scored.csv")[SCORE_COLUMN]
    assert score["common"]["num_present"] == len(scored) == statistics["dataset"]["item_count"]
    assert score["mean"] == pytest.approx(scored.mean())
    assert 0 <= score["min"] <= score["max"] <= 1


@pytest.mark.parametrize(
    ("rows", "level_sizes"),
    # Deequ's level sizes for n values in one partition, verified against a real analyzer file (23,432 rows).
    [(3_000, [950, 1025]), (5_000, [610, 2195]), (10_000, [170, 1167, 1874]), (23_432, [266, 1093, 2127, 1, 779])],
)
def test_the_kll_sketch_is_deequs(rows: int, level_sizes: list[int]) -> None:
    data_quality = step("data_quality")
    values = np.random.default_rng(rows).normal(size=rows)
    levels = data_quality.kll_levels(values)
    assert [len(level) for level in levels] == level_sizes
    assert sum(len(level) * 2**height for height, level in enumerate(levels)) == rows  # no weight lost
    block = data_quality.kll(values)
    assert block["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert len(block["buckets"]) == 10 and sum(bucket["count"] for bucket in block["buckets"]) == rows


def test_the_kll_sketch_matches_deequs_own_unit_tests() -> None:
    data_quality = step("data_quality")
    assert data_quality.kll_levels(np.arange(1.0, 7.0), k=2) == [[5.0, 6.0], [1.0, 3.0]]
    assert data_quality.kll_levels(np.arange(1.0, 31.0), k=2) == [
        [27.0, 28.0, 29.0, 30.0],
        [25.0],
        [1.0, 6.0, 10.0, 15.0, 19.0, 23.0],
    ]


def test_a_baseline_without_the_score_column_is_refused(trained: Path, tmp_path: Path) -> None:
    data_quality = step("data_quality")
    args = ["baseline", "--data-dir", str(trained / "prepared" / "test"), "--score-column", SCORE_COLUMN]
    assert data_quality.main([*args, "--output-dir", str(tmp_path)]) == 1
    assert not (tmp_path / "statistics.json").exists()


def test_unlabelled_rows_are_scored_but_not_measured(trained: Path, tmp_path: Path) -> None:
    test = pd.read_csv(trained / "prepared" / "test" / "test.csv")
    half = len(test) // 2
    test.loc[half:, "churned"] = None
    (tmp_path / "partly").mkdir()
    test.to_csv(tmp_path / "partly" / "test.csv", index=False)
    run("evaluate", "--model-dir", trained / "model", "--test-dir", tmp_path / "partly", "--allow-unlabelled",
        "--probability-threshold", 0.5, "--output-dir", tmp_path / "partly-out")  # fmt: skip
    partly = json.loads((tmp_path / "partly-out" / "evaluation.json").read_text())
    assert partly["has_labels"] is True and partly["scored_rows"] == len(test)
    assert partly["candidate"]["rows"] == half

    test["churned"] = None
    (tmp_path / "none").mkdir()
    test.to_csv(tmp_path / "none" / "test.csv", index=False)
    run("evaluate", "--model-dir", trained / "model", "--test-dir", tmp_path / "none", "--allow-unlabelled",
        "--output-dir", tmp_path / "none-out")  # fmt: skip
    unlabelled = json.loads((tmp_path / "none-out" / "evaluation.json").read_text())
    assert unlabelled["has_labels"] is False and unlabelled["candidate_score"] == 0.0
    assert "not measured" in unlabelled["summary"]
    assert not (tmp_path / "none-out" / "model_quality.json").exists()
    # Without --allow-unlabelled (the training pipeline), the same rows fail the step.
    assert step("evaluate").main(["--model-dir", str(trained / "model"), "--test-dir", str(tmp_path / "none"),
                                  "--output-dir", str(tmp_path / "strict")]) == 1  # fmt: skip


def test_the_eval_only_drift_check_reads_scored_rows_against_the_registered_baseline(definitions_of) -> None:
    definitions = definitions_of(ALL_UNITS["dev"])
    training, evaluation = (
        {s["Name"]: s for s in pipeline_steps(json.loads(definitions[name]))} for name in ("training", "evaluation")
    )

    def inputs(steps: dict, name: str) -> dict:
        return {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps[name]["Arguments"]["ProcessingInputs"]}

    # Training: Baseline is computed from Score's output and registered as the package's drift baseline.
    assert "Steps.Score" in json.dumps(inputs(training, "Baseline")["test"])
    baselines = training["RegisterModel"]["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"]
    assert "Steps.Baseline" in json.dumps(baselines)
    # Eval-only: CheckDrift reads Score's output and the resolved package's registered baseline, same layout.
    assert "Steps.Score" in json.dumps(inputs(evaluation, "CheckDrift")["test"])
    assert inputs(evaluation, "CheckDrift")["baseline"] == {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.ResolveModel.PropertyFiles.Resolved"}, "Path": "baseline_uri"}}  # fmt: skip
    for steps in (training, evaluation):
        arguments = steps["Score"]["Arguments"]["AppSpecification"]["ContainerArguments"]
        assert arguments[arguments.index("--score-column") + 1] == SCORE_COLUMN
