"""What `mlops monitor --local` checks in a run, by the pipelines' own step code: data quality and model quality.

Data quality: the traffic in the analyzer's layout (the captured score first, then the request's features) is named
after the baseline statistics' features BY POSITION, as Model Monitor's analyzer names captured CSV columns; then the
data-quality step's own statistics and checks run on it (pipeline_defs/steps/data_quality.py: the same drift distance,
Deequ's, and error rate as the pipelines' CheckDrift). A column count that differs from the baseline's is an error,
not a report full of shifted columns.

Model quality (method and error rates): on the captured rows that have ground truth, the evaluator's own model_quality
(steps/evaluate.py: labels at config's model_quality_probability_threshold) is checked WITH AN INTERVAL, as the
training gate is (evaluate.py `quality_alarms`). The ROC AUC alarms when its drop from the version's registered
evaluation AUC (its model-quality statistics) is credible: the one-sided lower bound at config's confidence_level of
(registered AUC - traffic AUC) is above 0, its standard error carrying both samples' errors (DeLong's for the traffic,
Hanley-McNeil's for the evaluation slice; `auc_drop`). f1, precision and recall violate their LessThanThreshold
threshold only when their whole two-sided interval is below it (redraws of the confusion matrix;
`credible_violations`). A point comparison alarmed on an unchanged model by chance, and a threshold that is itself
an estimate from the evaluation slice made false alarms grow with traffic; the test on the difference holds them at
the level at every traffic size. Both error rates, by number of labelled rows, are measured by
bench/monitor_false_alarms.py and written in the README ("Monitoring locally"). Model Monitor's own schedules keep
their point comparisons against the registered thresholds.
Below MIN_LABELS_PER_CLASS labelled rows of either class nothing is compared ("not checked: too few labels").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: every `mlops` command imports this module, none should pay for pandas
    import pandas as pd

from mlops.common import shown
from mlops.local import read_json
from pipeline_defs.contract import SCORE_COLUMN
from pipeline_defs.local import LocalS3
from pipeline_defs.steps.merge_capture import Merged
from steplib import StepError

# A verdict needs both classes, and enough of each: with fewer than 30 positives one row moves recall by more than
# 3 %. Below this floor the monitor says "not checked" rather than report noise; above it the verdict compares
# intervals, with the measured error rates of the README's "Monitoring locally" (Model Monitor wants 200 rows for its
# standard deviations).
MIN_LABELS_PER_CLASS = 30
# The data-quality step's inferred types back to the feature contract's types, to compute statistics by the baseline.
_CONTRACT_TYPES = {"Integral": "integer", "Fractional": "number", "String": "category"}


@dataclass(frozen=True)
class Baselines:
    """What training registered with a version for monitoring (local s3:// URIs)."""

    version: int
    statistics: str
    constraints: str
    model_quality_constraints: str | None
    model_quality_statistics: str | None = None  # the evaluation slice's metrics: the AUC's baseline


def check_data_quality(
    traffic: pd.DataFrame, statistics: dict[str, Any], constraints: dict[str, Any]
) -> dict[str, Any]:
    """Statistics, constraints, violations and drift report of the traffic, its columns named after the baseline's by
    position."""
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
    data_quality = step_module("data_quality")
    try:
        current = data_quality.statistics(named, by_baseline)
        violations, per_feature = data_quality.check(named, statistics, constraints)
    except data_quality.StepError as error:
        raise StepError(str(error)) from None
    return {
        "statistics": current,
        "constraints": constraints,
        "constraint_violations": {"violations": violations},
        "drift_report": data_quality.drift_report(violations, per_feature),
    }


def check_model_quality(
    merged: Merged, label: str, s3: LocalS3, baselines: Baselines, threshold: float, confidence: float
) -> dict[str, Any]:
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
    constraints = read_baseline(s3, baselines.model_quality_constraints, baselines.version)
    registered = (
        read_baseline(s3, baselines.model_quality_statistics, baselines.version)
        if baselines.model_quality_statistics
        else {}
    )
    probabilities = merged.traffic.loc[labelled, SCORE_COLUMN].astype(float).to_numpy()
    evaluate = step_module("evaluate")
    statistics = evaluate.model_quality(labels, probabilities, threshold)
    # StepError: a bad constraint
    found = evaluate.quality_alarms(labels, probabilities, threshold, confidence, constraints, registered)
    violations = model_quality_violations(found, confidence)
    return {
        "statistics": statistics,
        "constraints": constraints,
        "constraint_violations": {"violations": violations},
        "verdict": {"checked": True, "violations": len(violations), "labelled": len(labels)},
    }


def model_quality_violations(found: dict[str, dict[str, Any]], confidence: float) -> list[dict[str, str]]:
    """Model Monitor's violation format for each metric `quality_alarms` found."""
    return [
        {
            "metric_name": name,
            "constraint_check_type": alarm["operator"],
            "description": _described(name, alarm, confidence),
        }
        for name, alarm in found.items()
    ]


def _described(name: str, alarm: dict[str, Any], confidence: float) -> str:
    if "drop" in alarm:  # the AUC against its registered value
        return (
            f"Metric {name} with {alarm['value']:.4g} fell {alarm['drop']:.4g} below the version's evaluated "
            f"{alarm['baseline']:.4g} (one-sided {confidence:.0%} lower bound of the drop {alarm['lower_bound']:.4g} "
            "> 0)"
        )
    return (
        f"Metric {name} with {alarm['value']:.4g} ({confidence:.0%} interval [{alarm['interval'][0]:.4g}, "
        f"{alarm['interval'][1]:.4g}]) was {alarm['operator']} '{alarm['threshold']}'"
    )


def read_baseline(s3: LocalS3, uri: str, version: int) -> dict[str, Any]:
    document = read_json(s3, uri)
    if not isinstance(document, dict):
        raise StepError(f"the baseline {uri} of version {version} is missing or not JSON under {shown(s3.root)}")
    return document


def step_module(name: str) -> ModuleType:
    """A step script as a module: the monitor runs the pipelines' own checks, never a copy of them."""
    return importlib.import_module(f"pipeline_defs.steps.{name}")


def _not_checked(reason: str) -> dict[str, Any]:
    return {"verdict": {"checked": False, "reason": reason}}
