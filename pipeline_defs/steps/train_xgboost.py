"""Training step of training_engine xgboost (SageMaker's XGBoost image, script mode, one or several instances).

Inputs, outputs, hyperparameters and the leak check are train.py's (its docstring), with these differences:
- Each instance reads its share of Preprocess's training files (the train channel is ShardedByS3Key: give it at least
  as many files as instances, e.g. preprocess_instance_count = training_instance_count) and the whole validation
  channel. The instances train one model together with XGBoost's collective (its `hist` tree method sums each
  instance's gradient histograms): the first host (`algo-1`, from SM_HOSTS / SM_CURRENT_HOST) runs the tracker the
  others connect to, at LEADER_ADDRESS_VARIABLE's host:port when set (the local runner's), else algo-1:TRACKER_PORT.
- Features: numbers as they are, a category as its position in the contract's declared categories (an undeclared or
  missing value is XGBoost's missing value), the model-artifact contract's encoding (steplib/boosted_trees.py).
- Only algo-1 writes the model folder and the metrics; the row keys of every instance's rows reach it through the
  collective, so training_row_keys.txt lists all of them.
- model.joblib is a steplib BoostedTrees (the contract's adapter: the scikit-learn image's steps and the inference
  script read it without xgboost); before it is saved, its probabilities on the validation rows are checked against
  the booster's own.
Runs on Python 3.10 with xgboost, numpy and pandas only (requirements-xgboost.txt: the image's versions).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost
from xgboost import collective
from xgboost.tracker import RabitTracker

from steplib import StepError, files_in, read_contract, run_step
from steplib.boosted_trees import BoostedTrees, encoded_columns
from steplib.importances import IMPORTANCE_REPEATS, check_leak, explainability_report, importance_rows

KEYS_FILES = "row_keys*.txt"
TRAINING_KEYS_FILE = "training_row_keys.txt"
EXPLAINABILITY_FILE = "explainability.json"
# The local runner's stand-in for algo-1's host name (pipeline_defs/local/training.py LEADER_ADDRESS_VARIABLE).
LEADER_ADDRESS_VARIABLE = "LOCAL_LEADER_ADDRESS"
TRACKER_PORT = 9099
ADAPTER_TOLERANCE = 1e-5  # the largest difference of probability between the adapter and the booster


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    channel = os.environ.get
    parser.add_argument("--train", type=Path, default=Path(channel("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")))
    parser.add_argument(
        "--validation", type=Path, default=Path(channel("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    )
    parser.add_argument("--model-dir", type=Path, default=Path(channel("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument(
        "--output-data-dir", type=Path, default=Path(channel("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    )
    parser.add_argument(
        "--contract", type=Path, default=Path(channel("SM_CHANNEL_CONTRACT", "/opt/ml/input/data/contract"))
    )
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def read_rows(directory: Path, contract: dict, required: bool) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(features, labels, row keys text) of every *.csv under `directory`; an instance's empty share is no rows."""
    paths = sorted(directory.rglob("*.csv")) if not required else files_in(directory, "*.csv", directory.name)
    names = [feature["name"] for feature in contract["features"]]
    categories = {f["name"]: str for f in contract["features"] if f["type"] == "category"}
    frames = [pd.read_csv(path, dtype=categories, keep_default_na=False, na_values=[""]) for path in paths]
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*names, contract["label"]])
    missing = [column for column in [*names, contract["label"]] if column not in data.columns]
    if missing:
        raise StepError(f"column(s) {missing} of the feature contract not found under {directory}")
    keys = "".join(path.read_text() for path in sorted(directory.rglob(KEYS_FILES)) if path.is_file())
    print(f"read {len(data)} rows from {len(paths)} file(s) in {directory}")
    return data[names], data[contract["label"]].to_numpy(dtype=float), keys


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic, tied scores counting a half."""
    order = np.argsort(scores, kind="mergesort")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def permutation_importances(
    model: BoostedTrees, features: pd.DataFrame, labels: np.ndarray, seed: int
) -> dict[str, dict[str, float]]:
    """train.py's measure: the validation ROC AUC's drop when one feature's values are shuffled, on a seeded sample of
    at most IMPORTANCE_ROWS rows (`importance_rows`), IMPORTANCE_REPEATS shuffles each."""
    chosen, rng = importance_rows(len(features), seed), np.random.default_rng(seed)
    rows, truth = features.iloc[chosen].reset_index(drop=True), labels[chosen]
    baseline = roc_auc(truth, model.predict_proba(rows)[:, 1])
    found = {}
    for name in model.feature_names_in_:
        drops = []
        for _ in range(IMPORTANCE_REPEATS):
            shuffled = rows.copy()
            shuffled[name] = rows[name].to_numpy()[rng.permutation(len(rows))]
            drops.append(baseline - roc_auc(truth, model.predict_proba(shuffled)[:, 1]))
        found[name] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
    return found


def tracker_address(hosts: list[str]) -> tuple[str, int]:
    configured = os.environ.get(LEADER_ADDRESS_VARIABLE)
    host, port = configured.rsplit(":", 1) if configured else (hosts[0], str(TRACKER_PORT))
    return socket.gethostbyname(host), int(port)


def fit(train: xgboost.DMatrix, args: argparse.Namespace) -> xgboost.Booster:
    parameters = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": args.max_depth,
        "eta": args.learning_rate,
        "seed": args.seed,
        "nthread": os.cpu_count() or 1,
    }
    return xgboost.train(parameters, train, num_boost_round=args.n_estimators)


def gathered_keys(keys: str, rank: int, world: int) -> str:
    """Every instance's row keys, in rank order (one broadcast from each instance)."""
    return "".join(collective.broadcast(keys if rank == sender else None, sender) for sender in range(world))


def train_everywhere(args: argparse.Namespace, contract: dict) -> tuple[xgboost.Booster, str, bool]:
    """(the booster, every instance's training row keys, whether this instance saves) on one instance or several."""
    hosts = json.loads(os.environ.get("SM_HOSTS", '["algo-1"]'))
    current = os.environ.get("SM_CURRENT_HOST", hosts[0])
    features, labels, keys = read_rows(args.train, contract, required=len(hosts) == 1)
    train = xgboost.DMatrix(encoded_columns(features, contract["features"]), label=labels, missing=np.nan)
    if len(hosts) == 1:
        return fit(train, args), keys, True
    rank, (address, port) = hosts.index(current), tracker_address(hosts)
    tracker = None
    if rank == 0:
        tracker = RabitTracker(n_workers=len(hosts), host_ip=address, port=port, sortby="task")
        tracker.start()
    print(f"{current}: instance {rank + 1} of {len(hosts)}, tracker {address}:{port}")
    with collective.CommunicatorContext(dmlc_tracker_uri=address, dmlc_tracker_port=port, dmlc_task_id=str(rank)):
        booster = fit(train, args)
        everyone = gathered_keys(keys, rank, len(hosts))
    if tracker is not None:
        tracker.wait_for()
    return booster, everyone, rank == 0


def run(
    *,
    train: Path,
    validation: Path,
    model_dir: Path,
    output_data_dir: Path,
    contract: Path,
    n_estimators: int = 100,
    max_depth: int = 3,
    learning_rate: float = 0.1,
    seed: int = 42,
) -> dict[str, float]:
    """This instance's part of the model (algo-1 saves it in `model_dir`, with metrics.json in `output_data_dir`);
    returns {"validation_roc_auc"} on algo-1, {} on the others."""
    return fit_everywhere(argparse.Namespace(**locals()))


def fit_everywhere(args: argparse.Namespace) -> dict[str, float]:
    contract = read_contract(args.contract)
    booster, keys, saves = train_everywhere(args, contract)
    if not saves:
        print("trained; algo-1 saves the model")
        return {}
    features, labels, validation_keys = read_rows(args.validation, contract, required=True)
    if len(np.unique(labels)) != 2:
        raise StepError(f"validation data must hold both values of '{contract['label']}'")
    model = BoostedTrees(bytes(booster.save_raw(raw_format="json")).decode(), contract["features"])
    probabilities = model.predict_proba(features)[:, 1]
    booster_probabilities = booster.predict(xgboost.DMatrix(encoded_columns(features, contract["features"])))
    difference = float(np.max(np.abs(probabilities - booster_probabilities), initial=0.0))
    if difference > ADAPTER_TOLERANCE:
        raise StepError(f"the model-artifact adapter differs from the booster by {difference:.2g} on validation rows")
    auc = roc_auc(labels, probabilities)
    print(f"validation_roc_auc={auc:.6f}")
    importances = permutation_importances(model, features, labels, args.seed)
    check_leak(auc, importances, contract)
    save(model, auc, importances, keys + validation_keys, len(features), contract, args)
    return {"validation_roc_auc": auc}


def save(
    model: BoostedTrees,
    auc: float,
    importances: dict[str, dict[str, float]],
    keys: str,
    rows: int,
    contract: dict,
    args: argparse.Namespace,
) -> None:
    args.model_dir.mkdir(parents=True, exist_ok=True)
    with open(args.model_dir / "model.joblib", "wb") as out:  # joblib.load reads a plain pickle
        pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
    explained = explainability_report(importances, rows, contract)
    (args.model_dir / EXPLAINABILITY_FILE).write_text(
        json.dumps(explained, indent=2, sort_keys=True, allow_nan=False) + "\n"
    )
    if keys:
        (args.model_dir / TRAINING_KEYS_FILE).write_text(keys)
    args.output_data_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.dumps({"validation_roc_auc": auc}, indent=2, sort_keys=True, allow_nan=False)
    (args.output_data_dir / "metrics.json").write_text(metrics + "\n")
    print(f"saved {args.model_dir / 'model.joblib'}")


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
