"""How often `mlops monitor --local`'s model-quality check alarms on a model that did NOT get worse (and how often it
catches one that did), by the number of labelled requests.

    .venv/bin/python bench/monitor_false_alarms.py [--trials 200] [--tolerance 0.05] [--eval-rows 400]

Each trial draws an evaluation slice of --eval-rows rows (about the test slice of the 2000-row sample) from a fixed
score model (30 % churners; score = sigmoid(1.6 x label + N(0, 1)): ROC AUC about 0.87), derives the constraints as
training does (evaluate.py's metric values x (1 - tolerance), LessThanThreshold on auc, f1, precision, recall), then
draws n labelled requests from the same model (false alarms) or from a worse one (score = sigmoid(0.8 x label + N(0,
1)), power) and compares point values as the monitor does (evaluate.py's own metric_values). Prints, per n, the share
of runs with any violation, per metric, with 95 % Wilson intervals.
"""

from __future__ import annotations

import argparse
import importlib
import math

import numpy as np

from config import load_config

EVALUATE = importlib.import_module("pipeline_defs.steps.evaluate")
# Predicted labels at the threshold Evaluate and the monitors use: the unit's config.
THRESHOLD = load_config().model_quality_probability_threshold
PREVALENCE = 0.3
SAME, WORSE = 1.6, 0.8  # the label's effect on the score's logit: today's model, a degraded one
LABELLED_ROWS = (60, 100, 300, 1000, 3000)


def draw(rng: np.random.Generator, rows: int, effect: float) -> tuple[np.ndarray, np.ndarray]:
    labels = (rng.random(rows) < PREVALENCE).astype(int)
    labels[:2] = (0, 1)  # both classes, as the monitor requires before it compares
    return labels, 1 / (1 + np.exp(-(effect * labels + rng.normal(size=rows) - 0.8)))


def violated(rng: np.random.Generator, rows: int, effect: float, eval_rows: int, tolerance: float) -> set[str]:
    evaluated = EVALUATE.metric_values(*draw(rng, eval_rows, SAME), THRESHOLD)
    observed = EVALUATE.metric_values(*draw(rng, rows, effect), THRESHOLD)
    return {name for name in EVALUATE.MONITORED_METRICS if observed[name] < evaluated[name] * (1 - tolerance)}


def wilson(hits: int, trials: int) -> str:
    z, share = 1.96, hits / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return f"{share:6.1%} [{max(centre - spread, 0):.1%}, {min(centre + spread, 1):.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--eval-rows", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"tolerance {args.tolerance}, evaluation slice {args.eval_rows} rows, {args.trials} trials per cell")
    print(f"{'labelled':>8}  {'false alarms (same model)':<28}{'per metric':<44}{'alarms on the worse model':<28}")
    for rows in LABELLED_ROWS:
        same = [violated(rng, rows, SAME, args.eval_rows, args.tolerance) for _ in range(args.trials)]
        worse = [violated(rng, rows, WORSE, args.eval_rows, args.tolerance) for _ in range(args.trials)]
        per_metric = " ".join(
            f"{name} {sum(name in hit for hit in same) / args.trials:.0%}" for name in EVALUATE.MONITORED_METRICS
        )
        print(
            f"{rows:>8}  {wilson(sum(bool(hit) for hit in same), args.trials):<28}{per_metric:<44}"
            f"{wilson(sum(bool(hit) for hit in worse), args.trials):<28}"
        )


if __name__ == "__main__":
    main()
