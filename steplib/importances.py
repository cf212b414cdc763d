"""What both training engines' scripts (train.py, train_xgboost.py) share about a model's permutation importances: how
many rows and shuffles they take, the explainability report they are registered as, and the leak check that reads
them. Standard library only at import (numpy where rows are drawn).
"""

from __future__ import annotations

from typing import Any

from steplib import StepError

# Permutation importance: the validation ROC AUC's drop when one feature's values are shuffled, averaged over
# IMPORTANCE_REPEATS shuffles of at most IMPORTANCE_ROWS validation rows (a fixed seed: the same model and data give
# the same importances). The row cap bounds its cost at any data size; its spread is reported beside each mean; its
# effect on the estimate is measured in the README ("Scale and memory").
IMPORTANCE_REPEATS = 5
IMPORTANCE_ROWS = 5_000


def importance_rows(rows: int, seed: int) -> Any:  # numpy positions (numpy is imported here)
    """The positions of the validation rows the importances are measured on: all of them up to IMPORTANCE_ROWS,
    else a seeded sample of that many (without replacement, in their order)."""
    import numpy as np

    if rows <= IMPORTANCE_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=IMPORTANCE_ROWS, replace=False))


def explainability_report(
    importances: dict[str, dict[str, float]], rows: int, contract: dict[str, Any]
) -> dict[str, Any]:
    """explainability.json: the model package's Explainability report (its ModelMetrics), `mlops registry show`'s
    and `mlops report`'s feature importances."""
    return {
        "version": 1,
        "method": "permutation importance: drop of validation ROC AUC when the feature's values are shuffled",
        "label": contract["label"],
        "slice": "validation",
        "rows": min(rows, IMPORTANCE_ROWS),
        "repeats": IMPORTANCE_REPEATS,
        "permutation_importances": importances,
    }


def check_leak(roc_auc: float, importances: dict[str, dict[str, float]], contract: dict[str, Any]) -> None:
    """A validation ROC AUC at or above the contract's leak_threshold fails the step as a suspected label leak, naming
    the feature the model relies on most (the largest permutation importance): real churn is not that predictable."""
    if roc_auc >= contract["leak_threshold"]:
        name, importance = max(importances.items(), key=lambda item: item[1]["mean"])
        total = sum(max(value["mean"], 0.0) for value in importances.values())
        share = importance["mean"] / total if total > 0 else 0.0
        raise StepError(
            f"suspected label leak: validation roc_auc {roc_auc:.4f} reaches leak_threshold"
            f" {contract['leak_threshold']}; the model relies most on feature '{name}' ({share:.0%} of its"
            " permutation importance): check that it is known before the outcome"
        )
