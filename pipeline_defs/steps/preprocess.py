"""Preprocessing step: enforces the feature contract on raw CSVs and splits them into train / validation / test sets.

Inputs:  --input-dir   every *.csv below it, recursively, in sorted order (other files such as _SUCCESS are ignored);
                       all files share one header that includes the contract's label column.
         --contract    the feature contract (a file, or the folder holding the one *.json the pipeline mounts)
Outputs: --output-dir  train/train.csv, validation/validation.csv, test/test.csv: the contract's features in its
                       order, then the label (0/1); beside each, row_keys.txt: the row key hash of each row, in order.
                       report/preprocess_report.json: what was dropped and why, the split, the leak check.

Several instances (the job's InstanceCount > 1, its data input ShardedByS3Key): SageMaker gives each instance a share
of the input objects and writes /opt/ml/config/resourceconfig.json ({"current_host": "algo-2", "hosts": [...]}).
Each instance then names its files after its host - train/train-algo-2.csv, train/row_keys-algo-2.txt,
report/preprocess_report-algo-2.json - so that the instances' uploads to the same S3 prefix never overwrite each
other; a reader takes the union of the *.csv files of a split (and pairs `<split>-<host>.csv` with
`row_keys-<host>.txt`). An instance whose shard holds no file writes only its report. With one instance the names
are the ones above. Every check below then holds per instance, over its shard only: duplicates are dropped within a
shard (a row repeated in two files of different shards is kept twice), the invalid-row share and the both-labels check
of each split are per shard, the leak check scores each shard's rows, and imputed medians are each shard's.
The split itself does not depend on the sharding: it is a function of each row's key alone.

Enforcing the contract (identical in both modes), in this order:
- a declared column (feature, label, row key) missing from the header fails the step; undeclared columns are dropped
  and reported: nothing undeclared is ever trained on;
- exact duplicate rows (over the declared columns) are dropped;
- a value that is not of its feature's type (text in a number column, 2.5 in an integer column, an undeclared
  category), non-finite (nan, inf, 1e309), outside the declared [min, max], or missing in a non-nullable feature
  breaks the contract, and so does a label that is not 0/1 (a missing label too, except in evaluate mode): the
  contract's `invalid_values` policy then drops its row (`drop_row`, failing when more than `max_share` of the rows
  would go, naming each column and its offending row count) or fails at once (`fail`);
- missing values of nullable features are imputed: numbers with the median of the clean rows (rounded for integer
  features), categories with "unknown".

--mode split     each row goes to test, validation or train by a stable hash of its row key (the contract's
                 `row_key` columns; all its features when there are none): the first 64 bits of SHA-256 of the key's
                 text, as a fraction of 2**64, below --test-fraction is test, below --test-fraction +
                 --validation-fraction validation, else train. A row therefore keeps its split in every dataset it
                 appears in (cumulative snapshots), so a model is never scored on rows an earlier model was
                 trained on. Then the leak check: a feature whose values alone rank the label with a ROC AUC (or
                 1 - ROC AUC) of at least the contract's `leak_threshold` fails the step as a suspected leak.
--mode evaluate  writes every clean row to test/test.csv (the eval-only pipeline scores new data). Here a row
                 with an EMPTY label is kept with its label empty (captured traffic nobody has labelled yet: it is
                 scored and drift-checked, and left out of the quality metrics); an invalid label still drops it.
--mode score     the scoring pipeline's batch transform input: the label column is optional (a customer list has
                 none; a present label is checked as in evaluate mode, then left out), and every clean row is written
                 WITHOUT a header as its row key hash (16 hex digits), then the features in contract order, into
                 --shards files score/score[-<host>]-<k>.csv (row k of the shard by key hash, so a batch transform's
                 instances each get whole files). The key travels through the transform (its InputFilter drops it
                 before the model, its JoinSource puts it back), so every score names its input row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The step library: a zip in ../steplib/ in a processing job (pipeline_defs/packaging.py), installed in the repository.
sys.path[:0] = [str(path) for path in sorted(Path(__file__).resolve().parent.parent.glob("steplib/*.zip"))]
from steplib import StepError, contract_file, files_in, load_json, run_step, write_json

MISSING_CATEGORY = "unknown"
FEATURE_TYPES = ("integer", "number", "category")
POLICIES = ("drop_row", "fail")
NAN_TEXTS = ("nan", "+nan", "-nan")
KEY_SEPARATOR = "\x1f"  # the ASCII unit separator: never part of a CSV cell's text
KEY_BLOCK_ROWS = 65_536  # rows whose key text is built at once: ~5 MiB of Python strings, whatever the dataset's size
# Where SageMaker tells a processing container its host name and all hosts of the job; the local runner, which has no
# /opt/ml, names its copy of the file in LOCAL_RESOURCE_CONFIG.
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")
RESOURCE_CONFIG_VARIABLE = "LOCAL_RESOURCE_CONFIG"


def checked_contract(path: Path) -> dict:
    """The feature contract, checked: every later step relies on the shape this step accepted."""
    file = contract_file(path)
    contract = load_json(file, "feature contract")
    try:
        check_contract(contract)
    except (TypeError, KeyError, ValueError) as error:
        raise StepError(f"feature contract {file.name} is invalid: {error}") from error
    return contract


def check_contract(contract: dict) -> None:
    features = contract["features"]
    names = [feature["name"] for feature in features]
    if not features or len(set(names)) != len(names) or contract["label"] in names:
        raise ValueError("features must be a non-empty list of unique names, the label not among them")
    for feature in features:
        check_feature(feature)
    if not all(isinstance(column, str) for column in contract["row_key"]):
        raise ValueError("row_key must be a list of column names ([] for the whole row)")
    policy = contract["invalid_values"]
    if policy["policy"] not in POLICIES or not 0 <= policy["max_share"] <= 1:
        raise ValueError(f"invalid_values needs a policy of {POLICIES} and 0 <= max_share <= 1")
    if not 0.5 < contract["leak_threshold"] <= 1:
        raise ValueError("leak_threshold must be above 0.5 and at most 1")


def check_feature(feature: dict) -> None:
    name, kind = feature["name"], feature["type"]
    if kind not in FEATURE_TYPES or not isinstance(feature["nullable"], bool):
        raise ValueError(f"feature {name}: type must be one of {FEATURE_TYPES} and nullable true or false")
    if kind == "category" and not (feature["categories"] and all(isinstance(c, str) for c in feature["categories"])):
        raise ValueError(f"feature {name}: a category feature needs a non-empty list of categories")
    low, high = feature.get("min", -math.inf), feature.get("max", math.inf)
    if kind != "category" and not low <= high:
        raise ValueError(f"feature {name}: min must not exceed max")


def declared_columns(contract: dict) -> list[str]:
    features = [feature["name"] for feature in contract["features"]]
    keys = [column for column in contract["row_key"] if column not in features]
    return [*features, *keys, contract["label"]]


# Reading and cleaning --------------------------------------------------------------------------------------------
def read_csvs(input_dir: Path, label: str, *, label_optional: bool = False) -> pd.DataFrame:
    """Every CSV under `input_dir`, one frame; the label column must be there unless `label_optional` (then a missing
    one reads as empty: no row is labelled)."""
    paths = files_in(input_dir, "*.csv", "--input-dir")
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
            raise StepError(f"cannot read {path}: {error}") from error
        except UnicodeDecodeError as error:
            raise StepError(f"{path} is not UTF-8 text ({error.reason}): save it as UTF-8") from error
        if label not in frame.columns:
            if not label_optional:
                raise StepError(f"label column '{label}' not found in {path}")
            frame[label] = ""
        if frames and list(frame.columns) != list(frames[0].columns):
            raise StepError(f"{path} has columns {list(frame.columns)}, expected {list(frames[0].columns)}")
        print(f"read {len(frame)} rows from {path}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def declared_only(raw: pd.DataFrame, contract: dict, report: dict) -> pd.DataFrame:
    """The declared columns in contract order; a missing one fails, undeclared ones are dropped and reported."""
    declared = declared_columns(contract)
    missing = [column for column in declared if column not in raw.columns]
    if missing:
        raise StepError(f"column(s) {missing} of the feature contract are missing from the data ({len(raw)} rows)")
    report["unknown_columns_dropped"] = [column for column in raw.columns if column not in declared]
    if report["unknown_columns_dropped"]:
        print(f"dropped columns the feature contract does not declare: {report['unknown_columns_dropped']}")
    return raw[declared]


def deduplicated(data: pd.DataFrame, report: dict) -> pd.DataFrame:
    before = len(data)
    data = data.drop_duplicates(ignore_index=True)
    report["duplicate_rows_dropped"] = before - len(data)
    print(f"dropped {report['duplicate_rows_dropped']} exact duplicate rows")
    return data


def label_as_feature(label: str, *, keep_unlabelled: bool) -> dict:
    """The label, checked as a feature is: an integer in [0, 1], missing only where unlabelled rows are kept. Its
    invalid rows count against the `invalid_values` policy with the features' (80 % of the labels invalid once left a
    fifth of the rows to train on, silently)."""
    return {"name": label, "type": "integer", "min": 0, "max": 1, "nullable": keep_unlabelled}


def labelled(data: pd.DataFrame, label: str, report: dict, *, keep_unlabelled: bool) -> pd.DataFrame:
    """The label as integers 0/1 (`enforce` left no other); with `keep_unlabelled`, missing ones stay, counted."""
    values = pd.to_numeric(data[label])
    if keep_unlabelled:
        report["unlabelled_rows"] = int(values.isna().sum())
    data[label] = values.astype("Int64" if keep_unlabelled else "int64").to_numpy()
    return data


def problems(feature: dict, cells: pd.Series) -> pd.Series:
    """Per row, how its cell breaks the feature's contract ("" when it does not): a categorical, one byte a row."""
    present = cells.notna()
    checks: list[tuple[str, pd.Series]] = []  # (reason, rows it applies to); a later check overrides an earlier one
    if feature["type"] == "category":
        checks.append(("not a declared category", present & ~cells.isin(feature["categories"])))
    else:
        values = pd.to_numeric(cells, errors="coerce")
        finite = present & np.isfinite(values)
        low, high = feature.get("min", -math.inf), feature.get("max", math.inf)
        checks.append(("not a number", present & values.isna()))
        checks.append(("non-finite", present & (np.isinf(values) | cells.str.lower().isin(NAN_TEXTS))))
        if feature["type"] == "integer":
            checks.append(("not an integer", finite & (values % 1 != 0)))
        checks.append((f"outside [{low}, {high}]", finite & ((values < low) | (values > high))))
    if not feature["nullable"]:
        checks.append(("missing (not nullable)", ~present))
    codes = np.zeros(len(cells), dtype=np.int8)
    for number, (_, rows) in enumerate(checks, start=1):
        codes[np.asarray(rows, dtype=bool)] = number
    reasons = pd.Categorical.from_codes(codes, categories=["", *(reason for reason, _ in checks)])
    return pd.Series(reasons, index=cells.index)


def enforce(data: pd.DataFrame, contract: dict, report: dict, *, keep_unlabelled: bool) -> pd.DataFrame:
    """Rows whose values or label break the contract, handled by its invalid_values policy."""
    label = label_as_feature(contract["label"], keep_unlabelled=keep_unlabelled)
    checked = [*contract["features"], label]
    reasons = {feature["name"]: problems(feature, data[feature["name"]]) for feature in checked}
    report["invalid_label_rows_dropped"] = int((reasons[label["name"]].cat.codes != 0).sum())
    counts = {
        name: {reason: int(count) for reason, count in sorted(found.value_counts().items()) if reason and count}
        for name, found in reasons.items()
    }
    report["invalid_values"] = {name: found for name, found in counts.items() if found}
    invalid = np.zeros(len(data), dtype=bool)
    for found in reasons.values():
        invalid |= found.cat.codes.to_numpy() != 0
    policy, share = contract["invalid_values"], float(invalid.mean()) if len(data) else 0.0
    details = "; ".join(
        f"{name}: {count} rows {reason}"
        for name, found in report["invalid_values"].items()
        for reason, count in found.items()
    )
    if invalid.any() and (policy["policy"] == "fail" or share > policy["max_share"]):
        allowed = "none allowed (policy fail)" if policy["policy"] == "fail" else f"max_share {policy['max_share']:.1%}"
        raise StepError(
            f"{int(invalid.sum())} of {len(data)} rows ({share:.1%}) break the feature contract, {allowed}: {details}"
        )
    report["invalid_rows_dropped"] = int(invalid.sum())
    print(f"dropped {report['invalid_rows_dropped']} rows that break the feature contract: {details or 'none'}")
    return data[~invalid].reset_index(drop=True)


def row_keys(data: pd.DataFrame, contract: dict) -> np.ndarray:
    """The first 64 bits of SHA-256 of each row key's text (its key columns, else its features, joined by
    KEY_SEPARATOR), as unsigned integers: 8 bytes a row, written out as 16 hex digits."""
    key_columns = [data[column] for column in contract["row_key"] or [f["name"] for f in contract["features"]]]
    keys = np.empty(len(data), dtype=np.uint64)
    for start in range(0, len(data), KEY_BLOCK_ROWS):  # the key texts exist as Python strings one block at a time
        cells = [column.iloc[start : start + KEY_BLOCK_ROWS].fillna("").astype(str).tolist() for column in key_columns]
        for offset, row in enumerate(zip(*cells, strict=True)):
            digest = hashlib.sha256(KEY_SEPARATOR.join(row).encode("utf-8")).digest()
            keys[start + offset] = int.from_bytes(digest[:8], "big")
    return keys


def typed(data: pd.DataFrame, contract: dict, report: dict) -> pd.DataFrame:
    """Features in their declared types, missing values of nullable features imputed; then the label."""
    columns, report["imputed"] = {}, {}
    for feature in contract["features"]:
        name, cells = feature["name"], data[feature["name"]]
        missing = int(cells.isna().sum())
        if feature["type"] == "category":
            columns[name], fill = cells.fillna(MISSING_CATEGORY), MISSING_CATEGORY
        else:
            values = pd.to_numeric(cells)
            fill = float(values.median()) if missing < len(values) else 0.0
            if feature["type"] == "integer":
                fill = round(fill)
            columns[name] = values.fillna(fill).astype("int64" if feature["type"] == "integer" else "float64")
        if missing:
            report["imputed"][name] = {"rows": missing, "value": fill}
            print(f"imputed {missing} missing values of '{name}' with {fill}")
    columns[contract["label"]] = data[contract["label"]]
    return pd.DataFrame(columns)


def clean(
    raw: pd.DataFrame, contract: dict, report: dict, *, keep_unlabelled: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """(clean rows, their row keys).

    The text is cleaned column by column in place, and each intermediate frame is dropped as soon as the next exists:
    at most one text copy of the data and one of a column are alive at a time (memory: README, "Scale and memory").
    """
    report["rows_read"] = len(raw)
    data = declared_only(raw, contract, report)
    del raw  # the caller keeps no reference: undeclared columns are freed now, declared ones as they are replaced
    for column in data.columns:  # surrounding whitespace is not part of a value; an empty cell is a missing value
        text = data[column].str.strip()
        data[column] = text.mask(text == "")
    # One call after the other, not nested: each frame is gone as soon as the next exists.
    data = deduplicated(data, report)
    data = enforce(data, contract, report, keep_unlabelled=keep_unlabelled)
    data = labelled(data, contract["label"], report, keep_unlabelled=keep_unlabelled)
    if data.empty:
        raise StepError("no rows left after cleaning")
    keys = row_keys(data, contract)
    return typed(data, contract, report), keys


# Splitting and the leak check ------------------------------------------------------------------------------------
def split(
    data: pd.DataFrame, keys: np.ndarray, label: str, validation_fraction: float, test_fraction: float
) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """{part: (rows, keys)} by the stable hash of each row key; rows keep their input order."""
    if validation_fraction <= 0 or test_fraction <= 0 or validation_fraction + test_fraction >= 1:
        raise StepError("fractions must be positive and --validation-fraction + --test-fraction must be below 1")
    position = keys / 2.0**64  # as a fraction of 2**64: float64, rounded as int(key, 16) / 2**64 rounds
    parts = {
        "test": position < test_fraction,
        "validation": (position >= test_fraction) & (position < test_fraction + validation_fraction),
        "train": position >= test_fraction + validation_fraction,
    }
    for name, member in parts.items():
        if set(data[label][member]) != {0, 1}:
            raise StepError(f"the {name} split has {int(member.sum())} rows, not both values of '{label}': more data")
    return {name: (data[member], keys[member]) for name, member in parts.items()}


def roc_auc(labels: pd.Series, scores: pd.Series) -> float:
    """ROC AUC as the Mann-Whitney U statistic over average ranks: scikit-learn's roc_auc_score, ties included (a test
    compares the two). Computed with pandas because importing sklearn.metrics costs this step ~1.6 s a run."""
    positive = labels.to_numpy() == 1
    positives, negatives = int(positive.sum()), int((~positive).sum())
    if positives == 0 or negatives == 0 or scores.isna().any():
        raise StepError("a single-feature ROC AUC needs both label values and no missing score")
    ranks = scores.rank(method="average").to_numpy()
    return float((ranks[positive].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def single_feature_roc_auc(values: pd.Series, labels: pd.Series) -> float:
    """How well the feature alone ranks the label: max(AUC, 1 - AUC); a category scores by its label rate."""
    if not pd.api.types.is_numeric_dtype(values):
        values = values.map(labels.groupby(values).mean())
    auc = roc_auc(labels, values)
    return max(auc, 1.0 - auc)


def check_leaks(data: pd.DataFrame, contract: dict, report: dict) -> None:
    labels, threshold = data[contract["label"]], contract["leak_threshold"]
    scores = {f["name"]: single_feature_roc_auc(data[f["name"]], labels) for f in contract["features"]}
    report["single_feature_roc_auc"] = scores
    name, best = max(scores.items(), key=lambda item: item[1])
    print(f"strongest single feature: '{name}' (roc_auc {best:.4f}; leak_threshold {threshold})")
    if best >= threshold:
        raise StepError(
            f"suspected label leak: feature '{name}' alone predicts '{contract['label']}' with roc_auc {best:.4f}"
            f" (leak_threshold {threshold}); remove it from the data or the feature contract"
        )


# Output ----------------------------------------------------------------------------------------------------------
def this_instance() -> tuple[str, int]:
    """(this instance's host name, how many instances run the job), from the job's resource config."""
    path = Path(os.environ.get(RESOURCE_CONFIG_VARIABLE, RESOURCE_CONFIG))
    if not path.is_file():  # not a SageMaker container (a developer's run): one instance
        return "algo-1", 1
    try:
        config = json.loads(path.read_text())
        host, hosts = config["current_host"], config["hosts"]
        if host not in hosts:
            raise ValueError(f"current_host {host!r} is not one of the hosts {hosts}")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise StepError(f"cannot read this instance's host from {path}: {error}") from error
    return host, len(hosts)


def file_suffix(host: str, hosts: int) -> str:
    """What makes this instance's file names unique among the job's instances ("" when it runs alone)."""
    return f"-{host}" if hosts > 1 else ""


def write(
    parts: dict[str, tuple[pd.DataFrame, np.ndarray]], label: str, output_dir: Path, report: dict, suffix: str = ""
) -> None:
    report["rows_written"] = {}
    for name, (part, keys) in parts.items():
        path = output_dir / name / f"{name}{suffix}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(path, index=False)
        (path.parent / f"row_keys{suffix}.txt").write_text("".join(f"{key:016x}\n" for key in keys.tolist()))
        report["rows_written"][name] = len(part)
        print(f"wrote {len(part)} rows ({int(part[label].sum())} with {label}=1) to {path}")
    write_json(output_dir / "report" / f"preprocess_report{suffix}.json", report)


def write_scoring_input(
    data: pd.DataFrame, keys: np.ndarray, contract: dict, output_dir: Path, report: dict, shards: int, suffix: str = ""
) -> None:
    """score/score<suffix>-<k>.csv, k < `shards`: key hash, then the features; no header (one record a line)."""
    if shards < 1:
        raise StepError(f"--shards {shards}: use 1 or more (one file per transform instance)")
    features = data[[feature["name"] for feature in contract["features"]]].copy()
    features.insert(0, "row_key", [f"{key:016x}" for key in keys.tolist()])
    folder = output_dir / "score"
    folder.mkdir(parents=True, exist_ok=True)
    shard_of = keys % np.uint64(shards)
    report["rows_written"] = {"score": len(features)}
    for shard in range(shards):
        rows = features[shard_of == shard]
        path = folder / f"score{suffix}-{shard:04d}.csv"
        rows.to_csv(path, index=False, header=False)
        print(f"wrote {len(rows)} rows to {path}")
    write_json(output_dir / "report" / f"preprocess_report{suffix}.json", report)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--contract", type=Path, default=Path(__file__).with_name("feature_contract.json"))
    parser.add_argument("--mode", choices=["split", "evaluate", "score"], default="split")
    parser.add_argument("--shards", type=int, default=1, help="score mode: files to write (transform instances)")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    return parser.parse_args(argv)


def run(
    *,
    input_dir: Path,
    output_dir: Path,
    contract: Path,
    mode: str = "split",
    shards: int = 1,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> dict[str, Any]:
    """The cleaned slices (`mode`: split, evaluate or score) under `output_dir` and its report; returns the report."""
    feature_contract = checked_contract(contract)
    host, hosts = this_instance()
    report: dict = {"contract_version": feature_contract.get("version"), "mode": mode, "instance": [host, hosts]}
    if hosts > 1 and not any(path.is_file() for path in input_dir.rglob("*.csv")):
        print(f"{host}: no input file in this instance's shard of the data")
        write_json(output_dir / "report" / f"preprocess_report{file_suffix(host, hosts)}.json", report)
        return report
    keep_unlabelled = mode in ("evaluate", "score")
    data, keys = clean(
        read_csvs(input_dir, feature_contract["label"], label_optional=mode == "score"),
        feature_contract,
        report,
        keep_unlabelled=keep_unlabelled,
    )
    print(f"{len(data)} clean rows")
    if mode == "score":
        write_scoring_input(data, keys, feature_contract, output_dir, report, shards, file_suffix(host, hosts))
        return report
    if mode == "split":
        parts = split(data, keys, feature_contract["label"], validation_fraction, test_fraction)
        report["split"] = {
            "row_key": feature_contract["row_key"] or "all features",
            "test_fraction": test_fraction,
            "validation_fraction": validation_fraction,
        }
        check_leaks(data, feature_contract, report)
    else:
        parts = {"test": (data, keys)}
    write(parts, feature_contract["label"], output_dir, report, file_suffix(host, hosts))
    return report


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
