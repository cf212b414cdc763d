"""Serving functions for SageMaker's scikit-learn container: churn probabilities from the model train.py saved.

model_fn(model_dir)               loads model_dir/model.joblib.
input_fn(body, content_type)      text/csv (with or without a header row; the first row is a header when every one of
                                  its cells is text, not a number) or application/json (one record object, or a list
                                  of them) -> a DataFrame.
predict_fn(data, model)           -> the churn probability of each row. Named columns are matched to the model's
                                  features (extra columns such as the label are ignored); headerless rows must have
                                  the model's features in training order.
output_fn(prediction, accept)     application/json {"churn_probability": [...]} or text/csv (one probability a line),
                                  returned with its content type.
Unsupported content types raise ValueError.
"""

from __future__ import annotations

import csv
import io
import json
import os

import joblib
import numpy as np
import pandas as pd

CSV = "text/csv"
JSON = "application/json"


def model_fn(model_dir: str):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(body: str | bytes, content_type: str | None) -> pd.DataFrame:
    media_type = media(content_type)
    if media_type not in (CSV, JSON):
        raise ValueError(f"unsupported content type '{content_type}': send {CSV} or {JSON}")
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if media_type == CSV:
        first_row = next(csv.reader(io.StringIO(text)), [])
        has_header = bool(first_row) and all(cell.strip() and not is_number(cell) for cell in first_row)
        return pd.read_csv(io.StringIO(text), header=0 if has_header else None)
    records = json.loads(text)
    records = [records] if isinstance(records, dict) else records
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise ValueError(f"{JSON} input must be a record object or a list of record objects")
    return pd.DataFrame(records)


def predict_fn(data: pd.DataFrame, model) -> np.ndarray:
    features = list(model.feature_names_in_)
    if all(isinstance(column, str) for column in data.columns):
        missing = [name for name in features if name not in data.columns]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        data = data[features]
    elif len(data.columns) == len(features):
        data = data.set_axis(features, axis="columns")
    else:
        raise ValueError(f"expected {len(features)} columns without a header ({features}), got {len(data.columns)}")
    return model.predict_proba(data)[:, 1]


def output_fn(prediction: np.ndarray, accept: str | None) -> tuple[str, str]:
    media_type = media(accept)
    if media_type in (JSON, "*/*", ""):
        return json.dumps({"churn_probability": [float(p) for p in prediction]}), JSON
    if media_type == CSV:
        return "".join(f"{float(p)}\n" for p in prediction), CSV
    raise ValueError(f"unsupported accept type '{accept}': ask for {JSON} or {CSV}")


def media(content_type: str | None) -> str:
    """The media type without parameters such as charset."""
    return (content_type or "").split(";")[0].strip().lower()


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
