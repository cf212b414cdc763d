"""What a report page shows, parsed and checked from the steps' JSON reports (formats: evaluate.py, data_quality.py,
Model Monitor's data- and model-quality statistics, constraints and constraint_violations)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mlops.report.documents import Document

ROLES = ("candidate", "incumbent")


@dataclass(frozen=True)
class Roc:
    false_positive_rate: list[float]
    true_positive_rate: list[float]
    auc: float


@dataclass(frozen=True)
class ScoreHistogram:
    positive: list[int]  # rows labelled 1 per score bin
    negative: list[int]


@dataclass(frozen=True)
class Curves:
    """curves.json: ROC curves and score histograms of the candidate and (if any) the incumbent."""

    roc: dict[str, Roc]  # by role, only the roles recorded
    edges: list[float]  # score bin edges, len(bins) + 1
    histograms: dict[str, ScoreHistogram]


@dataclass(frozen=True)
class FeatureStatistics:
    """One feature of a Model Monitor data-quality statistics.json: numeric buckets or category counts."""

    name: str
    inferred_type: str
    present: int
    missing: int
    buckets: list[tuple[float, float, int]] = field(default_factory=list)  # (lower, upper, count): numeric
    categories: list[tuple[str, int]] = field(default_factory=list)  # (value, count): String

    @property
    def numeric(self) -> bool:
        return self.inferred_type != "String"


@dataclass(frozen=True)
class Violation:
    subject: str  # feature_name (data quality) or metric_name (model quality)
    check: str
    description: str


@dataclass(frozen=True)
class Drift:
    distance: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DataQuality:
    """Baseline vs current distributions per feature; `current` None: the baseline alone (a training run)."""

    baseline: list[FeatureStatistics]
    baseline_source: str
    current: list[FeatureStatistics] | None = None
    violations: list[Violation] = field(default_factory=list)
    drift: dict[str, Drift] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelQuality:
    """Binary-classification metrics (value, standard deviation), thresholds (threshold, operator), violations."""

    metrics: dict[str, tuple[float, float | None]]
    thresholds: dict[str, tuple[float, str]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    confusion: dict[str, dict[str, int]] | None = None  # [actual][predicted]


@dataclass(frozen=True)
class Importances:
    """explainability.json (steps/train.py): each feature's permutation importance, the most important first."""

    method: str
    rows: int
    features: list[tuple[str, float, float]]  # (feature, mean, standard deviation)


def importances(document: Document) -> Importances:
    per_feature = document.child("permutation_importances")
    features = [(name, per_feature.number(name, "mean"), per_feature.number(name, "std")) for name in per_feature.data]
    features.sort(key=lambda feature: -feature[1])
    return Importances(document.text("method"), int(document.number("rows")), features)


def curves(document: Document) -> Curves:
    edges = document.numbers("score_histogram", "edges")
    roc, histograms = {}, {}
    for role in ROLES:
        line = document.optional_child("roc", role)
        if line is not None:
            rates = (line.numbers("false_positive_rate"), line.numbers("true_positive_rate"))
            if len(rates[0]) != len(rates[1]) or not rates[0]:
                line.fail(("roc", role), "two equally long, non-empty lists of rates")
            roc[role] = Roc(*rates, auc=line.number("auc"))
        counts = document.optional_child("score_histogram", role)
        if counts is not None:
            histograms[role] = ScoreHistogram(_counts(counts, "positive", edges), _counts(counts, "negative", edges))
    if "candidate" not in roc:
        document.fail(("roc", "candidate"), "a ROC curve")
    return Curves(roc, edges, histograms)


def _counts(document: Document, label: str, edges: list[float]) -> list[int]:
    values = document.numbers(label)
    if len(values) != len(edges) - 1 or any(value < 0 or value != int(value) for value in values):
        document.fail((label,), f"{len(edges) - 1} row counts (one per score bin)")
    return [int(value) for value in values]


def statistics(document: Document) -> list[FeatureStatistics]:
    return [_feature(feature) for feature in document.children("features")]


def _feature(feature: Document) -> FeatureStatistics:
    name, inferred_type = feature.text("name"), feature.text("inferred_type")
    key = "string_statistics" if inferred_type == "String" else "numerical_statistics"
    common = feature.child(key, "common")
    present, missing = int(common.number("num_present")), int(common.number("num_missing"))
    if inferred_type == "String":
        values = feature.children(key, "distribution", "categorical", "buckets")
        categories = [(str(bucket.at("value")), int(bucket.number("count"))) for bucket in values]
        return FeatureStatistics(name, inferred_type, present, missing, categories=categories)
    ranges = feature.children(key, "distribution", "kll", "buckets")
    buckets = [(b.number("lower_bound"), b.number("upper_bound"), int(b.number("count"))) for b in ranges]
    return FeatureStatistics(name, inferred_type, present, missing, buckets=buckets)


def violations(document: Document, subject: str) -> list[Violation]:
    """constraint_violations.json; `subject` is feature_name (data quality) or metric_name (model quality)."""
    return [
        Violation(entry.text(subject), entry.text("constraint_check_type"), entry.text("description"))
        for entry in document.children("violations")
    ]


def drift(document: Document) -> dict[str, Drift]:
    """drift_report.json's per-feature distances; a feature whose distance is null (no value of its type to compare)
    has none."""
    per_feature = document.child("per_feature")
    return {
        name: Drift(
            per_feature.number(name, "distance"),
            per_feature.number(name, "threshold"),
            bool(per_feature.at(name, "drifted")),
        )
        for name in per_feature.data
        if per_feature.at(name, "distance") is not None
    }


def model_quality(
    measured: Document, limits: Document | None = None, violated: Sequence[Violation] = ()
) -> ModelQuality:
    """Model Monitor model-quality statistics (and constraints, violations) of a binary classifier."""
    metrics = measured.child("binary_classification_metrics")
    values = {
        name: (metrics.number(name, "value"), metrics.optional_number(name, "standard_deviation"))
        for name, metric in metrics.data.items()
        if isinstance(metric, dict) and "value" in metric
    }
    thresholds = {}
    if limits is not None:
        constraints = limits.child("binary_classification_constraints")
        thresholds = {
            name: (constraints.number(name, "threshold"), constraints.text(name, "comparison_operator"))
            for name in constraints.data
        }
    confusion = metrics.optional_child("confusion_matrix")
    matrix = None
    if confusion is not None:
        matrix = {a: {p: int(confusion.number(a, p)) for p in ("0", "1")} for a in ("0", "1")}
    return ModelQuality(values, thresholds, list(violated), matrix)
