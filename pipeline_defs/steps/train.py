"""Training step (SageMaker script mode): fits the churn classifier and saves it as model.joblib.

Inputs:  --train        directory of *.csv training rows      (default: $SM_CHANNEL_TRAIN)
         --validation   directory of *.csv validation rows    (default: $SM_CHANNEL_VALIDATION)
         --contract     the feature contract: a file, or the folder holding the one *.json
                        (default: $SM_CHANNEL_CONTRACT, else feature_contract.json beside this script)
         Both data folders hold preprocess.py's output: a header row, the contract's features and label (0/1), and
         row_keys.txt (one *.csv and row_keys-<host>.txt per instance of a sharded Preprocess). The contract's
         number and integer features are imputed with their median, its category features one-hot encoded
         (categories unseen in training are ignored); nothing else is a feature.
Outputs: --model-dir        model.joblib, a fitted scikit-learn Pipeline    (default: $SM_MODEL_DIR)
                            training_row_keys.txt: the row key hashes of every train and validation row, so an
                            evaluation can count the test rows this model was trained on
         --output-data-dir  metrics.json {"validation_roc_auc": float}     (default: $SM_OUTPUT_DATA_DIR)
         stdout             `validation_roc_auc=<float>`, for the training job's metric definition regex.
Hyperparameters: --n-estimators, --max-depth, --learning-rate, --seed.

A validation ROC AUC at or above the contract's leak_threshold fails the step as a suspected label leak, naming the
feature the model relies on most: real churn is not that predictable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

# The step library: steplib/ beside this script in its source tarball (pipeline_defs/packaging.py), installed in the
# repository.
from steplib import StepError, files_in, read_contract, run_step

# preprocess.py's row key files: row_keys.txt, or row_keys-<host>.txt from each instance of a sharded run.
KEYS_FILES = "row_keys*.txt"
TRAINING_KEYS_FILE = "training_row_keys.txt"


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
    categorical = [f["name"] for f in contract["features"] if f["type"] == "category"]
    print(f"numeric features: {numeric}; categorical features: {categorical}")
    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="unknown")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    columns = ColumnTransformer(
        [("numeric", SimpleImputer(strategy="median"), numeric), ("categorical", encode, categorical)]
    )
    classifier = GradientBoostingClassifier(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
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


def strongest_feature(model: Pipeline, contract: dict) -> tuple[str, float]:
    """The contract feature the fitted model relies on most, with its share of the model's feature importance."""
    importances = dict.fromkeys((feature["name"] for feature in contract["features"]), 0.0)
    columns = model.named_steps["columns"].get_feature_names_out()
    for column, importance in zip(columns, model.named_steps["classifier"].feature_importances_, strict=True):
        name = max((n for n in importances if column.split("__", 1)[1].startswith(n)), key=len)
        importances[name] += float(importance)
    return max(importances.items(), key=lambda item: item[1])


def check_leak(roc_auc: float, model: Pipeline, contract: dict) -> None:
    if roc_auc >= contract["leak_threshold"]:
        name, share = strongest_feature(model, contract)
        raise StepError(
            f"suspected label leak: validation roc_auc {roc_auc:.4f} reaches leak_threshold"
            f" {contract['leak_threshold']}; the model relies most on feature '{name}' ({share:.0%} of its"
            " importance): check that it is known before the outcome"
        )


def save(model: Pipeline, roc_auc: float, args: argparse.Namespace) -> None:
    args.model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.model_dir / "model.joblib")
    keys = [path.read_text() for channel in (args.train, args.validation) for path in key_files(channel)]
    if keys:
        (args.model_dir / TRAINING_KEYS_FILE).write_text("".join(keys))
    args.output_data_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.dumps({"validation_roc_auc": roc_auc}, indent=2, sort_keys=True, allow_nan=False)
    (args.output_data_dir / "metrics.json").write_text(metrics + "\n")
    print(f"saved {args.model_dir / 'model.joblib'}")


def run(args: argparse.Namespace) -> None:
    contract = read_contract(args.contract)
    train_features, train_labels = read_channel(args.train, contract)
    validation_features, validation_labels = read_channel(args.validation, contract)
    if train_labels.nunique() != 2 or validation_labels.nunique() != 2:
        raise StepError(f"train and validation data must both hold both values of '{contract['label']}'")

    model = build_model(contract, args)
    model.fit(train_features, train_labels)
    roc_auc = float(roc_auc_score(validation_labels, model.predict_proba(validation_features)[:, 1]))
    print(f"validation_roc_auc={roc_auc:.6f}")
    check_leak(roc_auc, model, contract)
    save(model, roc_auc, args)


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
