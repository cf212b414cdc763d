"""steplib.boosted_trees: the model-artifact contract's adapter scores XGBoost's JSON trees as XGBoost does.

train_xgboost.py checks the adapter against the booster on every training run (tests/local/test_multi_instance.py
runs it); these tests pin the rules on a hand-written model, without xgboost.
"""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from steplib.boosted_trees import BoostedTrees

FEATURES = [
    {"name": "tenure_months", "type": "number"},
    {"name": "contract", "type": "category", "categories": ["month-to-month", "one-year", "two-year"]},
]
# One tree: tenure < 12.1 (missing: left) -> 1.0; else contract < 1 (month-to-month; missing: right) -> 0.5, else -2.
TREE = {
    "left_children": [1, -1, 3, -1, -1],
    "right_children": [2, -1, 4, -1, -1],
    "split_indices": [0, 0, 1, 0, 0],
    "split_conditions": [12.1, 1.0, 1.0, 0.5, -2.0],
    "default_left": [1, 0, 0, 0, 0],
}


def model_json(base_score: str = "5E-1", objective: str = "binary:logistic") -> str:
    learner = {
        "learner_model_param": {"base_score": base_score},
        "objective": {"name": objective},
        "gradient_booster": {"model": {"trees": [TREE, TREE]}},
    }
    return json.dumps({"learner": learner})


def sigmoid(margin: float) -> float:
    return 1 / (1 + math.exp(-margin))


def test_rows_follow_xgboosts_split_rule_missing_values_and_float32_conditions() -> None:
    model = BoostedTrees(model_json(), FEATURES)
    rows = pd.DataFrame(
        {
            "tenure_months": [3.0, None, 30.0, 30.0, 30.0, 12.1],
            "contract": ["two-year", "two-year", "month-to-month", "two-year", None, "one-year"],
        }
    )
    leaf = [1.0, 1.0, 0.5, -2.0, -2.0, -2.0]  # 12.1 equals the condition in 32-bit floats: right, as in XGBoost
    expected = [sigmoid(2 * value) for value in leaf]  # base score 0.5: margin 0, two identical trees
    probabilities = model.predict_proba(rows)
    assert probabilities[:, 1] == pytest.approx(expected)
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(len(rows)))
    assert model.feature_names_in_ == ["tenure_months", "contract"]


def test_the_base_score_is_a_probability_and_the_adapter_pickles() -> None:
    model = pickle.loads(pickle.dumps(BoostedTrees(model_json(base_score="[2.5E-1]"), FEATURES)))
    [[_, churn]] = model.predict_proba(pd.DataFrame({"tenure_months": [3.0], "contract": ["one-year"]}))
    assert churn == pytest.approx(sigmoid(math.log(0.25 / 0.75) + 2.0))


def test_another_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="only binary:logistic models are supported, not reg:squarederror"):
        BoostedTrees(model_json(objective="reg:squarederror"), FEATURES)
