"""The model-artifact contract's adapter for training_engine xgboost: XGBoost's trees, scored with numpy alone.

The contract (README, "Training engines"): a model artifact is model.tar.gz holding model.joblib, a joblib/pickle file
of an object with `feature_names_in_` (the contract's features, in its order) and `predict_proba(frame)` -> an array of
shape (rows, 2), whose second column is the churn probability; the frame holds those columns, numbers as numbers and
categories as text (missing: NaN or None). train.py saves a fitted scikit-learn Pipeline; train_xgboost.py saves a
`BoostedTrees` made from its booster's JSON model, so Evaluate, Score, the inference script and the gate - which run in
the scikit-learn image, without xgboost - read either engine's model the same way (train_xgboost.py checks on its
validation rows that this class gives the booster's own probabilities).

numpy is imported where it is used: the rest of the step library stays standard library only.
"""

from __future__ import annotations

import json
import math
from typing import Any


def encoded_columns(frame: Any, features: list[dict[str, Any]]) -> Any:
    """The features of `frame` as one float matrix, in contract order: numbers as they are, a category as its position
    in the contract's declared categories (an undeclared or missing one as NaN, XGBoost's missing value)."""
    import numpy as np
    import pandas as pd

    columns = []
    for feature in features:
        values = frame[feature["name"]]
        if feature["type"] == "category":
            positions = {category: float(index) for index, category in enumerate(feature["categories"])}
            columns.append(values.map(positions).to_numpy(dtype=float))  # unmapped (undeclared, missing): NaN
        else:
            columns.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


class BoostedTrees:
    """A binary:logistic XGBoost model's trees: the churn probability is the logistic of the base margin plus each
    tree's leaf value (XGBoost's rule: a row goes left when its value is below the split condition, a missing value
    where the node's default_left says)."""

    def __init__(self, model_json: str, features: list[dict[str, Any]]) -> None:
        learner = json.loads(model_json)["learner"]
        objective = learner["objective"]["name"]
        if objective != "binary:logistic":
            raise ValueError(f"only binary:logistic models are supported, not {objective}")
        base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        self.base_margin = math.log(base_score / (1 - base_score))
        self.features = [dict(feature) for feature in features]
        self.feature_names_in_ = [feature["name"] for feature in features]
        self.trees = [
            {
                key: tree[key]
                for key in ("left_children", "right_children", "split_indices", "split_conditions", "default_left")
            }
            for tree in learner["gradient_booster"]["model"]["trees"]
        ]

    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        # XGBoost compares in 32-bit floats: a value that equals a split condition after rounding goes right there too.
        rows = encoded_columns(frame, self.features).astype(np.float32)
        margin = np.full(len(rows), self.base_margin)
        for tree in self.trees:
            margin += _leaf_values(tree, rows)
        churn = 1 / (1 + np.exp(-margin))
        return np.column_stack([1 - churn, churn])


def _leaf_values(tree: dict[str, list[Any]], rows: Any) -> Any:
    import numpy as np

    left, right = np.asarray(tree["left_children"]), np.asarray(tree["right_children"])
    feature, condition = np.asarray(tree["split_indices"]), np.asarray(tree["split_conditions"], dtype=np.float32)
    default_left = np.asarray(tree["default_left"], dtype=bool)
    node, index = np.zeros(len(rows), dtype=int), np.arange(len(rows))
    inner = left[node] != -1
    while inner.any():
        at = node[inner]
        values = rows[index[inner], feature[at]]
        go_left = np.where(np.isnan(values), default_left[at], values < condition[at])
        node[inner] = np.where(go_left, left[at], right[at])
        inner = left[node] != -1
    return condition[node].astype(float)  # a leaf's split condition is its value
