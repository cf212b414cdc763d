"""Training step (SageMaker script mode): fits the churn classifier and saves it as model.joblib.

Inputs:  --train        directory of *.csv training rows      (default: $SM_CHANNEL_TRAIN)
         --validation   directory of *.csv validation rows    (default: $SM_CHANNEL_VALIDATION)
         Both have a header row and the label column `churned` (0/1); every other column is a feature: numeric
         columns are imputed with their median, the others one-hot encoded (unknown categories are ignored).
Outputs: --model-dir        model.joblib, a fitted scikit-learn Pipeline   (default: $SM_MODEL_DIR)
         --output-data-dir  metrics.json {"validation_roc_auc": float}     (default: $SM_OUTPUT_DATA_DIR)
         stdout             `validation_roc_auc=<float>`, for the training job's metric definition regex.
Hyperparameters: --n-estimators, --max-depth, --learning-rate, --seed.
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

LABEL = "churned"


class StepError(Exception):
    """Expected bad input: reported as one line on stderr with exit code 1."""


def read_channel(directory: Path) -> tuple[pd.DataFrame, pd.Series]:
    paths = sorted(path for path in directory.rglob("*.csv") if path.is_file())
    if not paths:
        raise StepError(f"no *.csv files found under {directory}")
    data = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    if LABEL not in data.columns:
        raise StepError(f"label column '{LABEL}' not found under {directory}")
    print(f"read {len(data)} rows from {directory}")
    return data.drop(columns=[LABEL]), data[LABEL]


def build_model(features: pd.DataFrame, args: argparse.Namespace) -> Pipeline:
    numeric = [name for name in features.columns if pd.api.types.is_numeric_dtype(features[name])]
    categorical = [name for name in features.columns if name not in numeric]
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
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    train_features, train_labels = read_channel(args.train)
    validation_features, validation_labels = read_channel(args.validation)
    if train_labels.nunique() != 2 or validation_labels.nunique() != 2:
        raise StepError(f"train and validation data must both contain churned and retained customers ('{LABEL}')")

    model = build_model(train_features, args)
    model.fit(train_features, train_labels)
    roc_auc = float(roc_auc_score(validation_labels, model.predict_proba(validation_features)[:, 1]))
    print(f"validation_roc_auc={roc_auc:.6f}")

    args.model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.model_dir / "model.joblib")
    args.output_data_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.dumps({"validation_roc_auc": roc_auc}, indent=2, sort_keys=True)
    (args.output_data_dir / "metrics.json").write_text(metrics + "\n")
    print(f"saved {args.model_dir / 'model.joblib'}")


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
