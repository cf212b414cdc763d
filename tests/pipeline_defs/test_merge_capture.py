"""The merge step: captured requests joined with ground truth by inference id, in the contract's column order; a
dataset passes through; every bad input ends in one `error:` line naming the file and line, exit code 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mlops.capture
import pipeline_defs.steps.merge_capture as merge
import steplib.capture_format as capture_format
from mlops.capture import record
from mlops.ground_truth import ground_truth_record
from pipeline_defs.packaging import STEPS_DIR

CONTRACT = STEPS_DIR / "feature_contract.json"
FEATURES = [feature["name"] for feature in json.loads(CONTRACT.read_text())["features"]]
LABEL = json.loads(CONTRACT.read_text())["label"]
ROW = ["9", "43.19", "396.64", "month-to-month", "electronic-check", "none", "2"]
OTHER_ROW = ["23", "22.79", "512.53", "one-year", "bank-transfer", "dsl", "0"]
END = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
CSV = "text/csv"


def csv_capture(
    row: list[str], score: str, when: datetime, inference_id: str | None = None, content_type: str = CSV
) -> dict[str, Any]:
    return record(((",".join(row)).encode(), content_type), (f"{score}\n".encode(), CSV), when, inference_id)


def write_capture(root: Path, *records: dict[str, Any]) -> None:
    """Each record into <root>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/ of its inference time, as SageMaker does."""
    for line in records:
        when = datetime.strptime(line["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
        folder = root / "churn-dev-endpoint" / "AllTraffic" / f"{when:%Y/%m/%d/%H}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "00-00-000-test.jsonl").open("a") as file:
            file.write(json.dumps(line) + "\n")


def write_labels(root: Path, labels: dict[str, str], name: str = "labels.jsonl") -> None:
    folder = root / "2026" / "11" / "29" / "14"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(ground_truth_record(inference_id, label)) for inference_id, label in labels.items()]
    (folder / name).write_text("".join(f"{line}\n" for line in lines))


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("capture", "truth", "out")}
    paths["capture"].mkdir()
    paths["truth"].mkdir()
    return paths


def run(folders: dict[str, Path], hours: float = 0, end: datetime = END) -> int:
    return merge.main(
        [
            *("--data-dir", str(folders["capture"]), "--ground-truth-dir", str(folders["truth"])),
            *("--contract", str(CONTRACT), "--period-end", end.strftime("%Y-%m-%dT%H:%M:%SZ")),
            *("--period-hours", str(hours), "--output-dir", str(folders["out"])),
        ]
    )


def report(folders: dict[str, Path]) -> dict[str, Any]:
    return json.loads((folders["out"] / "report" / "merge_report.json").read_text())


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# Capture mode ------------------------------------------------------------------------------------------------------
def test_captured_requests_are_joined_with_their_labels_in_the_contracts_column_order(folders) -> None:
    write_capture(
        folders["capture"],
        csv_capture(ROW, "0.81", END - timedelta(minutes=50), "req-1"),
        csv_capture(OTHER_ROW, "0.12", END - timedelta(minutes=40), "req-2"),
        csv_capture(OTHER_ROW, "0.2", END - timedelta(minutes=30)),
    )
    write_labels(folders["truth"], {"req-2": "0"})
    (folders["truth"] / "_SUCCESS").write_text("")  # not *.jsonl: ignored

    assert run(folders) == 0

    merged = read(folders["out"] / "data" / "merged.csv")
    assert list(merged.columns) == [*FEATURES, LABEL]
    assert merged.values.tolist() == [[*ROW, ""], [*OTHER_ROW, "0"], [*OTHER_ROW, ""]]
    traffic = read(folders["out"] / "traffic" / "traffic.csv")
    assert list(traffic.columns) == ["churn_probability", *FEATURES]  # the analyzer's layout: output first, no label
    assert traffic["churn_probability"].astype(float).tolist() == [0.81, 0.12, 0.2]
    assert traffic[FEATURES].values.tolist() == [ROW, OTHER_ROW, OTHER_ROW]
    assert report(folders) == {
        "source": "capture",
        "files": 1,
        "records": 3,
        "in_period": 3,
        "rows": 3,
        "labelled": 1,
        "unlabelled": 2,
        "without_inference_id": 1,
        "ground_truth_records": 1,
        "unmatched_ground_truth": 0,
        "period": None,
    }


def test_only_records_inferred_in_the_period_are_merged_the_end_excluded(folders) -> None:
    write_capture(
        folders["capture"],
        csv_capture(ROW, "0.1", END - timedelta(hours=2)),
        csv_capture(ROW, "0.2", END - timedelta(minutes=59)),
        csv_capture(ROW, "0.3", END),
    )

    assert run(folders, hours=1) == 0

    assert read(folders["out"] / "traffic" / "traffic.csv")["churn_probability"].tolist() == ["0.2"]
    assert report(folders)["records"] == 3 and report(folders)["in_period"] == 1
    assert report(folders)["period"] == {"start": "2026-11-29T12:00:00Z", "end": "2026-11-29T13:00:00Z"}


def test_json_requests_by_feature_name_and_json_responses_are_merged(folders) -> None:
    typed = [23, 22.79, 512.53, "one-year", "bank-transfer", "dsl", 0]  # JSON numbers are read as their text
    records = [dict(zip(reversed(FEATURES), reversed(ROW), strict=True)), dict(zip(FEATURES, typed, strict=True))]
    body = json.dumps(records)
    answer = json.dumps({"churn_probability": [0.7, 0.3]})
    line = record((body.encode(), "application/json"), (answer.encode(), "application/json"), END - timedelta(1))

    write_capture(folders["capture"], line)

    assert run(folders) == 0
    traffic = read(folders["out"] / "traffic" / "traffic.csv")
    assert traffic.values.tolist() == [["0.7", *ROW], ["0.3", *OTHER_ROW]]


def test_ground_truth_partly_unmatched_is_counted_and_warned_about(folders, capsys) -> None:
    write_capture(folders["capture"], csv_capture(ROW, "0.5", END - timedelta(minutes=5), "req-1"))
    write_labels(folders["truth"], {"req-1": "1", "nobody": "0"})

    assert run(folders) == 0

    assert (
        "warning: 1 of 2 ground-truth label(s) name no captured inference id (e.g. 'nobody')" in capsys.readouterr().err
    )
    assert (report(folders)["labelled"], report(folders)["unmatched_ground_truth"]) == (1, 1)


def test_mlops_and_the_merge_step_parse_captures_with_the_step_librarys_one_parser() -> None:
    assert mlops.capture.parse_record is capture_format.parse_record
    assert mlops.capture.read_capture is capture_format.read_capture
    assert merge.capture_lines is capture_format.capture_lines


# Dataset mode ------------------------------------------------------------------------------------------------------
def test_a_labelled_dataset_is_copied_unchanged(folders) -> None:
    nested = folders["capture"] / "part" / "a.csv"
    nested.parent.mkdir()
    nested.write_text(",".join([*FEATURES, LABEL]) + "\n" + ",".join([*ROW, "1"]) + "\n" + ",".join([*ROW, ""]) + "\n")

    assert run(folders) == 0

    assert (folders["out"] / "data" / "part" / "a.csv").read_bytes() == nested.read_bytes()
    assert not (folders["out"] / "traffic").exists()
    assert report(folders) | {"period": None} == {
        "source": "dataset",
        "files": 1,
        "records": 2,
        "in_period": 2,
        "rows": 2,
        "labelled": 1,
        "unlabelled": 1,
        "without_inference_id": 0,
        "ground_truth_records": 0,
        "unmatched_ground_truth": 0,
        "period": None,
    }


# Bad input ---------------------------------------------------------------------------------------------------------
WHEN = END - timedelta(minutes=10)
KEY = "churn-dev-endpoint/AllTraffic/2026/11/29/12/00-00-000-test.jsonl line 1"


def _base64_request() -> dict[str, Any]:
    return csv_capture(ROW, "0.5", WHEN, content_type="application/x-custom")


def _wrong_columns() -> dict[str, Any]:
    return csv_capture(ROW[:-1], "0.5", WHEN)


def _text_score() -> dict[str, Any]:
    return csv_capture(ROW, "high", WHEN)


def _not_capture() -> dict[str, Any]:
    line = csv_capture(ROW, "0.5", WHEN)
    del line["eventVersion"]
    return line


@pytest.mark.parametrize(
    ("capture", "labels", "message"),
    [
        (_base64_request, {}, f"{KEY}: the request (application/x-custom) was captured as BASE64: the endpoint must"),
        (_base64_request, {}, "CaptureContentTypeHeader"),
        (_wrong_columns, {}, f"{KEY}: the request has 6 columns: expected 7 (the 7 features tenure_months, "),
        (_text_score, {}, f"{KEY}: the captured score 'high' is not a number"),
        (_not_capture, {}, f"{KEY}: record: missing ['eventVersion']"),
        (
            lambda: record((b"", CSV), (b"", CSV), WHEN),
            {},
            "the 1 captured request(s) in the period [2026-11-29T12:00:00Z, 2026-11-29T13:00:00Z) hold no rows",
        ),
        (lambda: csv_capture(ROW, "0.5", WHEN, "r1"), {"r1": "2"}, "labels.jsonl line 1: label '2' is not 0 or 1"),
        (
            lambda: csv_capture(ROW, "0.5", WHEN, "r1"),
            {"x-1": "1", "x-2": "0"},
            "none of the 2 ground-truth label(s) under",
        ),
        (lambda: csv_capture(ROW, "0.5", WHEN, "r1"), {"x-1": "1"}, "names a captured inference id (e.g. 'x-1')"),
        (
            lambda: csv_capture(ROW, "0.5", END - timedelta(hours=3)),
            {},
            "no captured record in the period [2026-11-29T12:00:00Z, 2026-11-29T13:00:00Z): 1 record(s) in 1 file(s)",
        ),
    ],
)
def test_bad_input_is_one_error_line_naming_where(folders, capsys, capture, labels, message) -> None:
    write_capture(folders["capture"], capture())
    write_labels(folders["truth"], labels)

    assert run(folders, hours=1) == 1

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (folders["out"] / "report").exists()


def test_a_line_that_is_not_json_and_an_id_labelled_twice_are_named(folders, capsys) -> None:
    write_capture(folders["capture"], csv_capture(ROW, "0.5", WHEN, "r1"))
    write_labels(folders["truth"], {"r1": "1"}, name="a.jsonl")
    write_labels(folders["truth"], {"r1": "0"}, name="b.jsonl")
    assert run(folders) == 1
    assert (
        "b.jsonl line 1: inference id 'r1' is already labelled (2026/11/29/14/a.jsonl line 1)"
        in capsys.readouterr().err
    )

    (folders["truth"] / "2026" / "11" / "29" / "14" / "b.jsonl").unlink()
    capture_file = next(folders["capture"].rglob("*.jsonl"))
    capture_file.write_text(capture_file.read_text() + "{not json\n")
    assert run(folders) == 1
    assert "00-00-000-test.jsonl line 2: not a JSON line" in capsys.readouterr().err

    (folders["truth"] / "latin1.jsonl").write_bytes(b"\xff\n")
    assert run(folders) == 1
    assert "error: latin1.jsonl: not UTF-8 text" in capsys.readouterr().err


def test_a_folder_with_both_kinds_or_neither_is_refused(folders, capsys) -> None:
    assert run(folders) == 1
    assert "holds neither data capture (*.jsonl) nor a dataset (*.csv)" in capsys.readouterr().err
    write_capture(folders["capture"], csv_capture(ROW, "0.5", WHEN))
    (folders["capture"] / "data.csv").write_text("a\n1\n")
    assert run(folders) == 1
    assert "holds both *.jsonl (data capture) and *.csv (a dataset)" in capsys.readouterr().err
