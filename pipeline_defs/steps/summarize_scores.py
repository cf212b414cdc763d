"""Summarize-scores step: the scoring pipeline's batch transform output as a summary, and as scored rows for CheckDrift.

Inputs:  --scores-dir   the transform's output: one `<input object>.out` per input object (any name is read, in name
                        order), one record a line, no header: the input record as preprocess.py --mode score wrote it
                        (row key hash, then the contract's features in order), the model's score, and - with
                        GenerateInferenceId - the inference id and the job's start time (batch capture appends both).
         --contract     the feature contract (a file, or the folder holding the one *.json the pipeline mounts)
Outputs: --output-dir   summary/summary.json: {"rows", "mean_score", "histogram": [{"lower", "upper", "count"}] (ten
                        equal bins over [0, 1], the last one closed), "top": the --top-n rows by score (highest first,
                        ties by row key), each {"row_key", "score", "inference_id", <feature>: value}, "manifest":
                        [{"object", "rows"}] (every transform output object and its row count), "with_inference_ids"}.
                        scored/scored.csv: --score-column first, then the features, with a header: the layout of the
                        endpoint's monitor and of data_quality.py, so CheckDrift compares the scores and the features
                        with the version's registered baseline.
A record with too few columns or a score that is not a number in [0, 1] fails the step, naming its object and line.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any

# The step library: a zip in ../steplib/ in a processing job (pipeline_defs/packaging.py), installed in the repository.
sys.path[:0] = [str(path) for path in sorted(Path(__file__).resolve().parent.parent.glob("steplib/*.zip"))]
from steplib import StepError, files_in, read_contract, run_step, write_json

HISTOGRAM_BINS = 10


def read_scores(scores_dir: Path, features: list[str]) -> tuple[list[dict], list[dict]]:
    """(records, manifest): each record {"row_key", "score", "inference_id", "features": [...]} in object and line
    order; the manifest names each object below `scores_dir` with its row count."""
    records, manifest = [], []
    width = 1 + len(features) + 1  # key, features, score; then the inference id and time when generated
    for path in files_in(scores_dir, "*", "--scores-dir"):
        name = path.relative_to(scores_dir).as_posix()
        rows = 0
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row:
                    continue
                if len(row) < width:
                    expected = f"at least {width} (the key, the {len(features)} features, the score)"
                    raise StepError(f"{name} line {number}: {len(row)} columns, expected {expected}")
                records.append(
                    {
                        "row_key": row[0],
                        "features": row[1 : width - 1],
                        "score": _score(row[width - 1], f"{name} line {number}"),
                        "inference_id": row[width] if len(row) > width else None,
                    }
                )
                rows += 1
        manifest.append({"object": name, "rows": rows})
    return records, manifest


def _score(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise StepError(f"{where}: the score {text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise StepError(f"{where}: the score {value} is not a probability")
    return value


def histogram(scores: list[float], bins: int = HISTOGRAM_BINS) -> list[dict]:
    counts = [0] * bins
    for score in scores:
        counts[min(int(score * bins), bins - 1)] += 1
    return [{"lower": round(k / bins, 6), "upper": round((k + 1) / bins, 6), "count": counts[k]} for k in range(bins)]


def summary(records: list[dict], manifest: list[dict], features: list[str], top_n: int) -> dict:
    scores = [record["score"] for record in records]
    ranked = sorted(records, key=lambda record: (-record["score"], record["row_key"]))[:top_n]
    return {
        "rows": len(records),
        "mean_score": math.fsum(scores) / len(scores) if scores else 0.0,
        "histogram": histogram(scores),
        "top": [
            {"row_key": r["row_key"], "score": r["score"], "inference_id": r["inference_id"]}
            | dict(zip(features, r["features"], strict=True))
            for r in ranked
        ],
        "manifest": manifest,
        "with_inference_ids": bool(records) and all(record["inference_id"] for record in records),
    }


def write_scored(path: Path, records: list[dict], features: list[str], score_column: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([score_column, *features])
        writer.writerows([record["score"], *record["features"]] for record in records)
    print(f"wrote {len(records)} scored rows to {path}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores-dir", type=Path, required=True)
    parser.add_argument("--contract", type=Path, required=True)
    parser.add_argument("--score-column", required=True)
    parser.add_argument("--top-n", type=int, default=20)
    parser.add_argument("--output-dir", type=Path, required=True)
    return parser.parse_args(argv)


def run(*, scores_dir: Path, contract: Path, score_column: str, output_dir: Path, top_n: int = 20) -> dict[str, Any]:
    """summary/summary.json and scored/scored.csv under `output_dir`; returns the summary."""
    if top_n < 1:
        raise StepError(f"--top-n {top_n}: list at least one row")
    features = [feature["name"] for feature in read_contract(contract)["features"]]
    records, manifest = read_scores(scores_dir, features)
    if not records:
        raise StepError(f"--scores-dir: the transform output under {scores_dir} holds no record")
    document = summary(records, manifest, features, top_n)
    print(f"{document['rows']} rows scored, mean score {document['mean_score']:.4f}")
    write_json(output_dir / "summary" / "summary.json", document)
    write_scored(output_dir / "scored" / "scored.csv", records, features, score_column)
    return document


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
