"""Evaluation step (the one evaluator of both pipelines): scores a candidate and the incumbent on the same rows.

Inputs:  --model-dir      the candidate: model.tar.gz (a training job's output) or model.joblib
         --incumbent-dir  the approved model, same shapes, or a NO_INCUMBENT marker file when none is approved yet;
                          a directory that does not exist also means no incumbent (the eval-only pipeline mounts none)
         --test-dir       test.csv with the label column `churned` (0/1) and the model's feature columns
Outputs: --output-dir     evaluation.json   {"metric": "roc_auc", "candidate": {metrics}, "incumbent": {metrics} | null,
                                             "has_incumbent", "candidate_score", "incumbent_score" (0.0 without an
                                             incumbent), "delta" (candidate - incumbent, or null), "regression"
                                             (incumbent - candidate, 0.0 without an incumbent: a pipeline condition
                                             compares it to the allowed regression directly)}
                                             with metrics = {"roc_auc", "accuracy", "f1", "precision", "recall", "rows"}
                          model_quality.json the candidate's metrics in SageMaker Model Monitor's model-quality
                                             statistics format (binary classification), for the model registry.

Labels are predicted at a 0.5 probability threshold. Each standard deviation follows Model Monitor's recipe (the
metric over 5 random 80% subsamples) with a fixed seed and stratified subsamples, so it is deterministic and never NaN.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, fbeta_score, precision_score, recall_score, roc_auc_score

LABEL = "churned"
MODEL_FILE = "model.joblib"
NO_INCUMBENT = "NO_INCUMBENT"
THRESHOLD = 0.5
SUBSAMPLES = 5
SUBSAMPLE_SHARE = 0.8
SEED = 0


class StepError(Exception):
    """Expected bad input: reported as one line on stderr with exit code 1."""


def load_model(directory: Path):
    """The fitted Pipeline in `directory`: model.joblib, or the model.joblib inside model.tar.gz."""
    if (directory / MODEL_FILE).is_file():
        return joblib.load(directory / MODEL_FILE)
    archive = directory / "model.tar.gz"
    if not archive.is_file():
        raise StepError(f"neither {MODEL_FILE} nor model.tar.gz found in {directory}")
    # Only the model member is read, so no archive path is ever written to disk.
    with tarfile.open(archive, "r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.isfile() and Path(m.name).name == MODEL_FILE), None)
        if member is None:
            raise StepError(f"{archive} contains no {MODEL_FILE}")
        return joblib.load(io.BytesIO(tar.extractfile(member).read()))


def load_test_data(test_dir: Path) -> tuple[pd.DataFrame, np.ndarray]:
    path = test_dir / "test.csv"
    if not path.is_file():
        raise StepError(f"{path} not found")
    data = pd.read_csv(path)
    if LABEL not in data.columns:
        raise StepError(f"label column '{LABEL}' not found in {path}")
    labels = data[LABEL].to_numpy()
    if set(np.unique(labels)) != {0, 1}:
        raise StepError(f"'{LABEL}' in {path} must be 0/1 with both classes present (ROC AUC needs both)")
    print(f"read {len(data)} rows from {path}")
    return data.drop(columns=[LABEL]), labels


def churn_probabilities(model, features: pd.DataFrame, role: str) -> np.ndarray:
    missing = sorted(set(model.feature_names_in_) - set(features.columns))
    if missing:
        raise StepError(f"the {role} model needs columns missing from the test data: {missing}")
    return model.predict_proba(features[list(model.feature_names_in_)])[:, 1]


def metric_values(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Model Monitor's scalar binary-classification metrics; `labels` must contain both classes."""
    predicted = (probabilities >= THRESHOLD).astype(int)
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


def summary(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    values = metric_values(labels, probabilities)
    names = ["accuracy", "f1", "precision", "recall"]
    return {"roc_auc": values["auc"], **{name: values[name] for name in names}, "rows": len(labels)}


def standard_deviations(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
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
        samples.append(metric_values(labels[index], probabilities[index]))
    return {name: float(np.std([sample[name] for sample in samples])) for name in samples[0]}


def model_quality(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Model Monitor model-quality statistics (binary classification); confusion_matrix[actual][predicted]."""
    deviations = standard_deviations(labels, probabilities)
    metrics = {
        name: {"value": value, "standard_deviation": deviations[name]}
        for name, value in metric_values(labels, probabilities).items()
    }
    matrix = confusion_matrix(labels, (probabilities >= THRESHOLD).astype(int), labels=[0, 1])
    metrics["confusion_matrix"] = {
        str(actual): {str(predicted): int(matrix[actual, predicted]) for predicted in (0, 1)} for actual in (0, 1)
    }
    return {"version": 0.0, "dataset": {"item_count": len(labels)}, "binary_classification_metrics": metrics}


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/input/model"))
    parser.add_argument("--incumbent-dir", type=Path, default=Path("/opt/ml/processing/input/incumbent"))
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/input/test"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output/evaluation"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    features, labels = load_test_data(args.test_dir)
    candidate_probabilities = churn_probabilities(load_model(args.model_dir), features, "candidate")
    candidate = summary(labels, candidate_probabilities)
    print(f"candidate roc_auc={candidate['roc_auc']:.6f}")

    incumbent = None
    if (args.incumbent_dir / NO_INCUMBENT).is_file() or not args.incumbent_dir.exists():
        print(f"no incumbent: {args.incumbent_dir} holds no approved model")
    else:
        incumbent = summary(labels, churn_probabilities(load_model(args.incumbent_dir), features, "incumbent"))
        print(f"incumbent roc_auc={incumbent['roc_auc']:.6f}")

    write_json(
        args.output_dir / "evaluation.json",
        {
            "metric": "roc_auc",
            "candidate": candidate,
            "incumbent": incumbent,
            "has_incumbent": incumbent is not None,
            "candidate_score": candidate["roc_auc"],
            "incumbent_score": incumbent["roc_auc"] if incumbent else 0.0,
            "delta": candidate["roc_auc"] - incumbent["roc_auc"] if incumbent else None,
            "regression": incumbent["roc_auc"] - candidate["roc_auc"] if incumbent else 0.0,
        },
    )
    write_json(args.output_dir / "model_quality.json", model_quality(labels, candidate_probabilities))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except StepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
