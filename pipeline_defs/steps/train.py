"""Training step (SageMaker script mode): fits the churn classifier and saves it as model.joblib.

Inputs:  --train        directory of *.csv training rows      (default: $SM_CHANNEL_TRAIN)
         --validation   directory of *.csv validation rows    (default: $SM_CHANNEL_VALIDATION)
         --contract     the feature contract: a file, or the folder holding the one *.json
                        (default: $SM_CHANNEL_CONTRACT, else feature_contract.json beside this script)
         Both data folders hold preprocess.py's output: a header row, the contract's features and label (0/1), and
         row_keys.txt (one *.csv and row_keys-<host>.txt per instance of a sharded Preprocess). The classifier is
         scikit-learn's HistGradientBoostingClassifier (binned, linear in rows, multi-threaded): number and integer
         features go in as they are (missing values are its native "missing" bin), category features by their
         position in the contract's declared categories (its native categorical splits; a category it has not
         seen, or a missing one, goes to the missing bin); nothing else is a feature.
Outputs: --model-dir        model.joblib, a fitted scikit-learn Pipeline    (default: $SM_MODEL_DIR)
                            training_row_keys.txt: the row key hashes of every train and validation row, so an
                            evaluation can count the test rows this model was trained on
                            explainability.json: each feature's permutation importance on the validation slice
                            (the drop of ROC AUC when its values are shuffled; `permutation_importances`), which
                            Evaluate hands on to the registration as the package's Explainability report
         --output-data-dir  metrics.json {"validation_roc_auc": float}     (default: $SM_OUTPUT_DATA_DIR)
         stdout             `validation_roc_auc=<float>`, for the training job's metric definition regex.
Hyperparameters: --n-estimators (boosting iterations), --max-depth, --learning-rate, --seed.

A validation ROC AUC at or above the contract's leak_threshold fails the step as a suspected label leak, naming the
feature the model relies on most (the largest permutation importance): real churn is not that predictable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

# The step library: steplib/ beside this script in its source tarball (pipeline_defs/packaging.py), installed in the
# repository.
from steplib import StepError, files_in, read_contract, run_step
from steplib.importances import IMPORTANCE_REPEATS, check_leak, explainability_report, importance_rows

# preprocess.py's row key files: row_keys.txt, or row_keys-<host>.txt from each instance of a sharded run.
KEYS_FILES = "row_keys*.txt"
TRAINING_KEYS_FILE = "training_row_keys.txt"
EXPLAINABILITY_FILE = "explainability.json"


def read_channel(directory: Path, contract: dict) -> tuple[pd.DataFrame, pd.Series]:
    """The contract's features (in its order, categories as text) and label of every *.csv under `directory`."""
    paths = files_in(directory, "*.csv", f"channel {directory.name}")
    label, features = contract["label"], [feature["name"] for feature in contract["features"]]
    categories = {f["name"]: str for f in contract["features"] if f["type"] == "category"}
    data = pd.concat(
        [pd.read_csv(path, dtype=categories, keep_default_na=False, na_values=[""]) for path in paths],
        ignore_index=True,
    )
    missing = [column for column in [*features, label] if column not in data.columns]
    if missing:
        raise StepError(f"column(s) {missing} of the feature contract not found under {directory}")
    print(f"read {len(data)} rows from {directory}")
    return data[features], data[label]


def key_files(channel: Path) -> list[Path]:
    return sorted(path for path in channel.rglob(KEYS_FILES) if path.is_file())


def build_model(contract: dict, args: argparse.Namespace) -> Pipeline:
    numeric = [f["name"] for f in contract["features"] if f["type"] != "category"]
    categorical = [f for f in contract["features"] if f["type"] == "category"]
    print(f"numeric features: {numeric}; categorical features: {[f['name'] for f in categorical]}")
    # A category becomes its position in the contract's list; unseen or missing ones become NaN, the missing bin.
    encode = OrdinalEncoder(
        categories=[list(f["categories"]) for f in categorical],
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
    )
    # One column per contract feature, named after it: the permutation importances are the features'.
    columns = ColumnTransformer(
        [("numeric", "passthrough", numeric), ("categorical", encode, [f["name"] for f in categorical])],
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        categorical_features=[False] * len(numeric) + [True] * len(categorical),
        early_stopping=False,  # every iteration asked for, and no slice of the training rows held back
        random_state=args.seed,
    )
    return Pipeline([("columns", columns), ("classifier", classifier)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train", type=Path, default=Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    )
    parser.add_argument(
        "--validation",
        type=Path,
        default=Path(os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")),
    )
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument(
        "--output-data-dir",
        type=Path,
        default=Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
    )
    parser.add_argument(
        "--contract",
        type=Path,
        default=Path(os.environ.get("SM_CHANNEL_CONTRACT", Path(__file__).with_name("feature_contract.json"))),
    )
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def permutation_importances(
    model: Pipeline, features: pd.DataFrame, labels: pd.Series, seed: int
) -> dict[str, dict[str, float]]:
    """{feature: {"mean", "std"}} of the validation ROC AUC's drop when that feature's values are shuffled.

    The rows are encoded once and the classifier alone is scored on each shuffle: the encoding maps each feature to
    one column (a category to its position), so shuffling that column shuffles the feature. Only the seeded sample
    of at most IMPORTANCE_ROWS rows (`importance_rows`) is encoded, and the unshuffled score is that sample's too, so
    every drop compares the same rows."""
    columns = model.named_steps["columns"]
    chosen = importance_rows(len(features), seed)
    encoded, names = columns.transform(features.iloc[chosen]), columns.get_feature_names_out()
    # One thread: each of the shuffles' predictions is too small to pay for waking OpenMP threads once per tree.
    with threadpool_limits(limits=1, user_api="openmp"):
        found = permutation_importance(
            model.named_steps["classifier"],
            encoded,
            labels.iloc[chosen],
            scoring="roc_auc",
            n_repeats=IMPORTANCE_REPEATS,
            random_state=seed,
        )
    return {
        name: {"mean": float(mean), "std": float(std)}
        for name, mean, std in zip(names, found.importances_mean, found.importances_std, strict=True)
    }


def save(model: Pipeline, roc_auc: float, explainability: dict, args: argparse.Namespace) -> None:
    args.model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.model_dir / "model.joblib")
    explained = json.dumps(explainability, indent=2, sort_keys=True, allow_nan=False)
    (args.model_dir / EXPLAINABILITY_FILE).write_text(explained + "\n")
    keys = [path.read_text() for channel in (args.train, args.validation) for path in key_files(channel)]
    if keys:
        (args.model_dir / TRAINING_KEYS_FILE).write_text("".join(keys))
    args.output_data_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.dumps({"validation_roc_auc": roc_auc}, indent=2, sort_keys=True, allow_nan=False)
    (args.output_data_dir / "metrics.json").write_text(metrics + "\n")
    print(f"saved {args.model_dir / 'model.joblib'}")


def run(
    *,
    train: Path,
    validation: Path,
    model_dir: Path,
    output_data_dir: Path,
    contract: Path,
    n_estimators: int = 100,
    max_depth: int = 3,
    learning_rate: float = 0.1,
    seed: int = 42,
) -> dict[str, float]:
    """The model fitted on `train`, saved in `model_dir` (and metrics.json in `output_data_dir`); returns
    {"validation_roc_auc"}."""
    return fit(argparse.Namespace(**locals()))


def fit(args: argparse.Namespace) -> dict[str, float]:
    contract = read_contract(args.contract)
    train_features, train_labels = read_channel(args.train, contract)
    validation_features, validation_labels = read_channel(args.validation, contract)
    if train_labels.nunique() != 2 or validation_labels.nunique() != 2:
        raise StepError(f"train and validation data must both hold both values of '{contract['label']}'")

    model = build_model(contract, args)
    model.fit(train_features, train_labels)
    roc_auc = float(roc_auc_score(validation_labels, model.predict_proba(validation_features)[:, 1]))
    print(f"validation_roc_auc={roc_auc:.6f}")
    importances = permutation_importances(model, validation_features, validation_labels, args.seed)
    check_leak(roc_auc, importances, contract)
    save(model, roc_auc, explainability_report(importances, len(validation_features), contract), args)
    return {"validation_roc_auc": roc_auc}


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
