"""Candidate models for `mlops experiment run` and notebooks/try_a_candidate.ipynb.

Each function receives an execution's slices (train, validation and test DataFrames with the label column, as the
pipeline's steps read them; by key or attribute) and returns a fitted estimator with predict_proba. They stay here,
out of pipeline shape, until one has been stable for a month (README, "From notebook to pipeline").

    mlops experiment run notebooks/candidates.py:logistic --on latest --local --state-dir .local/demo
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

LABEL = "churned"
NUMBERS = ["tenure_months", "monthly_charges", "total_charges", "support_calls"]
CATEGORIES = ["contract", "payment_method", "internet_service"]


def with_charge_per_month(frame: Any) -> Any:
    """A derived feature: what the customer paid per month of tenure (total / tenure)."""
    derived = frame.copy()
    derived["charge_per_month"] = frame["total_charges"] / np.maximum(frame["tenure_months"], 1)
    return derived


def _fitted(columns: ColumnTransformer, slices: Any, derive: bool) -> Pipeline:
    steps = ([FunctionTransformer(with_charge_per_month)] if derive else []) + [
        columns,
        LogisticRegression(max_iter=500),
    ]
    model = make_pipeline(*steps)
    train = slices.train
    return model.fit(train.drop(columns=[LABEL]), train[LABEL])


def _columns(numbers: list[str]) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numbers", make_pipeline(FunctionTransformer(lambda x: x.fillna(0)), StandardScaler()), numbers),
            ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORIES),
        ]
    )


def logistic(slices: Any) -> Pipeline:
    """Another model family: a logistic regression on the contract's features (one-hot categories)."""
    return _fitted(_columns(NUMBERS), slices, derive=False)


def logistic_with_charge_per_month(slices: Any) -> Pipeline:
    """The logistic regression with one derived feature, charge_per_month."""
    return _fitted(_columns([*NUMBERS, "charge_per_month"]), slices, derive=True)
