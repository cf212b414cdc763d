"""Merge step: an endpoint's captured traffic joined with its ground truth by inference id, like Model Monitor's merge.

Inputs:  --data-dir          a labelled dataset (*.csv files, recursively) or SageMaker data capture (*.jsonl under
                             [<endpoint>/]<variant>/yyyy/mm/dd/hh/), decided by content: any *.jsonl is capture, else
                             *.csv is a dataset; both kinds, or neither, fail the step.
         --ground-truth-dir  *.jsonl files (recursively) of Model Monitor ground-truth records, one a line:
                             {"groundTruthData": {"data": "0"|"1", "encoding": "CSV"}, "eventMetadata": {"eventId":
                             "<the request's inference id>"}, "eventVersion": "0"}. Other files are ignored, so a folder
                             holding only a sentinel means "no ground truth". Read in capture mode only.
         --contract          the feature contract (a file, or the folder holding the one *.json the pipeline mounts)
         --period-end        ISO 8601 time (UTC when it has no offset); --period-hours H: records whose
                             eventMetadata.inferenceTime is in [end - H hours, end) are merged (H = 0: every record)
         --score-column      the name of the captured score in traffic.csv (default churn_probability)
Outputs: --output-dir        data/        dataset mode: every *.csv unchanged, relative paths kept. Capture mode:
                                          merged.csv: header = the contract's features in order, then its label; one
                                          row a captured request row; the label is empty where no ground truth names
                                          the request's inference id (such rows still get the data-quality check).
                             traffic/     capture mode only: traffic.csv in the analyzer's layout: the captured score,
                                          then the features in order, no label, with a header row.
                             report/      merge_report.json: {"source": "capture" | "dataset", "files", "records",
                                          "in_period", "rows", "labelled", "unlabelled", "without_inference_id",
                                          "ground_truth_records", "unmatched_ground_truth", "period": {"start", "end"}
                                          | null}. records/in_period count capture records (a dataset's rows),
                                          rows/labelled/unlabelled the rows written to merged.csv.

A request is what the endpoint accepts (inference.py): text/csv rows of the contract's features in its order, no label
(a first row naming only contract columns is a header instead), or application/json: one record object or a list of
them, by feature name. The response is the churn probability: text/csv one a line, or application/json
{"churn_probability": [...]} (a bare number or list also works); one score per request row.

The join: a ground-truth record labels every captured request whose eventMetadata.inferenceId equals its eventId.
Ground truth is matched against every capture record read (not just the period's), so labels that arrive after their
period are not "unknown"; an id no captured request carries is unmatched: counted and warned about, and when none of
the ground truth matches, the step fails (wrong ids, or the wrong folder). A labelled request must be one row.

Bad input fails the step with one `error:` line naming the file and line: a line that is not JSON or not a capture
record, a BASE64 payload (the endpoint must list text/csv and application/json in CaptureContentTypeHeader, as the
Serving stack does), a request with the wrong number of columns, a score that is not a number, a ground-truth label
that is not 0/1, an inference id labelled twice, ground truth none of which matches, no captured record (or no request
row) in the period.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

# The step library: a zip in ../steplib/ in a processing job (pipeline_defs/packaging.py), installed in the repository.
sys.path[:0] = [str(path) for path in sorted(Path(__file__).resolve().parent.parent.glob("steplib/*.zip"))]
from steplib import StepError, read_contract, run_step, write_json
from steplib.capture_format import (
    UTC,
    CapturedPayload,
    CaptureFormatError,
    CaptureRecord,
    capture_lines,
    read_ground_truth,
)

if TYPE_CHECKING:  # imported where used: `mlops` loads this module's merge, which needs no pandas until it merges
    import pandas as pd

DEFAULT_SCORE_COLUMN = "churn_probability"
BASE64_HINT = (
    "the endpoint must capture text/csv and application/json as text: list them in the endpoint config's "
    "CaptureContentTypeHeader (the Serving stack does), and send one of those content types"
)


# Requests and responses ------------------------------------------------------------------------------------------
class Contract(NamedTuple):
    """What the merge needs from the feature contract: the features in request order, the label, the row key."""

    features: tuple[str, ...]
    label: str
    row_key: tuple[str, ...] = ()

    @classmethod
    def read(cls, path: Path) -> Contract:
        """The contract file, or the one *.json in the folder the pipeline mounts it in."""
        document = read_contract(path)
        features = tuple(feature["name"] for feature in document["features"])
        return cls(features, document["label"], tuple(document.get("row_key", ())))


def request_rows(payload: CapturedPayload, contract: Contract) -> list[list[str]]:
    """The request's rows as text cells of the contract's features, in its order ("" is a missing value)."""
    if payload.encoding == "BASE64":
        raise StepError(f"the request ({payload.observed_content_type}) was captured as BASE64: {BASE64_HINT}")
    if payload.encoding == "JSON":
        return _json_rows(payload.data, contract)
    return _csv_rows(payload.data, contract)


def _csv_rows(text: str, contract: Contract) -> list[list[str]]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    declared = {*contract.features, *contract.row_key, contract.label}
    order = list(range(len(contract.features)))
    if rows and all(cell.strip() in declared for cell in rows[0]):  # a header, as inference.py reads it
        header = [cell.strip() for cell in rows.pop(0)]
        missing = [name for name in contract.features if name not in header]
        if missing:
            raise StepError(f"the request's header lacks the feature(s) {missing}")
        order = [header.index(name) for name in contract.features]
        width = len(header)
    else:
        width = len(contract.features)
    for row in rows:
        if len(row) != width:
            raise StepError(
                f"the request has {len(row)} columns: expected {width} "
                f"(the {len(contract.features)} features {', '.join(contract.features)} in the contract's order)"
            )
    return [[row[index].strip() for index in order] for row in rows]


def _json_rows(text: str, contract: Contract) -> list[list[str]]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise StepError(f"the JSON request is not JSON: {error}") from None
    records = [document] if isinstance(document, dict) else document
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise StepError("a JSON request is one record object or a list of them (feature name: value)")
    for record in records:
        missing = [name for name in contract.features if name not in record]
        if missing:
            raise StepError(f"the JSON request lacks the feature(s) {missing}")
    return [[_cell(record[name]) for name in contract.features] for record in records]


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def response_scores(payload: CapturedPayload, score_column: str) -> list[float]:
    """The churn probability of each request row."""
    if payload.encoding == "BASE64":
        raise StepError(f"the response ({payload.observed_content_type}) was captured as BASE64: {BASE64_HINT}")
    values: Any
    if payload.encoding == "JSON":
        try:
            document = json.loads(payload.data)
        except ValueError as error:
            raise StepError(f"the JSON response is not JSON: {error}") from None
        values = document.get(score_column) if isinstance(document, dict) else document
        values = values if isinstance(values, list) else [values]
    else:
        values = [row[0] for row in csv.reader(io.StringIO(payload.data)) if row]
    return [_score(value) for value in values]


def _score(value: Any) -> float:
    try:
        score = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        score = math.nan
    if not math.isfinite(score):
        raise StepError(f"the captured score {value!r} is not a number")
    return score


# The merge -------------------------------------------------------------------------------------------------------
class Period(NamedTuple):
    """[start, end) of inference times; None on a side: unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def includes(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)

    def as_json(self) -> dict[str, str | None] | None:
        if self.start is None and self.end is None:
            return None
        return {"start": _iso(self.start), "end": _iso(self.end)}

    def describe(self) -> str:
        return f"[{_iso(self.start) or 'the beginning'}, {_iso(self.end) or 'now'})"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def period_of(end: str, hours: float) -> Period:
    """The period of --period-end and --period-hours (0: every record)."""
    try:
        moment = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        raise StepError(f"--period-end {end!r} is not an ISO 8601 time such as 2026-11-29T13:00:00Z") from None
    if not 0 <= hours < math.inf:  # also refuses nan
        raise StepError(f"--period-hours {hours} must be a number of hours >= 0 (0: every record)")
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return Period(None, None) if hours == 0 else Period(moment - timedelta(hours=hours), moment)


class Merged(NamedTuple):
    """merged.csv (features + label, as text), traffic.csv (score + features) and the merge report."""

    labelled_data: pd.DataFrame
    traffic: pd.DataFrame
    report: dict[str, Any]


class _Tally:
    def __init__(self) -> None:
        self.records = self.in_period = self.without_inference_id = 0


def merge_capture(
    capture_dir: Path,
    ground_truth_dir: Path,
    contract: Contract,
    period: Period,
    score_column: str = DEFAULT_SCORE_COLUMN,
    warn: Callable[[str], None] | None = None,
) -> Merged:
    """Captured request rows of the period, their scores and (by inference id) their labels; StepError on bad input."""
    labels = read_ground_truth(ground_truth_dir)
    tally, captured_ids, files = _Tally(), set(), set()
    rows: list[list[str]] = []
    scores: list[float] = []
    for key, number, record in _checked_lines(capture_dir):
        files.add(key)
        tally.records += 1
        if record.inference_id is not None:
            captured_ids.add(record.inference_id)
        if not period.includes(record.inference_time):
            continue
        tally.in_period += 1
        tally.without_inference_id += record.inference_id is None
        try:
            request, answer = _request_and_scores(record, contract, score_column)
        except StepError as error:
            raise StepError(f"{key} line {number}: {error}") from None
        label = labels.get(record.inference_id or "", "")
        if label and len(request) != 1:
            raise StepError(
                f"{key} line {number}: inference id {record.inference_id!r} labels a request of "
                f"{len(request)} rows: label single-row requests"
            )
        rows += [[*row, label] for row in request]
        scores += answer
    if tally.in_period == 0:
        raise StepError(
            f"no captured record in the period {period.describe()}: {tally.records} record(s) in {len(files)} "
            f"file(s) under {capture_dir} are outside it"
        )
    if not rows:
        raise StepError(f"the {tally.in_period} captured request(s) in the period {period.describe()} hold no rows")
    unmatched = sorted(set(labels) - captured_ids)
    if labels and len(unmatched) == len(labels):
        raise StepError(
            f"none of the {len(labels)} ground-truth label(s) under {ground_truth_dir} names a captured inference id "
            f"(e.g. {unmatched[0]!r}): label requests by the InferenceId their callers sent"
        )
    if unmatched and warn is not None:
        warn(
            f"warning: {len(unmatched)} of {len(labels)} ground-truth label(s) name no captured inference id "
            f"(e.g. {unmatched[0]!r})"
        )
    import pandas as pd

    labelled_data = pd.DataFrame(rows, columns=[*contract.features, contract.label], dtype=str)
    traffic = pd.DataFrame({score_column: [repr(score) for score in scores]}).join(
        labelled_data[list(contract.features)]
    )
    labelled = int((labelled_data[contract.label] != "").sum())
    report = {
        "source": "capture",
        "files": len(files),
        "records": tally.records,
        "in_period": tally.in_period,
        "rows": len(labelled_data),
        "labelled": labelled,
        "unlabelled": len(labelled_data) - labelled,
        "without_inference_id": tally.without_inference_id,
        "ground_truth_records": len(labels),
        "unmatched_ground_truth": len(unmatched),
        "period": period.as_json(),
    }
    return Merged(labelled_data, traffic, report)


def _checked_lines(capture_dir: Path) -> Iterator[tuple[str, int, CaptureRecord]]:
    try:
        yield from capture_lines(capture_dir)
    except CaptureFormatError as error:
        raise StepError(str(error)) from None


def _request_and_scores(
    record: CaptureRecord, contract: Contract, score_column: str
) -> tuple[list[list[str]], list[float]]:
    if record.endpoint_input is None or record.endpoint_output is None:
        raise StepError("the record lacks endpointInput or endpointOutput: capture both Input and Output")
    request = request_rows(record.endpoint_input, contract)
    answer = response_scores(record.endpoint_output, score_column)
    if len(request) != len(answer):
        raise StepError(f"the request has {len(request)} row(s) but the response {len(answer)} score(s)")
    return request, answer


# The step --------------------------------------------------------------------------------------------------------
def source_of(data_dir: Path) -> str:
    """ "capture" or "dataset", by what the folder holds."""
    if not data_dir.is_dir():
        raise StepError(f"--data-dir {data_dir} is not a folder")
    captures = any(path.is_file() for path in data_dir.rglob("*.jsonl"))
    datasets = any(path.is_file() for path in data_dir.rglob("*.csv"))
    if captures and datasets:
        raise StepError(f"{data_dir} holds both *.jsonl (data capture) and *.csv (a dataset): give it one of them")
    if not captures and not datasets:
        raise StepError(f"{data_dir} holds neither data capture (*.jsonl) nor a dataset (*.csv)")
    return "capture" if captures else "dataset"


def copy_dataset(data_dir: Path, output: Path, contract: Contract) -> dict[str, Any]:
    """Every *.csv of the dataset, unchanged, into output/data/; the report counts its rows and labels."""
    import pandas as pd

    files = sorted(path for path in data_dir.rglob("*.csv") if path.is_file())
    rows = labelled = 0
    for path in files:
        target = output / "data" / path.relative_to(data_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
            raise StepError(f"cannot read {path}: {error}") from None
        rows += len(table)
        labelled += int((table[contract.label].str.strip() != "").sum()) if contract.label in table else 0
    print(f"copied {len(files)} dataset file(s) ({rows} rows) from {data_dir}")
    return {
        "source": "dataset",
        "files": len(files),
        "records": rows,
        "in_period": rows,
        "rows": rows,
        "labelled": labelled,
        "unlabelled": rows - labelled,
        "without_inference_id": 0,
        "ground_truth_records": 0,
        "unmatched_ground_truth": 0,
        "period": None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--ground-truth-dir", type=Path, default=Path("/opt/ml/processing/input/ground_truth"))
    parser.add_argument("--contract", type=Path, default=Path(__file__).with_name("feature_contract.json"))
    parser.add_argument("--period-end", required=True)
    parser.add_argument("--period-hours", type=float, required=True)
    parser.add_argument("--score-column", default=DEFAULT_SCORE_COLUMN)
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output/merged"))
    return parser.parse_args(argv)


def run(
    *,
    data_dir: Path,
    ground_truth_dir: Path,
    contract: Path,
    period_end: str,
    period_hours: float,
    output_dir: Path,
    score_column: str = DEFAULT_SCORE_COLUMN,
) -> dict[str, Any]:
    """data/merged.csv (labelled rows), traffic/traffic.csv and report/merge_report.json under `output_dir`; returns
    the merge report."""
    feature_contract = Contract.read(contract)
    period = period_of(period_end, period_hours)
    if source_of(data_dir) == "dataset":
        copied = copy_dataset(data_dir, output_dir, feature_contract)
        write_json(output_dir / "report" / "merge_report.json", copied)
        return copied
    if not ground_truth_dir.is_dir():
        raise StepError(f"--ground-truth-dir {ground_truth_dir} is not a folder (an empty one means no labels)")
    merged = merge_capture(
        data_dir,
        ground_truth_dir,
        feature_contract,
        period,
        score_column,
        warn=lambda line: print(line, file=sys.stderr),
    )
    for folder, name, table in (
        ("data", "merged.csv", merged.labelled_data),
        ("traffic", "traffic.csv", merged.traffic),
    ):
        (output_dir / folder).mkdir(parents=True, exist_ok=True)
        table.to_csv(output_dir / folder / name, index=False)
        print(f"wrote {output_dir / folder / name} ({len(table)} rows)")
    write_json(output_dir / "report" / "merge_report.json", merged.report)
    report = merged.report
    print(
        f"merged {report['rows']} row(s) of {report['in_period']} captured request(s) in the period: "
        f"{report['labelled']} labelled, {report['unlabelled']} not"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
