"""Experiment step (`mlops experiment run`, the notebook API's evaluate): a candidate judged by the pipeline's Evaluate.

Inputs:  --evaluate-folder  an Evaluate step as `mlops step load` wrote it: its code, inputs (test slice, incumbent,
                            contract) and arguments (loaded.json), exactly as it ran in the execution; in a
                            processing job /opt/ml/processing, where the Evaluate job's own inputs are mounted
         --loaded           that loaded.json, when it is not in --evaluate-folder
         the candidate, one of:
           --function FILE.py:NAME  called with the execution's slices (`Slices`: train, validation and test
                            DataFrames with the label column, as Train and Evaluate read them; by key or attribute);
                            returns a fitted estimator with predict_proba or the test slice's scores
             --train / --validation  the execution's Preprocess outputs (the function's train and validation slices)
           --scores FILE    a CSV of the test slice's scores (--score-column), in the test rows' order
           --model-dir DIR  a model.tar.gz or model.joblib, as Evaluate reads its candidate
Outputs: --output-dir       Evaluate's reports (evaluation.json, curves.json, model_quality.json) and
                            candidate_scores.csv

The candidate is scored here and handed to the loaded Evaluate's own `run()` as scores (its --candidate-scores), with
every other argument as the execution's Evaluate had it: the same fair rows, the same DeLong interval, the same
reports. No metric, split or test is implemented here. Scores are what crosses from the experimenter's Python to
this one: a model fitted with other library versions may not unpickle here.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

# The step library: a zip in ../steplib/ in a processing job (pipeline_defs/packaging.py), installed in the repository.
sys.path[:0] = [str(path) for path in sorted(Path(__file__).resolve().parent.parent.glob("steplib/*.zip"))]
from steplib import StepError, run_step

SCORES_FILE = "candidate_scores.csv"
SCORE_COLUMN = "churn_probability"
TRAIN_SCRIPT = Path(__file__).with_name("train.py")  # Train's reading of a slice


class Slices(dict[str, pd.DataFrame]):
    """The execution's slices: {"train", "validation", "test"} DataFrames (features and the label column)."""

    def __getattr__(self, name: str) -> pd.DataFrame:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def load_script(path: Path, name: str) -> ModuleType:
    """A step script (or an experiment file) as a module, from its file."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StepError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def experiment_function(reference: str) -> Callable[[Slices], Any]:
    """FILE.py:NAME's function; StepError when the file or the function is not there."""
    file, _, name = reference.rpartition(":")
    if not file or not name.isidentifier() or not Path(file).is_file():
        raise StepError(f"{reference}: expected FILE.py:FUNCTION naming an existing file and a function in it")
    try:
        module = load_script(Path(file), f"experiment_{Path(file).stem}")
    except Exception as error:  # the experimenter's file: any error of its import is theirs to fix
        raise StepError(f"{file} failed to import: {type(error).__name__}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise StepError(f"{file} has no function {name}")
    return function


def candidate_scores(result: Any, test: pd.DataFrame, label: str) -> np.ndarray:
    """The test slice's scores from what an experiment function returned: an estimator or scores."""
    if hasattr(result, "predict_proba"):
        features = test.drop(columns=[label])
        needed = list(getattr(result, "feature_names_in_", features.columns))
        missing = sorted(set(needed) - set(features.columns))
        if missing:
            raise StepError(f"the candidate needs columns the test slice lacks: {missing}")
        try:
            return np.asarray(result.predict_proba(features[needed]))[:, 1]
        except Exception as error:  # the experimenter's estimator: any failure is theirs to fix
            raise StepError(f"the candidate's predict_proba failed: {type(error).__name__}: {error}") from None
    try:
        scores = np.asarray(result, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        scores = None
    if scores is None or len(scores) != len(test) or np.ndim(result) != 1:
        raise StepError(
            f"the function returned {type(result).__name__}: return a fitted estimator with predict_proba, or one "
            f"score per test row ({len(test)})"
        )
    return scores


def read_slices(train_step: ModuleType, evaluate_step: ModuleType, folders: dict[str, Path], contract: dict) -> Slices:
    """The slices as the steps read them: train and validation as Train does, test as Evaluate does."""
    label, slices = contract["label"], Slices()
    for name in ("train", "validation"):
        features, labels = train_step.read_channel(folders[name], contract)
        slices[name] = features.assign(**{label: labels})
    features, labels, _ = evaluate_step.load_test_data(folders["test"], contract)
    slices["test"] = features.assign(**{label: labels})
    return slices


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluate-folder", type=Path, required=True)
    parser.add_argument("--loaded", type=Path, help="the Evaluate's loaded.json (default: in --evaluate-folder)")
    candidate = parser.add_mutually_exclusive_group(required=True)
    candidate.add_argument("--function", metavar="FILE.py:NAME")
    candidate.add_argument("--scores", type=Path)
    candidate.add_argument("--model-dir", type=Path)
    parser.add_argument("--train", type=Path)
    parser.add_argument("--validation", type=Path)
    parser.add_argument("--train-script", type=Path, default=TRAIN_SCRIPT)
    parser.add_argument("--output-dir", type=Path, required=True)
    return parser.parse_args(argv)


def run(
    *,
    evaluate_folder: Path,
    output_dir: Path,
    function: str | None = None,
    scores: Path | None = None,
    model_dir: Path | None = None,
    train: Path | None = None,
    validation: Path | None = None,
    train_script: Path = TRAIN_SCRIPT,
    loaded: Path | None = None,
) -> dict[str, Any]:
    """Evaluate's report of the candidate (see the module's description)."""
    record = json.loads((loaded or evaluate_folder / "loaded.json").read_text())
    evaluate_step = load_script(evaluate_folder / record["script"], "loaded_evaluate")
    if "candidate_scores" not in inspect.signature(evaluate_step.run).parameters:
        raise StepError(f"execution {record['execution']} ran an Evaluate that takes no candidate scores: run it again")
    # The job's arguments, parsed by the step's own parse_args; its paths are relative to the loaded folder.
    parsed = vars(evaluate_step.parse_args(record["argv"]))
    arguments = {name: evaluate_folder / value if isinstance(value, Path) else value for name, value in parsed.items()}
    output_dir.mkdir(parents=True, exist_ok=True)
    if function is not None:
        if train is None or validation is None:
            raise StepError("--function needs the execution's --train and --validation slices")
        contract = evaluate_step.read_contract(arguments["contract"])
        slices = read_slices(
            load_script(train_script, "loaded_train"),
            evaluate_step,
            {"train": train, "validation": validation, "test": arguments["test_dir"]},
            contract,
        )
        try:
            result = experiment_function(function)(slices)
        except StepError:
            raise
        except Exception as error:  # the experimenter's function: one line, not a traceback
            raise StepError(f"{function} raised {type(error).__name__}: {error}") from None
        scores = output_dir / SCORES_FILE
        pd.DataFrame({SCORE_COLUMN: candidate_scores(result, slices["test"], contract["label"])}).to_csv(
            scores, index=False
        )
    arguments |= {"output_dir": output_dir, "model_dir": model_dir, "candidate_scores": scores}
    arguments |= {"score_column": SCORE_COLUMN, "score_only": False}
    report: dict[str, Any] = evaluate_step.run(**arguments)
    return report


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
