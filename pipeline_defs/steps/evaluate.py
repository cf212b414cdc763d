"""Evaluation step (the one evaluator of both pipelines): scores a candidate and the incumbent on the same rows.

Inputs:  --model-dir         the candidate: model.tar.gz (a training job's output) or a folder with model.joblib
         --incumbent-dir     the approved model, same shapes, or a NO_INCUMBENT marker file when none is approved yet;
                             a directory that does not exist also means no incumbent (the eval-only pipeline has none)
         --test-dir          test.csv (the contract's features and label) and row_keys.txt (preprocess.py: one row
                             key hash a line, in the order of test.csv; optional); from a Preprocess on several
                             instances, test-<host>.csv with row_keys-<host>.txt each, read in name order. A label is
                             0, 1 or empty (not labelled yet: scored, left out of every metric)
         --allow-unlabelled  without it, labelled rows lacking a class fail the step; with it (the eval-only
                             pipeline on captured traffic) evaluation.json says has_labels false instead
         --contract          the feature contract (a file, or the folder holding the one *.json the pipeline mounts)
         --confidence-level  of the interval on the regression (0.5 <= level < 1); needed only with an incumbent.
                             With it, the candidate's ROC AUC also gets its DeLong interval (evaluation.json
                             candidate_score_upper_bound: what the eval-only pipeline's health check compares)
         --registered-quality-dir  the eval-only role: the model-quality statistics the version registered (the
                             evaluation slice's model_quality.json, from ResolveModel's model_quality_input_uri), or a
                             PLACEHOLDER alone when it registered none. The AUC of the labelled rows is then tested for
                             a drop from the registered one (`auc_drop`, at --confidence-level): evaluation.json's
                             auc_drop and auc_drop_alarm, what the eval-only pipeline's health check reads
         --quality-tolerance relative drop (0 <= t < 1) a monitored metric may show before it violates its constraint
         --probability-threshold  a score at or above it predicts churn (0 < t < 1): the predicted labels behind
                             accuracy, f1, precision, recall and the confusion matrix. The pipelines pass the unit's
                             model_quality_probability_threshold, the one Model Monitor's analyzer applies to live
                             traffic; needed whenever labelled rows are measured (not with --score-only)
Outputs: --output-dir        evaluation.json    see `report`; model_quality.json: the candidate's metrics in SageMaker
                                                Model Monitor's model-quality statistics format (binary classification);
                             model_quality_constraints.json (with --quality-tolerance): Model Monitor's model-quality
                                                constraints, each monitored metric's threshold = its value x (1 - t),
                                                LessThanThreshold: the baseline the endpoint's model-quality monitor
                                                checks live traffic against.
                             explainability.json  the candidate's feature importances as train.py recorded them in
                                                its model archive (the package's Explainability report); absent
                                                when the archive has none
                             curves.json        what `mlops report` draws: {"roc": {"candidate" | "incumbent": {
                                                "false_positive_rate", "true_positive_rate", "auc"} | null},
                                                "score_histogram": {"edges", "candidate" | "incumbent": {"positive",
                                                "negative"} | null}}

With --score-only (the pipelines' Score step) the output is scored.csv alone: every test row as the endpoint's monitor
sees it - the model's score (--score-column) first, then the features in contract order, no label. The data-quality
baseline is computed from it and the drift check reads new data in the same layout. Scoring is its own step so that
it depends on the candidate alone: when only the incumbent changes, Evaluate re-runs but Score and Baseline hit the
cache.

The gate (method): candidate and incumbent are scored on the same rows, so their ROC AUCs are compared with DeLong's
paired test (DeLong, DeLong & Clarke-Pearson 1988, in Sun & Xu's 2014 midrank form): the regression (incumbent -
candidate AUC) gets a two-sided normal interval at --confidence-level from the covariance of the two AUCs' structural
components. It is closed form, so the same inputs always give the same report (the step stays cacheable). The pipeline
rejects a candidate only when the interval's lower bound exceeds MaxRegression: when the true regression is exactly
MaxRegression, that happens with probability (1 - level) / 2. Test rows the incumbent saw in training (its model
archive lists their key hashes in training_row_keys.txt) are left out of the comparison and counted in the report.

Labels are predicted at --probability-threshold. Each standard deviation follows Model Monitor's recipe (the
metric over 5 random 80% subsamples) with a fixed seed and stratified subsamples, so it is deterministic and never NaN.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
from pathlib import Path
from statistics import NormalDist
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    fbeta_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

# The step library: a zip in ../steplib/ in a processing job (pipeline_defs/packaging.py), installed in the repository.
sys.path[:0] = [str(path) for path in sorted(Path(__file__).resolve().parent.parent.glob("steplib/*.zip"))]
from steplib import MONITORED_METRICS, StepError, read_contract, run_step, write_json

MODEL_FILE = "model.joblib"
TRAINING_KEYS_FILE = "training_row_keys.txt"
EXPLAINABILITY_FILE = "explainability.json"  # train.py's
TEST_KEYS_FILE = "row_keys.txt"
NO_INCUMBENT = "NO_INCUMBENT"
UNLABELLED = -1
HISTOGRAM_EDGES = np.linspace(0.0, 1.0, 11)  # ten equal score bins, as the report's histograms show them
MAX_CURVE_POINTS = 500  # enough to draw a ROC curve; keeps curves.json small whatever the slice size
SUBSAMPLES = 5
SUBSAMPLE_SHARE = 0.8
SEED = 0
METHOD = "DeLong paired test of ROC AUC on the same rows, two-sided normal interval"
BOOTSTRAP_DRAWS = 2000  # redraws of the confusion matrix behind the f1, precision and recall intervals
# A constraint is credibly violated when its metric's whole interval is past the threshold.
CREDIBLY = {
    "LessThanThreshold": lambda interval, threshold: interval[1] < threshold,
    "GreaterThanThreshold": lambda interval, threshold: interval[0] > threshold,
}


def model_files(directory: Path) -> dict[str, bytes]:
    """model.joblib (and training_row_keys.txt and explainability.json, if recorded) from a folder or the model.tar.gz
    a training job wrote."""
    wanted = (MODEL_FILE, TRAINING_KEYS_FILE, EXPLAINABILITY_FILE)
    if (directory / MODEL_FILE).is_file():
        return {name: (directory / name).read_bytes() for name in wanted if (directory / name).is_file()}
    archive = directory / "model.tar.gz"
    if not archive.is_file():
        raise StepError(f"neither {MODEL_FILE} nor model.tar.gz found in {directory}")
    # Only the wanted members are read, so no archive path is ever written to disk.
    with tarfile.open(archive, "r:gz") as tar:
        files = {
            Path(m.name).name: tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile() and Path(m.name).name in wanted
        }
    if MODEL_FILE not in files:
        raise StepError(f"{archive} contains no {MODEL_FILE}")
    return files


def load_model(directory: Path) -> tuple[object, set[str] | None]:
    """The fitted Pipeline in `directory` and the key hashes of the rows it was trained on (None: not recorded)."""
    files = model_files(directory)
    keys = files.get(TRAINING_KEYS_FILE)
    return joblib.load(io.BytesIO(files[MODEL_FILE])), (set(keys.decode().split()) if keys is not None else None)


def copy_explainability(model_dir: Path, output_dir: Path) -> None:
    """The candidate's explainability.json into the evaluation output, where the registration reads it."""
    report = model_files(model_dir).get(EXPLAINABILITY_FILE)
    if report is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / EXPLAINABILITY_FILE).write_bytes(report)


def load_test_data(test_dir: Path, contract: dict) -> tuple[pd.DataFrame, np.ndarray, list[str] | None]:
    """(features, labels, row key hashes or None) of every test*.csv in `test_dir` (one per Preprocess instance, in
    name order), each with its row_keys*.txt; categories are read as text, as train.py reads them.

    A label is 0, 1 or missing (-1 here: captured traffic nobody has labelled yet, which is scored but not measured).
    """
    paths, label = sorted(test_dir.glob("*.csv")), contract["label"]
    if not paths:
        raise StepError(f"no *.csv file found in {test_dir}")
    categories = {f["name"]: str for f in contract["features"] if f["type"] == "category"}
    frames, keys = [], []
    for path in paths:
        data = pd.read_csv(path, dtype=categories, keep_default_na=False, na_values=[""])
        if label not in data.columns:
            raise StepError(f"label column '{label}' not found in {path}")
        # test.csv pairs with row_keys.txt, test-algo-2.csv (instance algo-2's share) with row_keys-algo-2.txt.
        keys_path = test_dir / f"row_keys{path.stem.removeprefix('test')}.txt"
        file_keys = keys_path.read_text().split() if keys_path.is_file() else None
        if file_keys is not None and len(file_keys) != len(data):
            raise StepError(f"{keys_path} has {len(file_keys)} keys for the {len(data)} rows of {path}")
        frames.append(data)
        keys.append(file_keys)
    data = pd.concat(frames, ignore_index=True)
    labels = data[label].fillna(UNLABELLED).to_numpy()
    if not set(np.unique(labels)) <= {0, 1, UNLABELLED}:
        raise StepError(f"'{label}' in {test_dir} must be 0, 1 or empty")
    all_keys = None if any(k is None for k in keys) else [key for file_keys in keys for key in file_keys or []]
    labelled = int((labels != UNLABELLED).sum())
    print(f"read {len(data)} rows from {len(paths)} file(s) in {test_dir} ({labelled} labelled)")
    return data.drop(columns=[label]), labels.astype(int), all_keys


def measurable(labels: np.ndarray) -> bool:
    """Whether the labelled rows hold both classes (ROC AUC and every rate need both)."""
    return set(np.unique(labels[labels != UNLABELLED])) == {0, 1}


def churn_probabilities(model, features: pd.DataFrame, role: str) -> np.ndarray:
    missing = sorted(set(model.feature_names_in_) - set(features.columns))
    if missing:
        raise StepError(f"the {role} model needs columns missing from the test data: {missing}")
    return model.predict_proba(features[list(model.feature_names_in_)])[:, 1]


def metric_values(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    """Model Monitor's scalar binary-classification metrics, a score >= `threshold` predicting churn; `labels` must
    contain both classes."""
    predicted = (probabilities >= threshold).astype(int)
    (true_negatives, false_positives), (false_negatives, true_positives) = confusion_matrix(
        labels, predicted, labels=[0, 1]
    )
    negatives, positives = true_negatives + false_positives, true_positives + false_negatives
    values = {
        "auc": roc_auc_score(labels, probabilities),
        "accuracy": accuracy_score(labels, predicted),
        "precision": precision_score(labels, predicted, zero_division=0),
        "recall": recall_score(labels, predicted, zero_division=0),
        "f0_5": fbeta_score(labels, predicted, beta=0.5, zero_division=0),
        "f1": fbeta_score(labels, predicted, beta=1.0, zero_division=0),
        "f2": fbeta_score(labels, predicted, beta=2.0, zero_division=0),
        "true_positive_rate": true_positives / positives,
        "true_negative_rate": true_negatives / negatives,
        "false_positive_rate": false_positives / negatives,
        "false_negative_rate": false_negatives / positives,
    }
    return {name: float(value) for name, value in values.items()}


def summary(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    values = metric_values(labels, probabilities, threshold)
    names = ["accuracy", "f1", "precision", "recall"]
    return {"roc_auc": values["auc"], **{name: values[name] for name in names}, "rows": len(labels)}


def standard_deviations(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    """Standard deviation of each metric over stratified 80% subsamples (both classes always present)."""
    rng = np.random.default_rng(SEED)
    samples = []
    for _ in range(SUBSAMPLES):
        index = np.concatenate(
            [
                rng.permutation(members)[: int(np.ceil(SUBSAMPLE_SHARE * len(members)))]
                for members in (np.flatnonzero(labels == 0), np.flatnonzero(labels == 1))
            ]
        )
        samples.append(metric_values(labels[index], probabilities[index], threshold))
    return {name: float(np.std([sample[name] for sample in samples])) for name in samples[0]}


def model_quality(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """Model Monitor model-quality statistics (binary classification) at probability `threshold`;
    confusion_matrix[actual][predicted]."""
    deviations = standard_deviations(labels, probabilities, threshold)
    metrics = {
        name: {"value": value, "standard_deviation": deviations[name]}
        for name, value in metric_values(labels, probabilities, threshold).items()
    }
    matrix = confusion_matrix(labels, (probabilities >= threshold).astype(int), labels=[0, 1])
    metrics["confusion_matrix"] = {
        str(actual): {str(predicted): int(matrix[actual, predicted]) for predicted in (0, 1)} for actual in (0, 1)
    }
    return {"version": 0.0, "dataset": {"item_count": len(labels)}, "binary_classification_metrics": metrics}


def model_quality_constraints(quality: dict, tolerance: float) -> dict:
    """Model Monitor model-quality constraints derived from the evaluation slice's own metrics."""
    if not 0 <= tolerance < 1:  # also refuses nan
        raise StepError(f"--quality-tolerance {tolerance} is out of range: use 0 <= tolerance < 1, e.g. 0.05")
    metrics = quality["binary_classification_metrics"]
    return {
        "version": 0.0,
        "binary_classification_constraints": {
            # Decimals, never scientific notation: Model Monitor reads the threshold as a plain float.
            name: {
                "threshold": round(metrics[name]["value"] * (1 - tolerance), 6),
                "comparison_operator": "LessThanThreshold",
            }
            for name in MONITORED_METRICS
        },
    }


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def delong(labels: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUCs of several models scored on the same rows, and their covariance matrix (DeLong, fast midrank form)."""
    positive, negative = labels == 1, labels == 0
    m, n = int(positive.sum()), int(negative.sum())
    aucs, positive_components, negative_components = [], [], []
    for score in scores:
        ranks = midranks(np.concatenate([score[positive], score[negative]]))
        below_positive = ranks[:m] - midranks(score[positive])  # negatives ranked below each positive (ties: half)
        below_negative = ranks[m:] - midranks(score[negative])  # positives ranked below each negative
        aucs.append(below_positive.sum() / (m * n))
        positive_components.append(below_positive / n)
        negative_components.append(1 - below_negative / m)
    covariance = np.cov(positive_components) / m + np.cov(negative_components) / n
    return np.array(aucs), np.atleast_2d(covariance)


def normal_margin(confidence: float, standard_error: float) -> float:
    """Half the width of a two-sided normal interval at `confidence`."""
    return NormalDist().inv_cdf(0.5 + confidence / 2) * standard_error


def paired_regression(labels: np.ndarray, incumbent: np.ndarray, candidate: np.ndarray, confidence: float) -> dict:
    """The regression (incumbent - candidate ROC AUC) on the same rows, with its DeLong interval at `confidence`."""
    if min(int((labels == 0).sum()), int((labels == 1).sum())) < 2:  # DeLong's variances need two of each class
        raise StepError(f"the {len(labels)} rows left to compare the models on need at least two of each class")
    (incumbent_auc, candidate_auc), covariance = delong(labels, [incumbent, candidate])
    standard_error = math.sqrt(max(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1], 0.0))
    regression = float(incumbent_auc - candidate_auc)
    margin = normal_margin(confidence, standard_error)
    return {
        "method": METHOD,
        "confidence_level": confidence,
        "rows": len(labels),
        "incumbent_roc_auc": float(incumbent_auc),
        "candidate_roc_auc": float(candidate_auc),
        "regression": regression,
        "standard_error": standard_error,
        "lower_bound": regression - margin,
        "upper_bound": regression + margin,
    }


def metric_intervals(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float, confidence: float
) -> dict[str, tuple[float, float]]:
    """{metric: (lower, upper)} two-sided intervals at `confidence` of each MONITORED_METRICS metric: the ROC AUC's
    from DeLong's variance (the gate's `delong`); f1, precision and recall from BOOTSTRAP_DRAWS multinomial redraws of
    the confusion matrix (labels predicted at `threshold`; a fixed seed, so the same rows give the same intervals).
    `labels` must hold both classes, at least two rows of each."""
    (auc,), covariance = delong(labels, [probabilities])
    margin = normal_margin(confidence, math.sqrt(max(float(covariance[0, 0]), 0.0)))
    intervals = {"auc": (float(auc) - margin, float(auc) + margin)}
    predicted = probabilities >= threshold
    cells = [(predicted & (labels == 1)).sum(), (predicted & (labels == 0)).sum(), (~predicted & (labels == 1)).sum()]
    counts = np.array([*cells, len(labels) - sum(cells)], dtype=float)
    true_positives, false_positives, false_negatives, _ = (
        np.random.default_rng(SEED).multinomial(len(labels), counts / counts.sum(), size=BOOTSTRAP_DRAWS).T
    )
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty denominator is 0, as zero_division=0 has it
        redrawn = {
            "precision": true_positives / (true_positives + false_positives),
            "recall": true_positives / (true_positives + false_negatives),
            "f1": 2 * true_positives / (2 * true_positives + false_positives + false_negatives),
        }
    tail = (1 - confidence) / 2
    for name, values in redrawn.items():
        lower, upper = np.quantile(np.nan_to_num(values, nan=0.0), [tail, 1 - tail])
        intervals[name] = (float(lower), float(upper))
    return intervals


def credible_violations(
    values: dict[str, float], intervals: dict[str, tuple[float, float]], constraints: dict
) -> dict[str, dict]:
    """The model-quality constraints whose metric is credibly on the wrong side of its threshold: the whole interval
    below a LessThanThreshold threshold (above a GreaterThanThreshold one). The check of this project's own monitoring
    paths (mlops monitor --local); Model Monitor's schedules compare the point values."""
    found = {}
    for name, rule in sorted(constraints.get("binary_classification_constraints", {}).items()):
        operator, limit = rule.get("comparison_operator"), rule.get("threshold")
        if name not in intervals or operator not in CREDIBLY or not isinstance(limit, int | float):
            raise StepError(f"model-quality constraint {name}: {rule} is not a known metric, operator and threshold")
        if CREDIBLY[operator](intervals[name], limit):
            found[name] = {"value": values[name], "interval": intervals[name], "threshold": limit, "operator": operator}
    return found


def hanley_mcneil_variance(auc: float, positives: int, negatives: int) -> float:
    """The sampling variance of a ROC AUC measured on `positives` and `negatives` rows (Hanley & McNeil 1982): what
    a registered AUC's error is when only its value and class counts were kept (model_quality.json)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    spread = auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    return max(spread, 0.0) / (positives * negatives)


def auc_drop(labels: np.ndarray, probabilities: np.ndarray, baseline: dict, confidence: float) -> dict | None:
    """How far the ROC AUC of these labelled rows fell below the baseline's (a model_quality() document: the
    evaluation slice's metrics registered with the version), with the one-sided lower bound at `confidence` of that
    drop. The two AUCs come from independent samples, so the drop's variance is the sum of both: DeLong's for these
    rows, Hanley-McNeil's for the baseline from its value and class counts. A lower bound above 0 is a credible drop
    (its false-alarm rate on an unchanged model is at most 1 - confidence; README, "Monitoring locally"). None when
    the baseline lacks its AUC or confusion matrix (registered by another tool). `labels` need two of each class."""
    metrics = baseline.get("binary_classification_metrics", {})
    matrix, registered = metrics.get("confusion_matrix"), metrics.get("auc", {}).get("value")
    try:
        counts = [sum(int(matrix[actual][predicted]) for predicted in ("0", "1")) for actual in ("1", "0")]
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(registered, int | float) or min(counts) < 2:
        return None
    (auc,), covariance = delong(labels, [probabilities])
    variance = max(float(covariance[0, 0]), 0.0) + hanley_mcneil_variance(float(registered), *counts)
    drop, standard_error = float(registered) - float(auc), math.sqrt(variance)
    return {
        "baseline": float(registered),
        "value": float(auc),
        "drop": drop,
        "standard_error": standard_error,
        "confidence_level": confidence,
        "lower_bound": drop - NormalDist().inv_cdf(confidence) * standard_error,
    }


def credible_drop(drop: dict) -> bool:
    """An `auc_drop` is credible (alarms) when its one-sided lower bound is above 0."""
    return drop["lower_bound"] > 0


AUC_DROP_METHOD = "one-sided normal bound on registered - measured AUC: DeLong (measured) + Hanley-McNeil (registered)"


def drop_test(labels: np.ndarray, probabilities: np.ndarray, registered: dict | None, confidence: float) -> dict:
    """evaluation.json's auc_drop in the eval-only role: `auc_drop` against the version's registered model quality
    (None: it registered none) with its verdict `alarm`; method "none" and no alarm when there is nothing to test."""
    if registered is None:
        reason = "the version registered no model-quality statistics"
    elif min((labels == 0).sum(), (labels == 1).sum()) < 2:
        reason = "fewer than two labelled rows of a class"
    elif (drop := auc_drop(labels, probabilities, registered, confidence)) is None:
        reason = "the registered statistics lack the AUC or the confusion matrix"
    else:
        return {**drop, "method": AUC_DROP_METHOD, "alarm": credible_drop(drop)}
    return {"method": "none", "reason": reason, "confidence_level": confidence, "alarm": False}


def read_registered_quality(directory: Path) -> dict | None:
    """The registered model-quality statistics in `directory` (one *.json), None when it holds only a PLACEHOLDER
    (ResolveModel's "none")."""
    documents = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not documents:
        if (directory / "PLACEHOLDER").is_file():
            return None
        raise StepError(f"--registered-quality-dir {directory} holds neither a model_quality.json nor a PLACEHOLDER")
    if len(documents) > 1:
        raise StepError(f"--registered-quality-dir {directory} holds {len(documents)} JSON files: expected one")
    try:
        document = json.loads(documents[0].read_text())
    except json.JSONDecodeError as error:
        raise StepError(f"{documents[0]} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise StepError(f"{documents[0]} is not a model-quality statistics document (a JSON object)")
    return document


def quality_alarms(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    confidence: float,
    constraints: dict,
    baseline: dict,
) -> dict[str, dict]:
    """The model-quality check of this project's own monitoring (mlops monitor --local): the ROC AUC alarms when its
    drop from the baseline is credible (`auc_drop`'s lower bound above 0), f1, precision and recall when their whole
    interval is below their registered threshold (`credible_violations`). Without a usable baseline the AUC is
    checked against its threshold as the others are."""
    values = metric_values(labels, probabilities, threshold)
    intervals = metric_intervals(labels, probabilities, threshold, confidence)
    drop = auc_drop(labels, probabilities, baseline, confidence)
    if drop is None:
        return credible_violations(values, intervals, constraints)
    rules = constraints.get("binary_classification_constraints", {})
    others = {"binary_classification_constraints": {name: rule for name, rule in rules.items() if name != "auc"}}
    found = credible_violations(values, intervals, others)
    if credible_drop(drop):
        found["auc"] = {**drop, "interval": intervals["auc"], "operator": "LessThanThreshold"}
    return dict(sorted(found.items()))


def checked_confidence(level: float | None) -> float:
    if level is None:
        raise StepError("--confidence-level is needed to compare the candidate with an incumbent")
    if not 0.5 <= level < 1:  # also refuses nan
        raise StepError(f"ConfidenceLevel {level} is out of range: use a level with 0.5 <= level < 1, e.g. 0.95")
    return level


def checked_threshold(threshold: float | None) -> float:
    if threshold is None:
        raise StepError("--probability-threshold is needed to measure labelled rows (the pipelines pass the unit's)")
    if not 0 < threshold < 1:  # also refuses nan
        raise StepError(f"--probability-threshold {threshold} is out of range: use 0 < threshold < 1, e.g. 0.5")
    return threshold


def seen_in_training(test_keys: list[str] | None, training_keys: set[str] | None) -> np.ndarray | None:
    """Which test rows the incumbent was trained on; None when either side recorded no row keys."""
    if test_keys is None or training_keys is None:
        return None
    return np.array([key in training_keys for key in test_keys], dtype=bool)


def compare(
    labels: np.ndarray,
    keys: list[str] | None,
    candidate: np.ndarray,
    incumbent_dir: Path,
    features: pd.DataFrame,
    confidence: float | None,
    threshold: float,
) -> tuple[dict, np.ndarray]:
    """The incumbent's metrics and the paired comparison, on the test rows the incumbent was not trained on; and the
    incumbent's probabilities for every row."""
    model, training_keys = load_model(incumbent_dir)
    incumbent = churn_probabilities(model, features, "incumbent")
    seen = seen_in_training(keys, training_keys)
    fair = ~seen if seen is not None else np.ones(len(labels), dtype=bool)
    comparison = paired_regression(labels[fair], incumbent[fair], candidate[fair], checked_confidence(confidence))
    comparison["incumbent_trained_on_test_rows"] = int(seen.sum()) if seen is not None else None
    return {"incumbent": summary(labels, incumbent, threshold), "comparison": comparison}, incumbent


def number(value: float) -> str:
    """A score for people: 4 significant digits."""
    return f"{value:.4g}"


def gate_summary(candidate: dict, comparison: dict | None) -> str:
    """One sentence for the gate's fail message: both scores, the interval, the rows."""
    if comparison is None:
        rows = candidate["rows"]
        return f"roc_auc {number(candidate['roc_auc'])} on {rows} labelled test rows; no incumbent compared."
    c = comparison
    text = (
        f"candidate roc_auc {number(c['candidate_roc_auc'])} vs approved model roc_auc {number(c['incumbent_roc_auc'])}"
        f" on the same {c['rows']} test rows: regression {number(c['regression'])},"
        f" {number(100 * c['confidence_level'])}% CI [{number(c['lower_bound'])}, {number(c['upper_bound'])}]"
    )
    seen = c["incumbent_trained_on_test_rows"]
    if seen is None:
        return text + " (unknown how many test rows the approved model was trained on)."
    return text + (f" ({seen} test rows the approved model was trained on left out)." if seen else ".")


def evaluation(
    candidate: dict,
    incumbent: dict | None,
    comparison: dict | None,
    scored_rows: int,
    candidate_interval: dict | None = None,
    drop: dict | None = None,
) -> dict:
    """evaluation.json. Without an incumbent, the regression fields are 0.0 (the gate's condition compares numbers
    and ORs on has_incumbent), incumbent_score and comparison are null. candidate_interval: the candidate's ROC AUC
    interval at --confidence-level (`metric_intervals`; null without a level or with fewer than two rows of a class);
    candidate_score_upper_bound its upper bound, else the point value. drop: `drop_test`'s result (the eval-only
    role), auc_drop_alarm its verdict (false without one)."""
    summary_text = gate_summary(candidate, comparison)
    if drop is not None and drop["alarm"]:
        summary_text += (
            f" AUC dropped from the registered {number(drop['baseline'])} by {number(drop['drop'])}: one-sided"
            f" {number(100 * drop['confidence_level'])}% lower bound of the drop {number(drop['lower_bound'])} > 0."
        )
    return {
        "metric": "roc_auc",
        "candidate": candidate,
        "incumbent": incumbent,
        "has_labels": True,
        "has_incumbent": incumbent is not None,
        "scored_rows": scored_rows,
        "candidate_score": candidate["roc_auc"],
        # The candidate's ROC AUC interval; the eval-only pipeline is unhealthy only when its upper bound is below
        # MinimumScore.
        "candidate_interval": candidate_interval,
        "candidate_score_upper_bound": candidate_interval["upper_bound"]
        if candidate_interval
        else candidate["roc_auc"],
        "incumbent_score": incumbent["roc_auc"] if incumbent else None,
        "delta": candidate["roc_auc"] - incumbent["roc_auc"] if incumbent else None,
        "comparison": comparison,
        "regression": comparison["regression"] if comparison else 0.0,
        "regression_lower_bound": comparison["lower_bound"] if comparison else 0.0,
        "auc_drop": drop,
        "auc_drop_alarm": bool(drop and drop["alarm"]),
        "summary": summary_text,
    }


def unmeasured(labels: np.ndarray) -> dict:
    """evaluation.json when the labelled rows lack a class (--allow-unlabelled): the model was scored, not measured.

    has_labels is false, candidate_score and its upper bound 0.0: the eval-only gate compares numbers and ORs on
    has_labels.
    """
    labelled = int((labels != UNLABELLED).sum())
    return {
        "metric": "roc_auc",
        "candidate": None,
        "incumbent": None,
        "has_labels": False,
        "has_incumbent": False,
        "scored_rows": len(labels),
        "candidate_score": 0.0,
        "candidate_interval": None,
        "candidate_score_upper_bound": 0.0,
        "incumbent_score": None,
        "delta": None,
        "comparison": None,
        "regression": 0.0,
        "regression_lower_bound": 0.0,
        "auc_drop": None,
        "auc_drop_alarm": False,
        "summary": f"model quality not measured: {labelled} of {len(labels)} rows are labelled, not both classes"
        " (ground truth missing); the rows were scored for the drift check.",
    }


def roc_points(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """The ROC curve (at most MAX_CURVE_POINTS points, both ends kept) and its AUC."""
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, probabilities)
    keep = np.unique(np.linspace(0, len(false_positive_rate) - 1, MAX_CURVE_POINTS).round().astype(int))
    return {
        "false_positive_rate": [float(value) for value in false_positive_rate[keep]],
        "true_positive_rate": [float(value) for value in true_positive_rate[keep]],
        "auc": float(roc_auc_score(labels, probabilities)),
    }


def score_histogram(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Row counts per score bin, for the rows of each class."""
    return {
        name: [int(count) for count in np.histogram(probabilities[labels == value], bins=HISTOGRAM_EDGES)[0]]
        for name, value in (("positive", 1), ("negative", 0))
    }


def curves(labels: np.ndarray, candidate: np.ndarray, incumbent: np.ndarray | None) -> dict:
    """curves.json: what `mlops report` draws (ROC curves, score histograms) for the labelled rows."""
    scored = {"candidate": candidate, "incumbent": incumbent}
    return {
        "roc": {role: roc_points(labels, p) if p is not None else None for role, p in scored.items()},
        "score_histogram": {"edges": [float(edge) for edge in HISTOGRAM_EDGES]}
        | {role: score_histogram(labels, p) if p is not None else None for role, p in scored.items()},
    }


def auc_interval(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float, confidence_level: float | None
) -> dict | None:
    """evaluation.json's candidate_interval: the ROC AUC's DeLong interval; None without a level or with fewer than
    two rows of a class."""
    if confidence_level is None or min((labels == 0).sum(), (labels == 1).sum()) < 2:
        return None
    lower, upper = metric_intervals(labels, probabilities, threshold, confidence_level)["auc"]
    return {"confidence_level": confidence_level, "lower_bound": lower, "upper_bound": upper}


def read_candidate_scores(path: Path, rows: int, score_column: str) -> np.ndarray:
    """A candidate's scores from a CSV with a `score_column` column, one probability per test row in the test data's
    order (what `mlops experiment run` and the notebook API hand over: scores cross Python versions, models may not)."""
    if not path.is_file():
        raise StepError(f"--candidate-scores: {path} not found")
    try:
        scores = pd.read_csv(path)[score_column].to_numpy(dtype=float)
    except (KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise StepError(f"--candidate-scores {path}: needs a numeric '{score_column}' column ({error})") from None
    if len(scores) != rows:
        raise StepError(f"--candidate-scores {path} has {len(scores)} scores for the {rows} test rows")
    if not np.all((scores >= 0) & (scores <= 1)):  # also refuses nan
        raise StepError(f"--candidate-scores {path}: every score must be a probability (0 <= score <= 1)")
    return scores


def candidate_probabilities(
    model_dir: Path | None, candidate_scores: Path | None, features: pd.DataFrame, score_column: str
) -> np.ndarray:
    """The candidate's scores of the test rows: given (`candidate_scores`), else its model's."""
    if candidate_scores is not None:
        return read_candidate_scores(candidate_scores, len(features), score_column)
    if model_dir is None:
        raise StepError("no candidate: pass its model (--model-dir) or its scores (--candidate-scores)")
    return churn_probabilities(load_model(model_dir)[0], features, "candidate")


def write_scored(path: Path, features: pd.DataFrame, probabilities: np.ndarray, score_column: str) -> None:
    """The rows as the endpoint's monitor sees them: the model's score first, then the features, no label."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scored = features.copy()
    scored.insert(0, score_column, probabilities)
    scored.to_csv(path, index=False)
    print(f"wrote {len(scored)} scored rows to {path}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/input/model"))
    parser.add_argument("--incumbent-dir", type=Path, default=Path("/opt/ml/processing/input/incumbent"))
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/input/test"))
    parser.add_argument("--contract", type=Path, default=Path(__file__).with_name("feature_contract.json"))
    parser.add_argument("--confidence-level", type=float)
    parser.add_argument("--quality-tolerance", type=float)
    parser.add_argument("--registered-quality-dir", type=Path, help="the eval-only role's drop test baseline")
    parser.add_argument("--probability-threshold", type=float)
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output/evaluation"))
    parser.add_argument(
        "--candidate-scores",
        type=Path,
        help="a CSV of the candidate's scores (--score-column), one per test row in order, instead of its model",
    )
    parser.add_argument("--score-only", action="store_true", help="write scored.csv only (no incumbent, no labels)")
    parser.add_argument("--score-column", default="churn_probability")
    parser.add_argument("--allow-unlabelled", action="store_true", help="report 'not measured' without both classes")
    return parser.parse_args(argv)


def run(
    *,
    test_dir: Path,
    contract: Path,
    output_dir: Path,
    model_dir: Path | None = None,
    incumbent_dir: Path | None = None,
    candidate_scores: Path | None = None,
    confidence_level: float | None = None,
    quality_tolerance: float | None = None,
    probability_threshold: float | None = None,
    registered_quality_dir: Path | None = None,
    score_only: bool = False,
    score_column: str = "churn_probability",
    allow_unlabelled: bool = False,
) -> dict[str, Any]:
    """The candidate (the model in `model_dir`, or `candidate_scores`) scored on the test rows and compared with the
    incumbent: the reports under `output_dir` (see the module's description); returns evaluation.json's document
    ({} with `score_only`)."""
    if confidence_level is not None:  # checked on every run, also the first one without an incumbent
        checked_confidence(confidence_level)
    if probability_threshold is not None:
        checked_threshold(probability_threshold)
    registered = read_registered_quality(registered_quality_dir) if registered_quality_dir is not None else None
    features, labels, keys = load_test_data(test_dir, read_contract(contract))
    probabilities = candidate_probabilities(model_dir, candidate_scores, features, score_column)
    if score_only:
        write_scored(output_dir / "scored.csv", features, probabilities, score_column)
        return {}
    if not measurable(labels):
        if not allow_unlabelled:
            raise StepError(f"the test rows' labels must hold both 0 and 1 (ROC AUC needs both) in {test_dir}")
        report = unmeasured(labels)
        print(report["summary"])
        write_json(output_dir / "evaluation.json", report)
        return report
    threshold = checked_threshold(probability_threshold)
    known = labels != UNLABELLED
    labels, probabilities, features = labels[known], probabilities[known], features[known]
    keys = [key for key, k in zip(keys, known, strict=True) if k] if keys is not None else None
    candidate = summary(labels, probabilities, threshold)
    print(f"candidate roc_auc={candidate['roc_auc']:.6f} on {len(labels)} labelled rows")
    interval = auc_interval(labels, probabilities, threshold, confidence_level)
    drop = None
    if registered_quality_dir is not None:
        drop = drop_test(labels, probabilities, registered, checked_confidence(confidence_level))

    incumbent: dict = {"incumbent": None, "comparison": None}
    incumbent_probabilities = None
    if incumbent_dir is None or (incumbent_dir / NO_INCUMBENT).is_file() or not incumbent_dir.exists():
        print(f"no incumbent: {incumbent_dir} holds no approved model")
    else:
        incumbent, incumbent_probabilities = compare(
            labels, keys, probabilities, incumbent_dir, features, confidence_level, threshold
        )
    report = evaluation(candidate, **incumbent, scored_rows=len(known), candidate_interval=interval, drop=drop)
    print(report["summary"])
    write_json(output_dir / "evaluation.json", report)
    if candidate_scores is None and model_dir is not None:  # scores alone carry no explainability report
        copy_explainability(model_dir, output_dir)
    write_json(output_dir / "curves.json", curves(labels, probabilities, incumbent_probabilities))
    quality = model_quality(labels, probabilities, threshold)
    write_json(output_dir / "model_quality.json", quality)
    if quality_tolerance is not None:
        constraints = model_quality_constraints(quality, quality_tolerance)
        write_json(output_dir / "model_quality_constraints.json", constraints)
    return report


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
