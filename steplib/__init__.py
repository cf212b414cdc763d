"""The step scripts' small shared library: errors, the feature contract, input folders, JSON reports, the entry point.

It ships as its own content-addressed asset (pipeline_defs/packaging.py): a zip mounted at
/opt/ml/processing/input/steplib/ in every processing job, and the `steplib/` folder inside the source tarballs the
training and serving containers unpack beside their script. A change here therefore changes the cache key of exactly
the steps that use it. It runs in the step containers: Python 3.10 and the standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# What the model-quality monitor checks: a drop of any of these below its evaluated value x (1 - tolerance). Evaluate
# writes their constraints; the report pages name them (here, so a page needs no scikit-learn import to know them).
MONITORED_METRICS = ("auc", "f1", "precision", "recall")


class StepError(Exception):
    """Expected bad input: reported as one `error:` line on stderr with exit code 1."""


def files_in(directory: Path, pattern: str, what: str) -> list[Path]:
    """The files matching `pattern` anywhere under `directory`, sorted; StepError when there are none."""
    if not directory.is_dir():
        raise StepError(f"{what}: {directory} is not a folder")
    found = sorted(path for path in directory.rglob(pattern) if path.is_file())
    if not found:
        raise StepError(f"{what}: no {pattern} files found under {directory}")
    return found


def contract_file(path: Path) -> Path:
    """The feature contract's file: `path`, or the one *.json in the folder the pipeline mounts it in."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if len(files) != 1 or not files[0].is_file():
        raise StepError(f"expected one feature contract (*.json) at {path}, found {len(files)}")
    return files[0]


def read_contract(path: Path) -> dict[str, Any]:
    """The feature contract (`contract_file(path)`'s document)."""
    document: dict[str, Any] = load_json(contract_file(path), "feature contract")
    return document


def load_json(path: Path, what: str) -> Any:
    """A JSON document; StepError when the file is missing or not JSON."""
    if not path.is_file():
        raise StepError(f"{what}: {path} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StepError(f"{what}: {path} is not JSON: {error}") from None


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """A report: sorted keys, no NaN (SageMaker's JsonGet and the local runner read these files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")
    print(f"wrote {path}")


def run_step(
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[..., object],
    argv: list[str] | None = None,
) -> int:
    """A step's command-line entry point: its arguments parsed, then `run` called with them as keywords (each step's
    `run` takes its typed arguments by their command-line names, so a notebook can call it directly); expected bad
    input (StepError) and unreadable inputs or a full disk (OSError) end it with one `error:` line and exit code 1,
    never a traceback."""
    args = parse_args(argv)
    try:
        run(**vars(args))
    except (StepError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
