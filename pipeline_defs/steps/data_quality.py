"""Data-quality step: Model Monitor style baselines and drift checks, without the Model Monitor container.

Subcommands (each reads every *.csv under --data-dir recursively, sorted, and the feature contract --contract: a file,
or the folder holding the one *.json the pipeline mounts; the contract's label column is skipped). With
--score-column NAME the data's NAME column (the model's score, Fractional) is monitored first, then the contract's
features in their order: the layout in which Model Monitor's analyzer reads captured CSV traffic (output column, then
the request's columns, matched by position and named after the baseline). The pipelines pass it; names must be
lowercase letters, digits and underscores.
  baseline --data-dir DIR --contract PATH [--score-column NAME] --output-dir DIR
      statistics.json   Model Monitor data-quality statistics: {"version", "dataset": {"item_count"}, "features": [
                        {"name", "inferred_type": "Integral" | "Fractional", "numerical_statistics": {"common":
                        {"num_present", "num_missing"}, "mean", "sum", "std_dev", "min", "max", "distribution": {"kll":
                        {"buckets": [{"lower_bound", "upper_bound", "count"}], "sketch"}}}} | {"name", "inferred_type":
                        "String", "string_statistics": {"common", "distinct_count", "distribution": {"categorical":
                        {"buckets": [{"value", "count"}]}}}}]}
      constraints.json  Model Monitor constraints: {"version", "features": [{"name", "inferred_type", "completeness",
                        "num_constraints": {"is_non_negative"} | "string_constraints": {"domains"}}],
                        "monitoring_config": {...}}
  check --data-dir DIR --contract PATH [--score-column NAME] --baseline-dir DIR --output-dir DIR
      statistics.json            the statistics of the new data (same format)
      constraint_violations.json {"violations": [{"feature_name", "constraint_check_type", "description"}]}
      drift_report.json          {"violations": count, "features_checked", "max_distance", "per_feature": {name:
                                 {"inferred_type", "distance", "threshold", "drifted"}}}

The baseline covers the contract's features in its order: integer features are Integral, number features Fractional,
category features String with the declared categories as their domain. Every number written is finite (JSON without
NaN or Infinity): a feature whose statistics would not be fails the step, naming it. Numeric buckets are 10
equal-width ranges [lower, upper) from min to max (the last one includes max), counted from the sketch's weights as
the analyzer counts them; the KLL sketch is Deequ's (k = 2048, c = 0.64, deterministic compaction, values inserted in
row order, as Deequ's QuantileNonSample builds it for one partition), so its total weight is the row count.

Checks: missing_column_check / extra_column_check (features absent from / new to the data), data_type_check (share of
values not of the baseline type > datatype_check_threshold), completeness_check (completeness below the baseline's;
0 for a feature the contract declares nullable), categorical_values_check (share of values outside the baseline
domain > domain_content_threshold) and baseline_drift_check, whose distance is Deequ's (Distance.scala), the one
Model Monitor's analyzer reports. Numeric: the largest gap between the two weighted CDFs over the union of the
baseline sketch's items and the new data's sketch's items (each item weighing 2**level; the two-sample
Kolmogorov-Smirnov statistic, exact while a sketch holds every item: up to 2050 rows). Categorical (LInfinity): the
largest gap between the category shares. comparison_method "Simple" reports that gap; "Robust" subtracts the
Kolmogorov-Smirnov margin C_ALPHA * sqrt((n + m) / (n * m)) for n baseline and m new values, floored at 0, so small
samples do not raise false alarms. A sketch item that occurs several times counts with all its copies' weights (Deequ
after its fix of issue #392; older builds keep one copy's). Drift is a violation when the distance exceeds
comparison_threshold (categorical_comparison_threshold for String features).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# The step library: a zip in ../steplib/ in a processing job (pipeline_defs/packaging.py), installed in the repository.
sys.path[:0] = [str(path) for path in sorted(Path(__file__).resolve().parent.parent.glob("steplib/*.zip"))]
from steplib import StepError, files_in, load_json, read_contract, run_step, write_json

BUCKETS = 10
MONITORED_NAME = re.compile(r"[a-z][a-z0-9_]*")  # names Model Monitor's metrics and constraints accept as they are
INFERRED_TYPES = {"integer": "Integral", "number": "Fractional", "category": "String"}
KLL_PARAMETERS = {"c": 0.64, "k": 2048.0}  # as the analyzer writes them
# Deequ's default c(alpha) of the robust distance (alpha about 0.003); constraints.json carries no alpha to change it.
C_ALPHA = 1.8
COMPARISON_METHODS = ("Simple", "Robust")  # constraints.json's comparison_method: Deequ's linf_simple, linf_robust
MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 0.1,
    "domain_content_threshold": 0.1,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}


def read_features(data_dir: Path, label: str) -> pd.DataFrame:
    """Every cell but the label's as stripped text; "" is a missing value."""
    paths = files_in(data_dir, "*.csv", "--data-dir")
    data = pd.concat([read_text_csv(path) for path in paths], ignore_index=True)
    if data.empty:
        raise StepError(f"the *.csv files under {data_dir} have no rows")
    print(f"read {len(data)} rows from {len(paths)} file(s) under {data_dir}")
    return data.drop(columns=[label], errors="ignore").apply(lambda column: column.str.strip())


def read_text_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise StepError(f"cannot read {path}: {error}") from error


def numbers(cells: pd.Series) -> pd.Series:
    """The cells as finite floats; NaN where a cell is not a number."""
    parsed = pd.to_numeric(cells, errors="coerce")
    return parsed.where(np.isfinite(parsed))


def conforming(present: pd.Series, inferred_type: str) -> pd.Series:
    """Whether each present cell is a value of `inferred_type`."""
    if inferred_type == "String":
        return pd.Series(True, index=present.index)
    parsed = numbers(present)
    return parsed.notna() & (parsed % 1 == 0) if inferred_type == "Integral" else parsed.notna()


def level_capacity(level: int, k: float, c: float) -> int:
    """Deequ's capacity of compactor `level` (level 0, where items arrive, is the largest)."""
    return 2 * (math.ceil(k * c**level / 2) + 1)


def kll_levels(values: np.ndarray, k: float = KLL_PARAMETERS["k"], c: float = KLL_PARAMETERS["c"]) -> list[list[float]]:
    """Deequ's KLL sketch (QuantileNonSample) of `values` inserted in order, as the analyzer builds it for one
    partition: deterministic compaction (offsets 0, 1, 1, 0, ... per level), one compaction per overflow, an item in
    level h weighs 2**h, and the weights always add up to len(values)."""
    levels: list[list[float]] = [[]]
    compactions = [0]
    offsets = [0]
    held, capacity = 0, level_capacity(0, k, c)
    for value in values.tolist():
        levels[0].append(value)
        held += 1
        if held <= capacity:
            continue
        level = next(h for h, items in enumerate(levels) if len(items) >= level_capacity(h, k, c))
        if level == len(levels) - 1:
            levels.append([])
            compactions.append(0)
            offsets.append(0)
            capacity += level_capacity(level + 1, k, c)
        items = levels[level]
        if compactions[level] % 2:
            offsets[level] = 1 - offsets[level]
        even = len(items) - len(items) % 2
        levels[level + 1].extend(sorted(items[:even])[offsets[level] :: 2])
        levels[level] = items[even:]
        compactions[level] += 1
        held = sum(len(items) for items in levels)
    return levels


def kll(values: np.ndarray) -> dict:
    """The analyzer's `kll` block: 10 equal-width buckets from min to max, counted from the sketch's weights (the
    last bucket includes max), and the sketch itself (`data`: each level's items, level 0 first)."""
    levels = kll_levels(values)
    items, weights = sketch_items(levels)
    low, high = float(values.min()), float(values.max())
    bounds = [low + (high - low) * i / BUCKETS for i in range(BUCKETS + 1)]
    buckets = []
    for i in range(BUCKETS):
        inside = (items >= bounds[i]) & ((items <= bounds[i + 1]) if i == BUCKETS - 1 else (items < bounds[i + 1]))
        buckets.append({"lower_bound": bounds[i], "upper_bound": bounds[i + 1], "count": float(weights[inside].sum())})
    return {"buckets": buckets, "sketch": {"parameters": KLL_PARAMETERS, "data": levels}}


def feature_statistics(name: str, inferred_type: str, cells: pd.Series) -> dict:
    present = cells[cells != ""]
    common = {"num_present": len(present), "num_missing": len(cells) - len(present)}
    if inferred_type == "String":
        counts = present.value_counts().sort_index()
        return {
            "name": name,
            "inferred_type": inferred_type,
            "string_statistics": {
                "common": common,
                "distinct_count": len(counts),
                "distribution": {
                    "categorical": {"buckets": [{"value": str(v), "count": int(c)} for v, c in counts.items()]}
                },
            },
        }
    values = numbers(present).dropna().to_numpy(dtype=float)  # in row order: the sketch depends on it
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the feature
        total, spread = (float(values.sum()), float(values.std())) if len(values) else (math.nan, math.nan)
    if not (math.isfinite(total) and math.isfinite(spread)):
        raise StepError(f"feature '{name}' has no finite statistics: check its values against the feature contract")
    return {
        "name": name,
        "inferred_type": inferred_type,
        "numerical_statistics": {
            "common": common,
            "mean": total / len(values),
            "sum": total,
            "std_dev": spread,
            "min": float(values.min()),
            "max": float(values.max()),
            "distribution": {"kll": kll(values)},
        },
    }


def monitored_columns(contract: dict, score_column: str | None) -> list[tuple[str, str]]:
    """(name, inferred type) in the analyzer's order for captured CSV: the score first, then the features."""
    score = [(score_column, "Fractional")] if score_column else []
    return score + [(f["name"], INFERRED_TYPES[f["type"]]) for f in contract["features"]]


def statistics(features: pd.DataFrame, contract: dict, score_column: str | None = None) -> dict:
    """Statistics of the monitored columns that the data has, in the analyzer's order."""
    return {
        "version": 0.0,
        "dataset": {"item_count": len(features)},
        "features": [
            feature_statistics(name, inferred_type, features[name])
            for name, inferred_type in monitored_columns(contract, score_column)
            if name in features.columns
        ],
    }


def feature_constraints(feature: dict, item_count: int, declared: dict) -> dict:
    constraint = {"name": feature["name"], "inferred_type": feature["inferred_type"]}
    if feature["inferred_type"] == "String":  # a String is always a declared category (the score is Fractional)
        constraint["completeness"] = feature["string_statistics"]["common"]["num_present"] / item_count
        constraint["string_constraints"] = {"domains": list(declared["categories"])}
    else:
        numerical_statistics = feature["numerical_statistics"]
        constraint["completeness"] = numerical_statistics["common"]["num_present"] / item_count
        constraint["num_constraints"] = {"is_non_negative": numerical_statistics["min"] >= 0}
    if declared.get("nullable"):
        # The contract allows it to be missing, and the baseline slice has its missing values imputed (completeness
        # 1.0): the raw requests the monitors read would break that completeness every time they hold one.
        constraint["completeness"] = 0.0
    return constraint


def constraints(baseline_statistics: dict, contract: dict) -> dict:
    item_count = baseline_statistics["dataset"]["item_count"]
    declared = {feature["name"]: feature for feature in contract["features"]}
    return {
        "version": 0.0,
        "features": [
            feature_constraints(feature, item_count, declared.get(feature["name"], {}))
            for feature in baseline_statistics["features"]
        ],
        "monitoring_config": MONITORING_CONFIG,
    }


def sketch_items(levels: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """A KLL sketch's items and their weights: an item in level h stands for 2**h values."""
    items = np.concatenate([np.asarray(level, dtype=float) for level in levels])
    weights = np.concatenate([np.full(len(level), 2.0**h) for h, level in enumerate(levels)])
    return items, weights


def largest_cdf_gap(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> float:
    """The largest gap between the weighted empirical CDFs of two (items, weights) samples, taken at every item of
    either: the two-sample Kolmogorov-Smirnov statistic (the step functions only jump there)."""
    keys = np.union1d(first[0], second[0])

    def cdf(items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        order = np.argsort(items, kind="stable")
        cumulative = np.concatenate(([0.0], np.cumsum(weights[order])))
        return cumulative[np.searchsorted(items[order], keys, side="right")] / cumulative[-1]

    return float(np.max(np.abs(cdf(*first) - cdf(*second))))


def selected_distance(linf_simple: float, n: float, m: float, method: str) -> float:
    """Deequ's selectMetrics: "Simple" is the gap itself; "Robust" takes off the Kolmogorov-Smirnov margin for n
    and m values (an empty side has an infinite margin: distance 0, as in Deequ's floating point)."""
    if method == "Simple":
        return linf_simple
    return max(0.0, linf_simple - C_ALPHA * math.sqrt((n + m) / (n * m))) if n and m else 0.0


def numeric_distance(name: str, baseline: dict, values: np.ndarray, method: str) -> float:
    """Deequ's numerical distance between the baseline's KLL sketch and the sketch of `values` (in row order)."""
    levels = baseline.get("distribution", {}).get("kll", {}).get("sketch", {}).get("data")
    if not isinstance(levels, list) or not any(levels):
        raise StepError(
            f"the baseline of feature '{name}' has no KLL sketch (distribution.kll.sketch.data) to compare with: "
            "re-create the baseline with this step (a new training run)"
        )
    base, new = sketch_items(levels), sketch_items(kll_levels(values))
    return selected_distance(largest_cdf_gap(base, new), base[1].sum(), new[1].sum(), method)


def categorical_distance(baseline: dict, present: pd.Series, method: str) -> float:
    """Deequ's LInfinity distance between the baseline and the new category shares (a missing category has 0)."""
    buckets = baseline["distribution"]["categorical"]["buckets"]
    base_counts = {bucket["value"]: bucket["count"] for bucket in buckets}
    new_counts = present.value_counts().to_dict()
    n, m = sum(base_counts.values()), len(present)
    gap = max(
        abs((base_counts.get(v, 0) / n if n else 0.0) - new_counts.get(v, 0) / m) for v in {*base_counts, *new_counts}
    )
    return selected_distance(float(gap), n, m, method)


def drift(
    name: str, baseline: dict, inferred_type: str, valid: pd.Series, distribution: dict
) -> tuple[float, float, bool]:
    """(distance, threshold, drifted) of one feature's values of the baseline type against its baseline."""
    method = distribution["comparison_method"]
    if method not in COMPARISON_METHODS:
        raise StepError(
            f"the baseline constraints' comparison_method {method!r} is unknown: use one of {COMPARISON_METHODS}"
        )
    if inferred_type == "String":
        threshold = distribution.get("categorical_comparison_threshold", distribution["comparison_threshold"])
        distance = categorical_distance(baseline["string_statistics"], valid, method)
    else:
        threshold = distribution["comparison_threshold"]
        values = numbers(valid).to_numpy(dtype=float)  # in row order: the sketch depends on it
        distance = numeric_distance(name, baseline["numerical_statistics"], values, method)
    return distance, threshold, distance > threshold


def check(features: pd.DataFrame, baseline_statistics: dict, baseline_constraints: dict) -> tuple[list, dict]:
    """Violations in Model Monitor format, and the per-feature drift report."""
    config = baseline_constraints["monitoring_config"]
    distribution = config["distribution_constraints"]
    baseline_features = {feature["name"]: feature for feature in baseline_statistics["features"]}
    violations, report = [], {}

    def violation(name: str, check_type: str, description: str) -> None:
        violations.append({"feature_name": name, "constraint_check_type": check_type, "description": description})

    for constraint in baseline_constraints["features"]:
        name, inferred_type = constraint["name"], constraint["inferred_type"]
        if name not in features.columns:
            violation(name, "missing_column_check", f"Baseline feature '{name}' is missing from the data")
            continue
        present = features[name][features[name] != ""]
        valid = present[conforming(present, inferred_type)]
        if config["evaluate_constraints"] == "Enabled":
            wrong_type = 1 - len(valid) / len(present) if len(present) else 0.0
            if wrong_type > config["datatype_check_threshold"]:
                violation(name, "data_type_check", f"{wrong_type:.1%} of the values are not {inferred_type}")
            completeness = len(present) / len(features)
            if completeness < constraint["completeness"]:
                expected = constraint["completeness"]
                violation(name, "completeness_check", f"Completeness {completeness:.4f} is below {expected:.4f}")
            domains = constraint.get("string_constraints", {}).get("domains")
            unknown = float((~present.isin(domains)).mean()) if domains is not None and len(present) else 0.0
            if unknown > config["domain_content_threshold"]:
                violation(name, "categorical_values_check", f"{unknown:.1%} of the values are not in the baseline")

        distance, threshold, drifted = None, distribution["comparison_threshold"], False
        if distribution["perform_comparison"] == "Enabled" and len(valid):
            distance, threshold, drifted = drift(name, baseline_features[name], inferred_type, valid, distribution)
            if drifted:
                violation(name, "baseline_drift_check", f"Distance {distance:.4f} exceeds the threshold {threshold}")
        report[name] = {
            "inferred_type": inferred_type,
            "distance": distance,
            "threshold": threshold,
            "drifted": drifted,
        }

    for name in features.columns:
        if name not in baseline_features:
            violation(name, "extra_column_check", f"Feature '{name}' is not in the baseline")
    return violations, report


def drift_report(violations: list, per_feature: dict) -> dict:
    """drift_report.json: the violation count and every checked feature's distance (None: not compared)."""
    distances = [entry["distance"] for entry in per_feature.values() if entry["distance"] is not None]
    return {
        "violations": len(violations),
        "features_checked": len(per_feature),
        "max_distance": max(distances, default=0.0),
        "per_feature": per_feature,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    baseline_parser = commands.add_parser("baseline", help="compute statistics.json and constraints.json")
    baseline_parser.add_argument("--data-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    baseline_parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output/baseline"))
    check_parser = commands.add_parser("check", help="check new data against a baseline")
    check_parser.add_argument("--data-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    for command in (baseline_parser, check_parser):
        command.add_argument("--contract", type=Path, default=Path(__file__).with_name("feature_contract.json"))
        command.add_argument("--score-column", help="the model's score column, monitored first (as the analyzer)")
    check_parser.add_argument("--baseline-dir", type=Path, default=Path("/opt/ml/processing/input/baseline"))
    check_parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output/drift"))
    return parser.parse_args(argv)


def run(
    *,
    command: str,
    data_dir: Path,
    output_dir: Path,
    contract: Path,
    score_column: str | None = None,
    baseline_dir: Path | None = None,
) -> dict[str, int]:
    """`command` "baseline": statistics.json and constraints.json of the data; "check": the data against the baseline
    in `baseline_dir` (statistics.json, constraints.json, constraint_violations.json, drift_report.json). Returns
    {"rows", "violations"} (no violations for a baseline)."""
    feature_contract = read_contract(contract)
    features = read_features(data_dir, feature_contract["label"])
    columns = [name for name, _ in monitored_columns(feature_contract, score_column)]
    if command == "baseline":
        missing = [name for name in columns if name not in features.columns]
        if missing:
            raise StepError(f"column(s) {missing} of the feature contract (and score) are missing from the data")
        unnamed = [name for name in columns if not MONITORED_NAME.fullmatch(name)]
        if unnamed:
            raise StepError(f"column name(s) {unnamed}: Model Monitor needs lowercase letters, digits and underscores")
    current = statistics(features, feature_contract, score_column)
    write_json(output_dir / "statistics.json", current)
    if command == "baseline":
        write_json(output_dir / "constraints.json", constraints(current, feature_contract))
        return {"rows": len(features), "violations": 0}
    if baseline_dir is None:
        raise StepError("check needs --baseline-dir: the folder of the baseline's statistics and constraints")
    baseline_statistics = load_json(baseline_dir / "statistics.json", "baseline statistics")
    baseline_constraints = load_json(baseline_dir / "constraints.json", "baseline constraints")
    violations, report = check(features, baseline_statistics, baseline_constraints)
    write_json(output_dir / "constraint_violations.json", {"violations": violations})
    write_json(output_dir / "drift_report.json", drift_report(violations, report))
    for entry in violations:
        print(f"violation: {entry['feature_name']}: {entry['constraint_check_type']}: {entry['description']}")
    print(f"{len(violations)} violation(s) in {len(report)} checked feature(s)")
    return {"rows": len(features), "violations": len(violations)}


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
