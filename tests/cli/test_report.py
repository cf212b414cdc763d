"""`mlops report`: the page drawn from a local execution's or monitoring run's reports, read back with html.parser.

The fixtures write the reports in the steps' formats (evaluate.py: evaluation.json, curves.json, model_quality.json;
data_quality.py: statistics.json, constraint_violations.json, drift_report.json; mlops monitor: run.json and Model
Monitor's folders); each test asserts what the page shows of their numbers.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from config import EnvironmentConfig
from mlops.cli import main
from mlops.report import command, sources
from pipeline_defs.local import load_assembly
from tests.cli.conftest import cli, expect_json_object, one_error_line, stubbed_clients

EXECUTION = "abc123def456"
HOSTILE = "<script>alert('x')</script>&\"name"  # a feature name straight from someone's CSV header
EDGES = [round(0.1 * i, 1) for i in range(11)]
CANDIDATE_ROC = {"false_positive_rate": [0.0, 0.1, 0.3, 1.0], "true_positive_rate": [0.0, 0.6, 0.85, 1.0], "auc": 0.84}
INCUMBENT_ROC = {"false_positive_rate": [0.0, 0.2, 1.0], "true_positive_rate": [0.0, 0.5, 1.0], "auc": 0.65}
CANDIDATE_HISTOGRAM = {"positive": [0, 0, 1, 1, 2, 2, 3, 4, 3, 4], "negative": [30, 20, 10, 8, 5, 3, 2, 1, 1, 0]}


# --- the reports, as the steps write them ---------------------------------------------------------------------------


def numeric(name: str, low: float, step: float, counts: list[int]) -> dict[str, Any]:
    buckets = [
        {"lower_bound": low + i * step, "upper_bound": low + (i + 1) * step, "count": c} for i, c in enumerate(counts)
    ]
    common = {"num_present": sum(counts), "num_missing": 0}
    statistics = {"common": common, "distribution": {"kll": {"buckets": buckets}}}
    return {"name": name, "inferred_type": "Fractional", "numerical_statistics": statistics}


def categorical(name: str, counts: dict[str, int]) -> dict[str, Any]:
    buckets = [{"value": value, "count": count} for value, count in counts.items()]
    common = {"num_present": sum(counts.values()), "num_missing": 0}
    statistics = {"common": common, "distribution": {"categorical": {"buckets": buckets}}}
    return {"name": name, "inferred_type": "String", "string_statistics": statistics}


def data_statistics(
    rows: int, charges: tuple[float, float, list[int]], contract: dict[str, int], hostile: dict[str, int]
) -> dict[str, Any]:
    """statistics.json of three features: monthly_charges (low, bucket width, counts) and two categorical ones."""
    features = [numeric("monthly_charges", *charges), categorical("contract", contract), categorical(HOSTILE, hostile)]
    return {"version": 0.0, "dataset": {"item_count": rows}, "features": features}


BASELINE = data_statistics(
    120,
    (20.0, 10.0, [4, 8, 16, 24, 24, 16, 12, 8, 4, 4]),
    {"month-to-month": 60, "one-year": 30, "two-year": 30},
    {"a": 100, "b": 20},
)
CURRENT = data_statistics(
    100,
    (60.0, 8.0, [2, 4, 8, 10, 16, 20, 16, 12, 8, 4]),
    {"month-to-month": 55, "one-year": 25, "two-year": 20},
    {"a": 50, "c": 50},
)
VIOLATIONS = {
    "violations": [
        {
            "feature_name": "monthly_charges",
            "constraint_check_type": "baseline_drift_check",
            "description": "Distance 0.5943 exceeds the threshold 0.1",
        },
        {
            "feature_name": HOSTILE,
            "constraint_check_type": "categorical_values_check",
            "description": "50.0% of the values are not in the baseline <b>",
        },
    ]
}
DRIFT = {
    "violations": 2,
    "features_checked": 3,
    "max_distance": 0.5943,
    "per_feature": {
        "monthly_charges": {"inferred_type": "Fractional", "distance": 0.5943, "threshold": 0.1, "drifted": True},
        "contract": {"inferred_type": "String", "distance": 0.05, "threshold": 0.1, "drifted": False},
    },
}


def metrics(values: dict[str, float]) -> dict[str, Any]:
    measured: dict[str, Any] = {name: {"value": v, "standard_deviation": 0.01} for name, v in values.items()}
    measured["confusion_matrix"] = {"0": {"0": 70, "1": 10}, "1": {"0": 4, "1": 16}}
    return {"version": 0.0, "dataset": {"item_count": 100}, "binary_classification_metrics": measured}


def evaluation(incumbent: bool) -> dict[str, Any]:
    candidate = {"roc_auc": 0.84, "accuracy": 0.86, "f1": 0.7, "precision": 0.62, "recall": 0.8, "rows": 100}
    comparison = {
        "method": "DeLong paired test of ROC AUC on the same rows, two-sided normal interval",
        "confidence_level": 0.95,
        "rows": 100,
        "incumbent_roc_auc": 0.65,
        "candidate_roc_auc": 0.84,
        "regression": -0.19,
        "standard_error": 0.04,
        "lower_bound": -0.2684,
        "upper_bound": -0.1116,
        "incumbent_trained_on_test_rows": 0,
    }
    return {
        "metric": "roc_auc",
        "candidate": candidate,
        "incumbent": candidate | {"roc_auc": 0.65} if incumbent else None,
        "has_labels": True,
        "has_incumbent": incumbent,
        "candidate_score": 0.84,
        "comparison": comparison if incumbent else None,
        "summary": "candidate roc_auc 0.84 vs approved model roc_auc 0.65 on the same 100 test rows <ok>",
    }


class State:
    """A local state dir with reports in the local artifacts bucket, as the steps and `mlops monitor` leave them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)  # `mlops report --local` reads an existing state dir only

    def put(self, key: str, document: Any) -> str:
        path = self.root / "s3" / "local-artifacts" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        return f"s3://local-artifacts/{key.rsplit('/', 1)[0]}"

    def execution(
        self, pipeline: str, execution_id: str, files: dict[tuple[str, str], dict[str, Any]], started: str = "T10"
    ) -> Path:
        """An execution whose steps wrote `files` ({(step, output): {file name: document}})."""
        steps = []
        for (step, output), documents in files.items():
            uris = [
                self.put(f"pipelines/{pipeline}/exp/{execution_id}/{step}/{output}/{n}", d)
                for n, d in documents.items()
            ]
            steps.append({"name": step, "type": "Processing", "status": "Succeeded", "cache_hit": False,
                          "cache_source": None, "message": "", "outputs": {output: uris[0]}})  # fmt: skip
        record = {
            "pipeline": pipeline,
            "execution_id": execution_id,
            "parameters": {"MinimumScore": 0.7},
            "started": f"2026-11-29{started}:00:00+00:00",
            "status": "Failed",
            "failure_reason": "step ModelUnhealthy: drift violations 2",
            "steps": steps,
            "registered": None,
        }
        folder = self.root / "executions" / pipeline / execution_id
        folder.mkdir(parents=True)
        (folder / "execution.json").write_text(json.dumps(record))
        return folder / "execution.json"

    def evaluation_run(self, config: EnvironmentConfig, *, curves: bool = True, execution_id: str = EXECUTION) -> Path:
        baseline = self.put("pipelines/churn-dev-training/exp/t1/Baseline/baseline/statistics.json", BASELINE)
        evaluated = {"evaluation.json": evaluation(incumbent=True), "model_quality.json": metrics({"auc": 0.84})}
        if curves:
            histograms = {"edges": EDGES, "candidate": CANDIDATE_HISTOGRAM, "incumbent": None}
            evaluated["curves.json"] = {"roc": {"candidate": CANDIDATE_ROC, "incumbent": INCUMBENT_ROC}} | {
                "score_histogram": histograms
            }
        return self.execution(
            config.evaluation_pipeline_name,
            execution_id,
            {
                sources.RESOLVE_MODEL: {"resolved.json": {"found": True, "baseline_uri": baseline}},
                sources.EVALUATE: evaluated,
                sources.CHECK_DRIFT: {
                    "statistics.json": CURRENT,
                    "constraint_violations.json": VIOLATIONS,
                    "drift_report.json": DRIFT,
                },
            },
        )

    def monitoring_run(self, *, model_quality: bool = True) -> Path:
        folder = "monitoring/churn-dev-endpoint/20261129T1000"
        baseline = self.put("pipelines/churn-dev-training/exp/t1/Baseline/baseline/statistics.json", BASELINE)
        self.put(f"{folder}/data-quality/statistics.json", CURRENT)
        self.put(f"{folder}/data-quality/constraint_violations.json", VIOLATIONS)
        quality: dict[str, Any] = {"violations": 1}
        if model_quality:
            self.put(f"{folder}/model-quality/statistics.json", metrics({"auc": 0.61, "f1": 0.72}))
            limits = {n: {"threshold": 0.76, "comparison_operator": "LessThanThreshold"} for n in ("auc", "f1")}
            self.put(f"{folder}/model-quality/constraints.json", {"binary_classification_constraints": limits})
            violation = {
                "metric_name": "auc",
                "constraint_check_type": "LessThanThreshold",
                "description": "0.61 < 0.76",
            }
            self.put(f"{folder}/model-quality/constraint_violations.json", {"violations": [violation]})
        else:
            quality = {"checked": False, "reason": "no ground truth matched the period's 600 records"}
        run = {
            "endpoint": "churn-dev-endpoint",
            "model_package_version": 1,
            # Without --since, mlops monitor reads all the capture: no start.
            "period": {"start": "2026-11-29T09:00:00Z" if model_quality else None, "end": "2026-11-29T10:00:00Z"},
            "records": 600,
            "labelled": 100 if model_quality else 0,
            "baseline": {"statistics": f"{baseline}/statistics.json", "constraints": f"{baseline}/constraints.json"},
            "data_quality": {"violations": 2},
            "model_quality": quality,
            "created": "2026-11-29T10:05:00Z",
        }
        self.put(f"{folder}/run.json", run)
        return self.root / "s3" / "local-artifacts" / folder


# --- reading the page back ------------------------------------------------------------------------------------------


class Page(HTMLParser):
    """The elements of a page (tag, attributes, text inside) in document order, and its whole text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[dict[str, Any]] = []
        self.open: list[dict[str, Any]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": list(self.open)}
        self.elements.append(element)
        if tag != "meta":  # the one void element the pages write without a closing slash
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # <line .../>: no content
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": "", "parents": list(self.open)})

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()["tag"] != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for element in self.open:
            element["text"] += data

    def all(self, tag: str, **attrs: str) -> list[dict[str, Any]]:
        return [e for e in self.elements if e["tag"] == tag and all(e["attrs"].get(k) == v for k, v in attrs.items())]

    def row(self, first_cell: str) -> dict[str, Any]:
        """The one table row whose first cell is `first_cell`."""
        cells = [e for e in self.elements if e["tag"] == "td" and e["text"] == first_cell]
        rows = [cell["parents"][-1] for cell in cells if self.elements_of(cell["parents"][-1], "td")[0] is cell]
        assert len(rows) == 1, (first_cell, len(rows))
        return rows[0]

    def elements_of(self, parent: dict[str, Any], tag: str) -> list[dict[str, Any]]:
        return [e for e in self.elements if e["tag"] == tag and any(p is parent for p in e["parents"])]

    def one(self, tag: str, **attrs: str) -> dict[str, Any]:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


def points(polyline: dict[str, Any]) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in polyline["attrs"]["points"].split())]


def report(capsys: pytest.CaptureFixture[str], state: State, *argv: str) -> tuple[int, str, str]:
    return cli(capsys, "report", *argv, "--local", "--state-dir", str(state.root))


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State(tmp_path / "state")


# --- what the page shows --------------------------------------------------------------------------------------------


def test_roc_curves_go_through_the_recorded_rates(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    code, out, err = report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    assert (code, err) == (0, "") and out.strip().endswith("r.html")
    page = Page((tmp_path / "r.html").read_text())

    # The chance diagonal runs from (0, 0) to (1, 1): it fixes the chart's scale, so pixels map back to rates.
    (x0, y0), (x1, y1) = points(page.one("polyline", **{"data-series": "chance (AUC 0.5)"}))
    for role, roc in (("candidate", CANDIDATE_ROC), ("incumbent", INCUMBENT_ROC)):
        drawn = [
            e for e in page.all("polyline") if e["attrs"]["data-series"].startswith(f"{role}: AUC {roc['auc']:.4f}")
        ]
        assert len(drawn) == 1
        drawn_points = points(drawn[0])
        assert [(x - x0) / (x1 - x0) for x, _ in drawn_points] == pytest.approx(roc["false_positive_rate"], abs=0.005)
        assert [(y - y0) / (y1 - y0) for _, y in drawn_points] == pytest.approx(roc["true_positive_rate"], abs=0.005)
    assert "incumbent: AUC 0.6500 (dashed line)" in "".join(page.text)


def test_score_histograms_show_each_labels_share_per_bin(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    page = Page((tmp_path / "r.html").read_text())

    bars = {
        e["text"]: float(e["attrs"]["height"]) for e in page.all("rect") if e["text"].startswith("candidate, label")
    }
    assert len(bars) == 20  # 10 bins x 2 labels; the incumbent recorded no histogram here
    assert bars["candidate, label 1, score 0.9 to 1: 4 rows (20.0%)"] > 0
    assert bars["candidate, label 0, score 0 to 0.1: 30 rows (37.5%)"] > 0
    # Heights are shares of the label's rows: 30/80 of the negatives vs 4/20 of the positives.
    ratio = (
        bars["candidate, label 0, score 0 to 0.1: 30 rows (37.5%)"]
        / bars["candidate, label 1, score 0.9 to 1: 4 rows (20.0%)"]
    )
    assert ratio == pytest.approx((30 / 80) / (4 / 20), rel=0.02)


def test_the_gate_summary_interval_and_metrics_are_on_the_page(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    text = "".join(Page((tmp_path / "r.html").read_text()).text)

    assert "candidate roc_auc 0.84 vs approved model roc_auc 0.65 on the same 100 test rows <ok>" in text
    assert "lower_bound-0.2684" in text and "upper_bound-0.1116" in text and "confidence_level0.95" in text
    assert "failurestep ModelUnhealthy: drift violations 2" in text
    assert "Eval-only pipeline: the 'candidate' is the approved model, re-scored on new data" in text


def test_unlabelled_traffic_is_reported_as_not_measured(capsys, state, dev_config, tmp_path) -> None:
    unmeasured = {
        "candidate": None,
        "incumbent": None,
        "has_labels": False,
        "comparison": None,
        "summary": "model quality not measured: 0 of 600 rows are labelled, not both classes (ground truth missing)",
    }
    state.execution(dev_config.evaluation_pipeline_name, EXECUTION, {sources.EVALUATE: {"evaluation.json": unmeasured}})
    code, _, _ = report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    text = "".join(Page((tmp_path / "r.html").read_text()).text)

    assert code == 0
    assert unmeasured["summary"] in text
    assert "no curves recorded: the rows had no labels of both classes" in text
    assert "no model-quality statistics recorded" in text


def test_violated_features_are_marked_in_words_and_colour_and_distances_shown(
    capsys, state, dev_config, tmp_path
) -> None:
    state.evaluation_run(dev_config)
    report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    page = Page((tmp_path / "r.html").read_text())

    drifted = page.one("section", **{"data-feature": "monthly_charges"})
    assert "violated" in drifted["attrs"]["class"].split()
    assert "VIOLATION baseline_drift_check: Distance 0.5943 exceeds the threshold 0.1" in drifted["text"]
    assert "drift distance 0.5943 vs threshold 0.1: drifted" in drifted["text"]
    calm = page.one("section", **{"data-feature": "contract"})
    assert calm["attrs"]["class"] == "feature" and "VIOLATION" not in calm["text"]
    assert "drift distance 0.0500 vs threshold 0.1: within the threshold" in calm["text"]
    assert page.row("monthly_charges")["attrs"].get("class") == "violation"
    assert page.row("contract")["attrs"].get("class") is None
    # Numeric: the 10 buckets of each side, baseline filled, current outlined, areas = shares of each side's rows.
    bars = page.elements_of(drifted, "rect")
    baseline = [e for e in bars if e["text"].startswith("baseline")]
    current = [e for e in bars if e["text"].startswith("current")]
    assert len(baseline) == len(current) == 10
    assert all(e["attrs"]["fill"] == "none" for e in current) and all(e["attrs"]["fill"] != "none" for e in baseline)
    assert (
        baseline[3]["text"] == "baseline 50 to 60: 24 rows (20.0%)"
        and current[5]["text"] == "current 100 to 108: 20 rows (20.0%)"
    )
    area = [float(e["attrs"]["width"]) * float(e["attrs"]["height"]) for e in (baseline[3], current[5])]
    assert area[0] == pytest.approx(area[1], rel=0.02)  # the same share of rows on both sides


def test_every_string_from_the_data_is_escaped(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    html = (tmp_path / "r.html").read_text()
    page = Page(html)

    assert "<script" not in html and "<b>" not in html and "<ok>" not in html
    hostile = page.one("section", **{"data-feature": HOSTILE})  # the parser unescapes it back to the very name
    assert "violated" in hostile["attrs"]["class"] and HOSTILE in hostile["text"]
    assert "50.0% of the values are not in the baseline <b>" in hostile["text"]


def test_an_execution_without_curves_says_so_and_still_draws_the_rest(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config, curves=False)
    code, _, err = report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    page = Page((tmp_path / "r.html").read_text())

    assert (code, err) == (0, "")
    assert "no curves recorded" in "".join(page.text)
    assert not [e for e in page.all("polyline") if e["attrs"]["data-series"].startswith("candidate")]
    assert page.one("section", **{"data-feature": "monthly_charges"})


def test_a_training_run_shows_its_baseline_and_model_quality_thresholds(capsys, state, dev_config, tmp_path) -> None:
    limits = {"auc": {"threshold": 0.798, "comparison_operator": "LessThanThreshold"}}
    state.execution(
        dev_config.training_pipeline_name,
        EXECUTION,
        {
            sources.BASELINE: {"statistics.json": BASELINE},
            sources.EVALUATE: {
                "evaluation.json": evaluation(incumbent=False),
                "model_quality.json": metrics({"auc": 0.84, "f1": 0.7}),
                "model_quality_constraints.json": {"binary_classification_constraints": limits},
            },
        },
    )
    code, _, _ = report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))
    page = Page((tmp_path / "r.html").read_text())

    assert code == 0
    assert "The baseline this run computed" in "".join(page.text)
    tenure = page.one("section", **{"data-feature": "monthly_charges"})
    assert "VIOLATION" not in tenure["text"] and "current" not in tenure["text"]
    assert [e["text"] for e in page.elements_of(page.row("auc"), "td")] == [
        "auc",
        "0.84",
        "0.01",
        "LessThanThreshold 0.798",
        "ok",
    ]
    threshold = page.one("polyline", **{"data-series": "auc threshold 0.798"})
    assert len(points(threshold)) == 2


def test_the_models_permutation_importances_are_drawn_most_important_first(capsys, state, dev_config, tmp_path) -> None:
    importances = {"tenure_months": (0.021, 0.004), "contract": (0.093, 0.011), "support_calls": (-0.002, 0.003)}
    explainability = {
        "method": "permutation importance: drop of validation ROC AUC when the feature's values are shuffled",
        "rows": 900,
        "permutation_importances": {name: {"mean": mean, "std": std} for name, (mean, std) in importances.items()},
    }
    state.execution(
        dev_config.training_pipeline_name,
        EXECUTION,
        {
            sources.BASELINE: {"statistics.json": BASELINE},
            sources.EVALUATE: {"evaluation.json": evaluation(incumbent=False), "explainability.json": explainability},
        },
    )
    assert report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))[0] == 0
    page = Page((tmp_path / "r.html").read_text())

    chart = page.one("svg", **{"aria-label": "permutation importance"})
    bars = [bar["text"] for bar in page.elements_of(chart, "rect")]
    assert bars == ["contract 0.093", "tenure_months 0.021", "support_calls -0.002"]
    rows = [[cell["text"] for cell in page.elements_of(row, "td")] for row in page.all("tr")]
    assert ["contract", "0.093", "0.011"] in rows  # the table: feature, importance, std dev
    # Each bar's spread, mean +- one standard deviation, as a line on the same scale as the bars.
    top, bottom = points(page.one("polyline", **{"data-series": "contract +- 0.011"}))
    assert top[0] == bottom[0] and abs(top[1] - bottom[1]) > 0


def test_a_training_run_without_importances_says_so(capsys, state, dev_config, tmp_path) -> None:
    state.execution(
        dev_config.training_pipeline_name,
        EXECUTION,
        {sources.EVALUATE: {"evaluation.json": evaluation(incumbent=False)}},
    )
    assert report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))[0] == 0
    assert "no feature importances: the model's archive records none" in "".join(
        Page((tmp_path / "r.html").read_text()).text
    )


def test_a_monitoring_run_highlights_model_quality_violations(capsys, state, tmp_path) -> None:
    folder = state.monitoring_run()
    for run in ("20261129T1000", str(folder), "s3://local-artifacts/monitoring/churn-dev-endpoint/20261129T1000/"):
        code, out, err = report(capsys, state, "--monitoring-run", run, "--html", str(tmp_path / "m.html"), "--json")
        assert (code, err) == (0, "")
        assert json.loads(out)["data_quality_violations"] == 2 and json.loads(out)["model_quality_violations"] == 1
    page = Page((tmp_path / "m.html").read_text())

    auc, f1 = page.row("auc"), page.row("f1")
    assert auc["attrs"].get("class") == "violation" and "VIOLATION: 0.61 < 0.76" in auc["text"]
    assert f1["attrs"].get("class") is None and f1["text"].endswith("ok")
    assert "violated" in page.one("section", **{"data-feature": "monthly_charges"})["attrs"]["class"]
    assert "records600 captured, 100 with ground truth" in "".join(page.text)


def test_a_monitoring_run_without_ground_truth_says_why_model_quality_is_missing(capsys, state, tmp_path) -> None:
    state.monitoring_run(model_quality=False)
    code, _, _ = report(capsys, state, "--monitoring-run", "20261129T1000", "--html", str(tmp_path / "m.html"))

    text = "".join(Page((tmp_path / "m.html").read_text()).text)
    assert code == 0
    assert "model quality not checked: no ground truth matched" in text
    assert "period (UTC)all captured requests to 2026-11-29T10:00:00Z" in text


def test_latest_reports_the_pipelines_newest_finished_execution(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config, execution_id="older")
    state.execution(
        dev_config.evaluation_pipeline_name, "newer", {sources.EVALUATE: {"evaluation.json": evaluation(False)}}, "T11"
    )
    (state.root / "executions" / dev_config.evaluation_pipeline_name / "running").mkdir()  # no execution.json yet
    code, out, _ = report(
        capsys, state, "--pipeline", "evaluation", "--latest", "--html", str(tmp_path / "r.html"), "--json"
    )

    assert code == 0 and "execution newer" in json.loads(out)["title"]


# --- bad input: one line, nothing half written ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrange", "argv", "message"),
    [
        (None, [EXECUTION], f"no local execution {EXECUTION}"),
        (None, ["../../etc"], "is not an execution id"),
        (None, ["--latest"], "no finished local execution of either pipeline"),
        (None, [EXECUTION, "--latest"], "report on one thing"),
        (None, ["--monitoring-run", "nope"], "no monitoring run nope"),
        ("no reports", [EXECUTION], f"execution {EXECUTION} has no reports to draw (step Preprocess: no rows)"),
        ("damaged", [EXECUTION], "evaluation.json is not valid JSON"),
        ("wrong shape", [EXECUTION], "curves.json: roc.candidate.false_positive_rate is not a list of finite numbers"),
        ("running", [EXECUTION], f"execution {EXECUTION} has no record yet (still running, or killed)"),
    ],
)
def test_bad_input_is_one_error_line_and_leaves_the_old_page(
    capsys, state, dev_config, tmp_path, arrange, argv, message
) -> None:
    record = state.evaluation_run(dev_config) if arrange else None
    evaluated = state.root / "s3/local-artifacts/pipelines/churn-dev-evaluation/exp" / EXECUTION / "Evaluate/evaluation"
    if arrange == "no reports":
        failed = {"status": "Failed", "failure_reason": "step Preprocess: no rows", "steps": [], "pipeline": "p"}
        record.write_text(json.dumps(json.loads(record.read_text()) | failed))
    elif arrange == "damaged":
        (evaluated / "evaluation.json").write_text('{"summary": "trunc')
    elif arrange == "wrong shape":
        bad = {"roc": {"candidate": {"false_positive_rate": "0,1"}}, "score_histogram": {"edges": EDGES}}
        (evaluated / "curves.json").write_text(json.dumps(bad))
    elif arrange == "running":
        record.unlink()
    page = tmp_path / "r.html"
    page.write_text("the previous page")

    code, out, err = report(capsys, state, *argv, "--html", str(page))

    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert page.read_text() == "the previous page"


def test_an_unwritable_page_is_refused_in_one_line(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    (tmp_path / "a-folder.html").mkdir()
    cases = [
        (["--html", str(tmp_path / "missing" / "r.html")], "folder"),
        (["--html", str(tmp_path / "a-folder.html")], "cannot write it"),
    ]
    for argv, message in cases:
        code, _, err = report(capsys, state, EXECUTION, *argv)
        assert code == 2 and err.startswith("error: --html") and message in err and err.count("\n") == 1


def test_only_a_regular_file_is_replaced_and_nothing_else_is_touched(capsys, state, dev_config, tmp_path) -> None:
    """Defect 4: the page replaced whatever --html named (a FIFO, a device node) with a regular file."""
    state.evaluation_run(dev_config)
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    code, out, err = report(capsys, state, EXECUTION, "--html", str(fifo))
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"error: --html {fifo}: cannot write it: it is a FIFO, not a regular file"), err
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the FIFO
    assert not list(tmp_path.glob(".pipe.html*"))  # and no temporary file beside it


def test_a_symbolic_link_is_followed_and_stays(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    (tmp_path / "pages").mkdir()
    target = tmp_path / "pages" / "latest.html"
    target.write_text("the previous page")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    assert report(capsys, state, EXECUTION, "--html", str(link))[0] == 0
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_the_page_follows_the_umask(capsys, state, dev_config, tmp_path, umask) -> None:
    """Defect 4: written through tempfile.mkstemp, every page was 0600 whatever the umask."""
    state.evaluation_run(dev_config)
    previous = os.umask(umask)
    try:
        assert report(capsys, state, EXECUTION, "--html", str(tmp_path / "r.html"))[0] == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "r.html").stat().st_mode) == 0o666 & ~umask


def test_the_steps_and_outputs_it_reads_exist_in_the_synthesized_pipelines(assembly_dir, dev_config) -> None:
    definitions = load_assembly(assembly_dir, dev_config.region).definitions
    outputs = {
        (pipeline, step["Name"], output["OutputName"])
        for pipeline, definition in definitions.items()
        for step in definition["Steps"]
        for output in step.get("Arguments", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
    }
    training, evaluation_pipeline = dev_config.training_pipeline_name, dev_config.evaluation_pipeline_name
    scoring = dev_config.scoring_pipeline_name
    for pipeline, step in [
        (training, sources.EVALUATE),
        (training, sources.BASELINE),
        (evaluation_pipeline, sources.EVALUATE),
        (evaluation_pipeline, sources.CHECK_DRIFT),
        (evaluation_pipeline, sources.RESOLVE_MODEL),
        (scoring, sources.SUMMARIZE),
        (scoring, sources.CHECK_DRIFT),
        (scoring, sources.RESOLVE_MODEL),
    ]:
        assert (pipeline, *step) in outputs


# --- an execution in AWS: SageMaker names the jobs, S3 holds the same reports ----------------------------------------

ARN = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/churn-dev-evaluation/execution/x7k2p9q4r1ab"
SOURCE = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/churn-dev-evaluation/execution/older0000000"
BUCKET = "churn-dev-artifacts"


def job_arn(name: str) -> str:
    return f"arn:aws:sagemaker:eu-west-1:111111111111:processing-job/{name}"


def processing_job(name: str, outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "ProcessingJobName": name,
        "ProcessingJobArn": job_arn(name),
        "ProcessingJobStatus": "Completed",
        "CreationTime": datetime(2026, 11, 29, 10, tzinfo=UTC),
        "AppSpecification": {"ImageUri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": o,
                    "S3Output": {
                        "S3Uri": uri,
                        "LocalPath": f"/opt/ml/processing/output/{o}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
                for o, uri in outputs.items()
            ]
        },
    }


def expect_execution(sagemaker: Stubber) -> dict[str, str]:
    """The eval-only execution: Evaluate a cache hit (its job is the older execution's), CheckDrift, the failed gate."""
    prefix = f"s3://{BUCKET}/pipelines/churn-dev-evaluation/exp"
    where = {
        "ResolveModel": f"{prefix}/x7k2p9q4r1ab/ResolveModel/resolved",
        "Evaluate": f"{prefix}/older0000000/Evaluate/evaluation",
        "CheckDrift": f"{prefix}/x7k2p9q4r1ab/CheckDrift/drift",
    }
    sagemaker.add_response(
        "describe_pipeline_execution",
        {
            "PipelineExecutionArn": ARN,
            "PipelineExecutionStatus": "Failed",
            "FailureReason": "Step failure: ModelUnhealthy: drift violations 2",
            "CreationTime": datetime(2026, 11, 29, 10, tzinfo=UTC),
        },
        {"PipelineExecutionArn": ARN},
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "MinimumScore", "Value": "0.7"}]},
        {"PipelineExecutionArn": ARN},
    )
    steps = [
        {"StepName": "ResolveModel", "StepStatus": "Succeeded",
         "Metadata": {"ProcessingJob": {"Arn": job_arn("pipelines-x7k2p9q4r1ab-ResolveModel-a")}}},
        {"StepName": "Preprocess", "StepStatus": "Succeeded",
         "Metadata": {"ProcessingJob": {"Arn": job_arn("pipelines-x7k2p9q4r1ab-Preprocess-b")}}},
        {"StepName": "Evaluate", "StepStatus": "Succeeded", "CacheHitResult": {"SourcePipelineExecutionArn": SOURCE},
         "Metadata": {"ProcessingJob": {"Arn": job_arn("pipelines-older0000000-Evaluate-c")}}},
        {"StepName": "CheckDrift", "StepStatus": "Succeeded",
         "Metadata": {"ProcessingJob": {"Arn": job_arn("pipelines-x7k2p9q4r1ab-CheckDrift-d")}}},
        {"StepName": "ModelUnhealthy", "StepStatus": "Failed", "FailureReason": "drift violations 2",
         "Metadata": {"Fail": {"ErrorMessage": "drift violations 2"}}},
    ]  # fmt: skip
    sagemaker.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps},
        {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"},
    )
    for step, job in (("ResolveModel", "a"), ("Evaluate", "c"), ("CheckDrift", "d")):
        execution = "older0000000" if step == "Evaluate" else "x7k2p9q4r1ab"
        name = f"pipelines-{execution}-{step}-{job}"
        output = {"ResolveModel": "resolved", "Evaluate": "evaluation", "CheckDrift": "drift"}[step]
        sagemaker.add_response(
            "describe_processing_job", processing_job(name, {output: where[step]}), {"ProcessingJobName": name}
        )
    return where


def test_an_execution_in_aws_is_read_through_sagemaker_and_s3(capsys, monkeypatch, aws_env, tmp_path) -> None:
    baseline = f"s3://{BUCKET}/pipelines/churn-dev-training/exp/t1/Baseline/baseline"
    with stubbed_clients(monkeypatch, command, "sagemaker", "s3") as stubs:
        where = expect_execution(stubs["sagemaker"])
        evaluated, drift = where["Evaluate"], where["CheckDrift"]
        histograms = {"edges": EDGES, "candidate": CANDIDATE_HISTOGRAM, "incumbent": None}
        for uri, document in [
            (f"{evaluated}/evaluation.json", evaluation(incumbent=True)),
            (
                f"{evaluated}/curves.json",
                {"roc": {"candidate": CANDIDATE_ROC, "incumbent": None}, "score_histogram": histograms},
            ),
            (f"{evaluated}/explainability.json", None),
            (f"{evaluated}/model_quality.json", metrics({"auc": 0.84})),
            (f"{evaluated}/model_quality_constraints.json", None),
            (f"{drift}/statistics.json", CURRENT),
            (f"{drift}/constraint_violations.json", VIOLATIONS),
            (f"{drift}/drift_report.json", DRIFT),
            (f"{where['ResolveModel']}/resolved.json", {"found": True, "baseline_uri": baseline}),
            (f"{baseline}/statistics.json", BASELINE),
        ]:
            expect_json_object(stubs["s3"], uri, document)
        code = main(["report", ARN, "--env", "dev", "--html", str(tmp_path / "r.html")])
    out, err = capsys.readouterr()
    page = Page((tmp_path / "r.html").read_text())

    assert (code, err) == (0, "") and out.strip().endswith("r.html")
    text = "".join(page.text)
    assert "churn-dev-evaluation execution x7k2p9q4r1ab: Failed" in text and "MinimumScore=0.7" in text
    assert "cache hit: outputs of execution older0000000" in text
    assert len(page.all("polyline")) == 2  # the chance line and the candidate's ROC curve
    assert "violated" in page.one("section", **{"data-feature": "monthly_charges"})["attrs"]["class"]


def test_latest_in_aws_asks_for_the_pipelines_newest_execution(capsys, monkeypatch, aws_env, tmp_path) -> None:
    with stubbed_clients(monkeypatch, command, "sagemaker", "s3") as stubs:
        stubs["sagemaker"].add_response(
            "list_pipeline_executions",
            {"PipelineExecutionSummaries": []},
            {
                "PipelineName": "churn-dev-evaluation",
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 1,
            },
        )
        code = main(
            ["report", "--latest", "--pipeline", "evaluation", "--env", "dev", "--html", str(tmp_path / "r.html")]
        )
    assert code == 2 and capsys.readouterr().err == "error: pipeline churn-dev-evaluation has no executions yet\n"


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        ("ResourceNotFound", 2, f"no pipeline execution {ARN} in this region"),
        ("ThrottlingException", 1, f"describing {ARN} failed"),
    ],
)
def test_aws_errors_are_one_line(capsys, monkeypatch, aws_env, tmp_path, error, code, message) -> None:
    with stubbed_clients(monkeypatch, command, "sagemaker", "s3") as stubs:
        stubs["sagemaker"].add_client_error(
            "describe_pipeline_execution", error, expected_params={"PipelineExecutionArn": ARN}
        )
        assert main(["report", ARN, "--env", "dev", "--html", str(tmp_path / "r.html")]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_a_report_unreadable_in_s3_fails_in_one_line(capsys, monkeypatch, aws_env, tmp_path) -> None:
    with stubbed_clients(monkeypatch, command, "sagemaker", "s3") as stubs:
        where = expect_execution(stubs["sagemaker"])
        key = f"{where['Evaluate']}/evaluation.json".removeprefix(f"s3://{BUCKET}/")
        stubs["s3"].add_client_error(
            "get_object", "AccessDenied", http_status_code=403, expected_params={"Bucket": BUCKET, "Key": key}
        )
        assert main(["report", ARN, "--env", "dev", "--html", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: reading s3://{BUCKET}/") and "AccessDenied" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([EXECUTION], "say where the run is: --local"),
        ([EXECUTION, "--env", "dev"], "in AWS give the execution's ARN"),
        (["arn:aws:sagemaker:eu-west-1:111111111111:pipeline/p", "--env", "dev"], "in AWS give the execution's ARN"),
        (["--latest", "--env", "dev"], "in AWS, --latest needs --pipeline"),
        (["--monitoring-run", "r1", "--env", "dev"], "--monitoring-run draws a run of mlops monitor --local"),
    ],
)
def test_aws_usage_mistakes_are_refused_before_any_call(capsys, aws_env, tmp_path, argv, message) -> None:
    assert main(["report", *argv, "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


# --- two executions side by side ------------------------------------------------------------------------------------


def test_compare_puts_two_executions_side_by_side_and_marks_what_differs(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    record = state.evaluation_run(dev_config, execution_id="e2")
    changed = json.loads(record.read_text())
    changed["parameters"]["MinimumScore"] = 0.8
    record.write_text(json.dumps(changed))

    code, out, err = report(capsys, state, "--compare", EXECUTION, "e2", "--html", str(tmp_path / "c.html"))

    assert (code, err) == (0, "") and out.strip().endswith("c.html")
    page = Page((tmp_path / "c.html").read_text())
    cells = [cell["text"] for cell in page.elements_of(page.row("parameters"), "td")]
    assert cells == ["parameters", "MinimumScore=0.7", "MinimumScore=0.8"]
    assert page.row("parameters")["attrs"].get("class") == "violation"  # a difference, marked
    assert page.row("pipeline")["attrs"].get("class") is None
    roc_auc = CANDIDATE_ROC["auc"]
    for side, dash in (("A", "solid"), ("B", "dashed")):
        assert len(page.all("polyline", **{"data-series": f"{side}: AUC {roc_auc:.4f} ({dash} line)"})) == 1
    assert [cell["text"] for cell in page.elements_of(page.row("roc_auc"), "td")][3] == "+0"
    for name, entry in DRIFT["per_feature"].items():
        assert page.row(name)["attrs"].get("class") == ("violation" if entry["drifted"] else None)


def test_compare_needs_two_known_executions(capsys, state, dev_config, tmp_path) -> None:
    state.evaluation_run(dev_config)
    code, _, err = report(capsys, state, "--compare", EXECUTION, "nope", "--html", str(tmp_path / "c.html"))
    assert code == 2 and "nope" in one_error_line(err)
    assert not (tmp_path / "c.html").exists()
    code, _, err = report(capsys, state, "--compare", EXECUTION, "e2", "--latest", "--html", str(tmp_path / "c.html"))
    assert code == 2 and "report on one thing" in one_error_line(err)
