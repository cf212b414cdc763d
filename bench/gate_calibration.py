"""The training gate's error rates, measured with the sample generator: false rejections and power.

    .venv/bin/python bench/gate_calibration.py [--trials 200] [--incumbents 20] [--rows 2000] [--confidence 0.95]

It runs on the step runtime (bench/on_step_runtime.py: the image's scikit-learn, as the pipeline's steps do).

Each trial draws a fresh dataset of --rows customers from the bundled sample's distribution (generate.customers, no
dirt) and runs the real step code in-process: preprocess.py (the hash split: ~20 % test rows), train.py twice on the
same split - a *same-distribution* candidate with the pipeline's hyperparameters and a *worse* candidate (--worse:
hyperparameters that make it clearly weaker) - and evaluate.py's paired DeLong comparison of each candidate with an
incumbent on the candidate's test slice, as the pipeline does. Incumbents are trained the same way on their own
datasets (--incumbents of them, used in turn). The gate rejects when the interval's lower bound exceeds
--max-regression (the pipeline's default MaxRegression 0.01).

Every model's true ROC AUC is measured on a 50,000-row population sample, so each trial's true regression is known.
Prints: the false-rejection rate of same-distribution candidates (all of them, and those whose true regression is at
most MaxRegression, which the gate must pass) against the nominal rate (1 - confidence) / 2, the power against the
worse candidates with their mean true regression, what the old point-estimate gate (regression > MaxRegression) did
on the same trials, and 95 % Wilson intervals for each rate.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from types import ModuleType
from typing import Any

import numpy as np
from on_step_runtime import run_on_step_runtime  # bench/ is this script's folder

if __name__ == "__main__":
    run_on_step_runtime()  # before the step scripts load: they must load with the image's libraries

REPO_ROOT = Path(__file__).resolve().parents[1]
STEPS = REPO_ROOT / "pipeline_defs" / "steps"

PIPELINE_HYPERPARAMETERS = ["--n-estimators", "150", "--max-depth", "3", "--learning-rate", "0.1", "--seed", "42"]
# Clearly weaker models: a few stumps instead of 150 depth-3 trees (true regressions of about 0.03 to 0.12).
WORSE_HYPERPARAMETERS = [
    "--n-estimators 8 --max-depth 1 --learning-rate 0.1 --seed 42",
    "--n-estimators 3 --max-depth 1 --learning-rate 0.1 --seed 42",
]
POPULATION_ROWS = 50_000


def script(path: Path) -> ModuleType:
    """A step script (or the sample generator) as a module: they are files shipped alone, not a package."""
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PREPROCESS, TRAIN, EVALUATE = (script(STEPS / f"{name}.py") for name in ("preprocess", "train", "evaluate"))
GENERATE = script(REPO_ROOT / "pipeline_defs" / "sample_data" / "generate.py")
CONTRACT = EVALUATE.read_contract(STEPS / "feature_contract.json")
roc_auc_score = EVALUATE.roc_auc_score  # the evaluator's own metric


def quietly(main: Any, arguments: list[object]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        code = main([str(argument) for argument in arguments])
    if code != 0:
        raise SystemExit(f"{main.__module__} {arguments} exited {code}")


def dataset(seed: int, rows: int, folder: Path, mode: str = "split") -> Path:
    """`rows` fresh customers drawn with `seed`, preprocessed (split, or all of them in test/ for mode evaluate)."""
    raw = folder / "raw"
    raw.mkdir(parents=True)
    (raw / "part-0000.csv").write_bytes(
        GENERATE.to_csv(GENERATE.customers(np.random.default_rng(seed), rows, drifted=False))
    )
    quietly(PREPROCESS.main, ["--input-dir", raw, "--output-dir", folder / "prepared", "--mode", mode])
    return folder / "prepared"


def test_slice(prepared: Path) -> tuple[Any, np.ndarray]:
    with contextlib.redirect_stdout(io.StringIO()):
        features, labels, _ = EVALUATE.load_test_data(prepared / "test", CONTRACT)
    return features, labels


def train(prepared: Path, model_dir: Path, hyperparameters: list[str]) -> Any:
    quietly(
        TRAIN.main,
        [
            *("--train", prepared / "train", "--validation", prepared / "validation", "--model-dir", model_dir),
            *("--output-data-dir", model_dir.parent / f"{model_dir.name}-output", *hyperparameters),
        ],
    )
    return EVALUATE.load_model(model_dir)[0]


def probabilities(model: Any, features: Any) -> np.ndarray:
    probabilities: np.ndarray = EVALUATE.churn_probabilities(model, features, "model")
    return probabilities


def wilson(hits: int, trials: int) -> str:
    """The rate with its 95 % Wilson score interval."""
    if trials == 0:
        return "n/a (no trials)"
    z, rate = 1.96, hits / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return f"{rate:6.1%} ({hits}/{trials}; 95% CI {max(centre - half, 0):.1%} to {min(centre + half, 1):.1%})"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--incumbents", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2000, help="customers per dataset (the bundled sample: 2,000)")
    parser.add_argument("--confidence", type=float, nargs="+", default=[0.95, 0.9, 0.99])
    parser.add_argument("--max-regression", type=float, default=0.01)
    parser.add_argument("--worse", nargs="+", default=WORSE_HYPERPARAMETERS, help="worse candidates, used in turn")
    return parser.parse_args()


@dataclass(frozen=True)
class Trial:
    true_regression: float  # on the population
    regression: float  # on the test slice
    standard_error: float
    rows: int

    def rejected(self, confidence: float, max_regression: float) -> bool:
        """The pipeline's gate: the interval's lower bound above MaxRegression."""
        return self.regression - NormalDist().inv_cdf(0.5 + confidence / 2) * self.standard_error > max_regression


def trial(
    number: int, args: argparse.Namespace, work: Path, incumbent: tuple[Any, float], population: tuple[Any, np.ndarray]
) -> dict[str, Trial]:
    features, labels = population
    prepared = dataset(50_000 + number, args.rows, work)
    test_features, test_labels = test_slice(prepared)
    model, incumbent_true = incumbent
    trials = {}
    worse = args.worse[number % len(args.worse)].split()
    for kind, hyperparameters in (("same", PIPELINE_HYPERPARAMETERS), ("worse", worse)):
        candidate = train(prepared, work / f"{kind}-model", hyperparameters)
        comparison = EVALUATE.paired_regression(
            test_labels, probabilities(model, test_features), probabilities(candidate, test_features), 0.95
        )
        trials[kind] = Trial(
            true_regression=incumbent_true - roc_auc_score(labels, probabilities(candidate, features)),
            regression=comparison["regression"],
            standard_error=comparison["standard_error"],
            rows=comparison["rows"],
        )
    return trials


def main() -> int:
    args = parse_args()
    begin = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="gate-calibration-"))
    try:
        # True ROC AUCs: on a large sample of the same distribution, through the same preprocessing.
        population = test_slice(dataset(10**6, POPULATION_ROWS, work / "population", mode="evaluate"))
        features, labels = population
        incumbents = []
        for i in range(args.incumbents):
            folder = work / f"incumbent-{i}"
            model = train(dataset(1_000 + i, args.rows, folder), folder / "model", PIPELINE_HYPERPARAMETERS)
            incumbents.append((model, roc_auc_score(labels, probabilities(model, features))))
        results: dict[str, list[Trial]] = {"same": [], "worse": []}
        for number in range(args.trials):
            outcome = trial(number, args, work / f"trial-{number}", incumbents[number % len(incumbents)], population)
            for kind, result in outcome.items():
                results[kind].append(result)
            shutil.rmtree(work / f"trial-{number}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, results, time.perf_counter() - begin)
    return 0


def rate(trials: list[Trial], rejected: Callable[[Trial], bool]) -> str:
    return wilson(sum(bool(rejected(t)) for t in trials), len(trials))


def report(args: argparse.Namespace, results: dict[str, list[Trial]], seconds: float) -> None:
    same, worse, limit = results["same"], results["worse"], args.max_regression
    within = [t for t in same if t.true_regression <= limit]
    true_same, true_worse = [t.true_regression for t in same], [t.true_regression for t in worse]
    print(f"gate calibration: {args.trials} trials, {args.rows} rows a dataset, {args.incumbents} incumbents")
    print(f"  {seconds:.0f} s; test slice {np.mean([t.rows for t in same]):.0f} rows on average; MaxRegression {limit}")
    print(
        f"  same-distribution candidates: true regression mean {np.mean(true_same):+.4f}, max {max(true_same):+.4f};"
        f" {len(within)} of {len(same)} truly within MaxRegression"
    )
    print(f"  worse candidates: true regression mean {np.mean(true_worse):+.4f}, min {min(true_worse):+.4f}")
    print(f"  old point-estimate gate (regression > {limit}):")
    print(f"    false rejections {rate(same, lambda t: t.regression > limit)}")
    print(f"    power            {rate(worse, lambda t: t.regression > limit)}")
    for confidence in args.confidence:

        def rejected(t: Trial, confidence: float = confidence) -> bool:
            return t.rejected(confidence, limit)

        print(f"  paired DeLong gate at {confidence:.0%} (nominal false-rejection rate <= {(1 - confidence) / 2:.1%}):")
        print(f"    false rejections, all same-distribution  {rate(same, rejected)}")
        print(f"    false rejections, truly within the limit {rate(within, rejected)}")
        print(f"    power, all worse candidates              {rate(worse, rejected)}")
        for low, high in ((0.02, 0.04), (0.04, 0.06), (0.06, 0.08), (0.08, 1.0)):
            band = [t for t in worse if low <= t.true_regression < high]
            label = f"true regression {low:.2f}-{high:.2f}" if high < 1 else f"true regression >= {low:.2f}"
            print(f"      {label:28} {rate(band, rejected)}")


if __name__ == "__main__":
    sys.exit(main())
