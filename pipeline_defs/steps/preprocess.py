"""Preprocessing step: cleans raw churn CSVs and splits them into train / validation / test sets.

Inputs:  --input-dir   every *.csv below it, recursively, in sorted order (other files such as _SUCCESS are ignored);
                       all files share one header that includes the label column `churned`.
Outputs: --output-dir  train/train.csv, validation/validation.csv, test/test.csv (header row, label `churned` 0/1).

Cleaning (identical in both modes): drop exact duplicate rows, drop rows whose label is missing or not 0/1,
coerce numeric columns (a column is numeric when at least 90% of its values parse as numbers; the rest become
missing), impute missing numbers with the column median of the cleaned input (rounded for integer columns) and
missing categories with "unknown".

--mode split     seeded, stratified train/validation/test split (--validation-fraction, --test-fraction, --seed).
--mode evaluate  writes every cleaned row to test/test.csv only (the eval-only pipeline scores new data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "churned"
NUMERIC_SHARE = 0.9
MISSING_CATEGORY = "unknown"


class StepError(Exception):
    """Expected bad input: reported as one line on stderr with exit code 1."""


def read_csvs(input_dir: Path) -> pd.DataFrame:
    paths = sorted(path for path in input_dir.rglob("*.csv") if path.is_file())
    if not paths:
        raise StepError(f"no *.csv files found under {input_dir}")
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
            raise StepError(f"cannot read {path}: {error}") from error
        if LABEL not in frame.columns:
            raise StepError(f"label column '{LABEL}' not found in {path}")
        if frames and list(frame.columns) != list(frames[0].columns):
            raise StepError(f"{path} has columns {list(frame.columns)}, expected {list(frames[0].columns)}")
        print(f"read {len(frame)} rows from {path}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    data = raw.apply(lambda column: column.str.strip())
    data = data.mask(data == "").drop_duplicates(ignore_index=True)
    print(f"dropped {len(raw) - len(data)} exact duplicate rows")

    label = pd.to_numeric(data[LABEL], errors="coerce")
    valid = label.isin([0, 1])
    print(f"dropped {int((~valid).sum())} rows with a missing or invalid label")
    data = data[valid].reset_index(drop=True)
    data[LABEL] = label[valid].astype("int64").to_numpy()
    if data.empty:
        raise StepError("no rows left after cleaning")

    for name in data.columns.drop(LABEL):
        present = data[name].notna()
        numbers = pd.to_numeric(data[name], errors="coerce")
        if numbers[present].notna().mean() >= NUMERIC_SHARE:
            data[name] = impute_median(name, numbers)
        else:
            data[name] = data[name].fillna(MISSING_CATEGORY)
    return data


def impute_median(name: str, numbers: pd.Series) -> pd.Series:
    integral = bool((numbers.dropna() % 1 == 0).all())
    median = float(numbers.median())
    missing = int(numbers.isna().sum())
    if missing:
        print(f"imputed {missing} missing values of '{name}' with its median {median}")
    if integral:
        return numbers.fillna(round(median)).astype("int64")
    return numbers.fillna(median)


def split(data: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """Stratified: each class is shuffled with the seed and cut at the same fractions; rows keep their input order."""
    if validation_fraction <= 0 or test_fraction <= 0 or validation_fraction + test_fraction >= 1:
        raise StepError("fractions must be positive and --validation-fraction + --test-fraction must be below 1")
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(data[LABEL].to_numpy() == label))
        test_end = round(len(rows) * test_fraction)
        validation_end = test_end + round(len(rows) * validation_fraction)
        if not 0 < test_end < validation_end < len(rows):
            raise StepError(f"too few rows with {LABEL}={label} ({len(rows)}) for a stratified three-way split")
        parts["test"].append(rows[:test_end])
        parts["validation"].append(rows[test_end:validation_end])
        parts["train"].append(rows[validation_end:])
    return {name: data.iloc[np.sort(np.concatenate(rows))] for name, rows in parts.items()}


def write(parts: dict[str, pd.DataFrame], output_dir: Path) -> None:
    for name, part in parts.items():
        path = output_dir / name / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(path, index=False)
        print(f"wrote {len(part)} rows ({int(part[LABEL].sum())} churned) to {path}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--mode", choices=["split", "evaluate"], default="split")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    data = clean(read_csvs(args.input_dir))
    print(f"{len(data)} clean rows")
    if args.mode == "split":
        parts = split(data, args.validation_fraction, args.test_fraction, args.seed)
    else:
        parts = {"test": data}
    write(parts, args.output_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except StepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
