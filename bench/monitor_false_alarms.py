"""How often `mlops monitor --local`'s model-quality check alarms on a model that did NOT get worse (and how often it
catches one that did), by the number of labelled requests. Runs on the step runtime (bench/on_step_runtime.py).

    .venv/bin/python bench/monitor_false_alarms.py [--trials 200] [--tolerance 0.15] [--eval-rows 400] [--point]

Each trial draws an evaluation slice of --eval-rows rows (about the test slice of the 2000-row sample) from a fixed
score model (30 % churners; score = sigmoid(1.6 x label + N(0, 1)): ROC AUC about 0.87), derives the registered
statistics and constraints as training does (evaluate.py's model_quality, and its metric values x (1 - tolerance),
LessThanThreshold on auc, f1, precision, recall), then draws n labelled requests from the same model (false alarms)
or from a worse one (score = sigmoid(0.8 x label + N(0, 1)): ROC AUC about 0.72; power) and checks them as the
monitor does (evaluate.py `quality_alarms`): the AUC alarms when the one-sided lower bound at the unit's
confidence_level of its drop from the registered AUC is above 0 (variance of both samples: DeLong's for the traffic,
Hanley-McNeil's for the slice); f1, precision and recall when their whole two-sided interval is below their threshold.
--point compares the point values with the thresholds instead, as Model Monitor's schedules do. Prints, per n, the
share of runs with any alarm (the false-alarm rate on the same model, the power on the worse one), per metric, with
95 % Wilson intervals. The eval-only pipeline's health check applies the AUC's test alone (evaluate.py `drop_test`,
the same `auc_drop`): its rates are the auc line's.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from types import ModuleType

import numpy as np
from on_step_runtime import on_step_runtime, run_on_step_runtime  # bench/ is this script's folder

PREVALENCE = 0.3
SAME, WORSE = 1.6, 0.8  # the label's effect on the score's logit: today's model, a degraded one
LABELLED_ROWS = (60, 100, 300, 1000, 3000)


def draw(rng: np.random.Generator, rows: int, effect: float) -> tuple[np.ndarray, np.ndarray]:
    labels = (rng.random(rows) < PREVALENCE).astype(int)
    labels[:2] = (0, 1)  # both classes, as the monitor requires before it compares
    return labels, 1 / (1 + np.exp(-(effect * labels + rng.normal(size=rows) - 0.8)))


def violated(
    evaluate: ModuleType, rng: np.random.Generator, rows: int, effect: float, args: argparse.Namespace
) -> set[str]:
    evaluated = evaluate.model_quality(*draw(rng, args.eval_rows, SAME), args.threshold)
    constraints = evaluate.model_quality_constraints(evaluated, args.tolerance)
    labels, scores = draw(rng, rows, effect)
    observed = evaluate.metric_values(labels, scores, args.threshold)
    if args.point:
        limits = constraints["binary_classification_constraints"]
        return {name for name in evaluate.MONITORED_METRICS if observed[name] < limits[name]["threshold"]}
    return set(evaluate.quality_alarms(labels, scores, args.threshold, args.confidence, constraints, evaluated))


def wilson(hits: int, trials: int) -> str:
    z, share = 1.96, hits / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return f"{share:6.1%} [{max(centre - spread, 0):.1%}, {min(centre + spread, 1):.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--tolerance", type=float, help="default: the unit's model_quality_tolerance")
    parser.add_argument("--eval-rows", type=int, default=400)
    parser.add_argument("--point", action="store_true", help="compare point values (Model Monitor's schedules)")
    # Predicted labels at the threshold Evaluate and the monitors use, intervals at their level: the unit's config,
    # read before the script moves to the step runtime (which cannot import config).
    parser.add_argument("--threshold", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--confidence", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not on_step_runtime():
        from config import load_config

        config = load_config()
        unit = ["--threshold", str(config.model_quality_probability_threshold)]
        unit += ["--confidence", str(config.confidence_level)]
        tolerance = args.tolerance if args.tolerance is not None else config.model_quality_tolerance
        run_on_step_runtime([*sys.argv[1:], *unit, "--tolerance", str(tolerance)])
    evaluate = importlib.import_module("pipeline_defs.steps.evaluate")
    rng = np.random.default_rng(0)
    check = (
        "point values against the thresholds (Model Monitor's way)"
        if args.point
        else f"auc: one-sided {args.confidence:.0%} lower bound of its drop from the registered AUC > 0 (both samples'"
        f" errors); f1, precision, recall: whole {args.confidence:.0%} interval below the threshold"
    )
    print(f"check: {check}")
    print(f"tolerance {args.tolerance}, evaluation slice {args.eval_rows} rows, {args.trials} trials per cell")
    print(f"{'labelled':>8}  {'false alarm rate (same model)':<30}{'per metric':<44}{'power (worse model)':<28}")
    for rows in LABELLED_ROWS:
        same = [violated(evaluate, rng, rows, SAME, args) for _ in range(args.trials)]
        worse = [violated(evaluate, rng, rows, WORSE, args) for _ in range(args.trials)]
        per_metric = " ".join(
            f"{name} {sum(name in hit for hit in same) / args.trials:.0%}" for name in evaluate.MONITORED_METRICS
        )
        print(
            f"{rows:>8}  {wilson(sum(bool(hit) for hit in same), args.trials):<30}{per_metric:<44}"
            f"{wilson(sum(bool(hit) for hit in worse), args.trials):<28}"
        )


if __name__ == "__main__":
    main()
