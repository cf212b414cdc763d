"""Serving functions for SageMaker's scikit-learn container: churn probabilities from the model train.py saved.

The feature contract travels in the same tarball (feature_contract.json beside this file): it fixes the order of a
headerless CSV row and the type of each feature (category values stay text even when they look like numbers).

model_fn(model_dir)               loads model_dir/model.joblib.
input_fn(body, content_type)      text/csv or application/json (one record object, or a list of them) -> a DataFrame.
                                  A CSV row is the contract's features in its order, no label; a first row whose cells
                                  all name contract columns (features, label, row key) is a header instead.
predict_fn(data, model)           -> the churn probability of each row. Named columns are matched to the contract's
                                  features (extra columns such as the label are ignored).
output_fn(prediction, accept)     application/json {"churn_probability": [...]} or text/csv (one probability a line),
                                  returned with its content type.
Unsupported content types raise ValueError.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

CSV = "text/csv"
JSON = "application/json"
CONTRACT = Path(__file__).with_name("feature_contract.json")


@functools.cache
def contract() -> dict:
    return json.loads(CONTRACT.read_text())


def feature_names() -> list[str]:
    return [feature["name"] for feature in contract()["features"]]


def categories() -> list[str]:
    return [feature["name"] for feature in contract()["features"] if feature["type"] == "category"]


def model_fn(model_dir: str):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(body: str | bytes, content_type: str | None) -> pd.DataFrame:
    media_type = media(content_type)
    if media_type not in (CSV, JSON):
        raise ValueError(f"unsupported content type '{content_type}': send {CSV} or {JSON}")
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if media_type == JSON:
        records = json.loads(text)
        records = [records] if isinstance(records, dict) else records
        if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
            raise ValueError(f"{JSON} input must be a record object or a list of record objects")
        return pd.DataFrame(records)
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    declared = {*feature_names(), *contract()["row_key"], contract()["label"]}
    if rows and all(cell.strip() in declared for cell in rows[0]):
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    else:
        header = feature_names()
        widths = sorted({len(row) for row in rows if len(row) != len(header)})
        if widths:
            raise ValueError(f"expected {len(header)} columns (the features {header} in this order), got {widths[0]}")
    # An empty cell is a missing value (None: pandas' replace("", nan) would warn about downcasting object columns).
    return pd.DataFrame([[cell if cell != "" else None for cell in row] for row in rows], columns=header)


def predict_fn(data: pd.DataFrame, model) -> np.ndarray:
    features = feature_names()
    missing = [name for name in features if name not in data.columns]
    if missing:
        raise ValueError(f"missing feature columns: {missing}")
    data = data[features].copy()
    for name in (name for name in features if name not in categories()):
        try:
            data[name] = pd.to_numeric(data[name])
        except (TypeError, ValueError) as error:
            raise ValueError(f"feature {name} must be a number: {error}") from None
    for name in categories():
        data[name] = data[name].map(lambda value: np.nan if value is None or pd.isna(value) else str(value))
    return model.predict_proba(data)[:, 1]


def output_fn(prediction: np.ndarray, accept: str | None) -> tuple[str, str]:
    media_type = media(accept)
    if media_type in (JSON, "*/*", ""):
        return json.dumps({"churn_probability": [float(p) for p in prediction]}, allow_nan=False), JSON
    if media_type == CSV:
        return "".join(f"{float(p)}\n" for p in prediction), CSV
    raise ValueError(f"unsupported accept type '{accept}': ask for {JSON} or {CSV}")


def media(content_type: str | None) -> str:
    """The media type without parameters such as charset."""
    return (content_type or "").split(";")[0].strip().lower()
