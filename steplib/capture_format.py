"""SageMaker's data capture and Model Monitor's ground-truth formats: reading them, record by record.

Shared by the merge step (steps/merge_capture.py), the local endpoint's capture writer and `mlops monitor`
(mlops/capture.py), so every reader and the writer agree on one definition of the format.

A capture file is `[<endpoint>/]<variant>/yyyy/mm/dd/hh/<name>.jsonl` below the data-capture prefix, one record a line:
{"captureData": {"endpointInput"?, "endpointOutput"?: {"observedContentType", "mode", "data", "encoding"}},
 "eventMetadata": {"eventId", "inferenceTime" (UTC, ...Z), "inferenceId"?}, "eventVersion": "0"}.
A last line that is not yet JSON and not yet ended by a newline is a record still being written: it is left for the
next read instead of failing it (a complete record without a final newline is still read).

A ground-truth file is *.jsonl, one record a line: {"groundTruthData": {"data": "0"|"1", "encoding": "CSV"},
"eventMetadata": {"eventId": "<the request's inference id>"}, "eventVersion": "0"}.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from steplib import StepError

UTC = timezone.utc  # noqa: UP017 - runs on the scikit-learn container's older Python
ENCODINGS = ("CSV", "JSON", "BASE64")
EVENT_VERSION = "0"
LABELS = ("0", "1")
LABEL_ENCODING = "CSV"
_KEY_LAYOUT = "<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl"
# The folder may be the data-capture prefix (keys start with the endpoint) or one endpoint's folder (with the variant).
_KEY = re.compile(r"(?:(?P<endpoint>[^/]+)/)?(?P<variant>[^/]+)/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/[^/]+\.jsonl")


class CaptureFormatError(ValueError):
    """A capture file or record that is not in SageMaker's data capture format."""


class CapturedPayload(NamedTuple):
    observed_content_type: str
    mode: str  # INPUT or OUTPUT
    data: str
    encoding: str  # CSV, JSON or BASE64

    def content(self) -> bytes:
        """The payload as the endpoint received or sent it."""
        return base64.b64decode(self.data) if self.encoding == "BASE64" else self.data.encode("utf-8")


class CaptureRecord(NamedTuple):
    endpoint_input: CapturedPayload | None
    endpoint_output: CapturedPayload | None
    event_id: str
    inference_time: datetime
    inference_id: str | None
    event_version: str


def parse_record(line: str | bytes | Mapping[str, Any]) -> CaptureRecord:
    """One data capture record (a JSON line or its parsed object); CaptureFormatError says what is wrong."""
    document = line if isinstance(line, Mapping) else _json(line)
    _keys(document, "record", required={"captureData", "eventMetadata", "eventVersion"})
    capture = document["captureData"]
    _keys(capture, "captureData", optional={"endpointInput", "endpointOutput"})
    if not capture:
        raise CaptureFormatError("captureData holds neither endpointInput nor endpointOutput")
    metadata = document["eventMetadata"]
    _keys(metadata, "eventMetadata", required={"eventId", "inferenceTime"}, optional={"inferenceId"})
    event_id, inference_id = metadata["eventId"], metadata.get("inferenceId")
    if not isinstance(event_id, str) or not event_id:
        raise CaptureFormatError(f"eventMetadata.eventId must be a non-empty string, got {event_id!r}")
    if inference_id is not None and not (isinstance(inference_id, str) and 1 <= len(inference_id) <= 64):
        raise CaptureFormatError(f"eventMetadata.inferenceId must be 1-64 characters, got {inference_id!r}")
    if document["eventVersion"] != EVENT_VERSION:
        raise CaptureFormatError(f"eventVersion must be {EVENT_VERSION!r}, got {document['eventVersion']!r}")
    return CaptureRecord(
        endpoint_input=_payload(capture, "endpointInput", "INPUT"),
        endpoint_output=_payload(capture, "endpointOutput", "OUTPUT"),
        event_id=event_id,
        inference_time=_time(metadata["inferenceTime"]),
        inference_id=inference_id,
        event_version=document["eventVersion"],
    )


def capture_lines(root: Path) -> Iterator[tuple[str, int, CaptureRecord]]:
    """(key below `root`, line number, record) of every capture file under `root`, in file and line order.

    Each key must be `[<endpoint>/]<variant>/yyyy/mm/dd/hh/<name>.jsonl`, and each record's inferenceTime in that hour.
    """
    for path in sorted(root.rglob("*.jsonl")):
        key = path.relative_to(root).as_posix()
        layout = _KEY.fullmatch(key)
        if layout is None:
            raise CaptureFormatError(f"{key}: not {_KEY_LAYOUT} (or <variant>/... below one endpoint's folder)")
        for number, line in enumerate(_complete_lines(path, key), start=1):
            if not line.strip():
                continue
            try:
                parsed = parse_record(line)
            except CaptureFormatError as error:
                raise CaptureFormatError(f"{key} line {number}: {error}") from None
            if parsed.inference_time.strftime("%Y/%m/%d/%H") != layout["hour"]:
                raise CaptureFormatError(f"{key} line {number}: inferenceTime {parsed.inference_time} not in its hour")
            yield key, number, parsed


def read_capture(root: Path) -> list[tuple[str, CaptureRecord]]:
    """(key below `root`, record) of every capture file under `root` (a data-capture prefix), in file and line order."""
    return [(key, record) for key, _, record in capture_lines(root)]


def _complete_lines(path: Path, key: str) -> list[str]:
    """The file's lines, less a last line still being written: one not ended by a newline that is not yet JSON (the
    local endpoint appends while `mlops monitor` reads). A complete last record without a newline stays."""
    data = path.read_bytes()
    complete, _, last = data.rpartition(b"\n") if not data.endswith(b"\n") else (data, b"", b"")
    lines = _decoded(complete, key, CaptureFormatError).splitlines()
    if last.strip():
        try:
            json.loads(last.decode("utf-8"))
        except ValueError:  # also a multi-byte character cut in two (UnicodeDecodeError is a ValueError)
            return lines
        lines.append(last.decode("utf-8"))
    return lines


def _text(path: Path, key: str, error: type[Exception]) -> str:
    return _decoded(path.read_bytes(), key, error)


def _decoded(data: bytes, key: str, error: type[Exception]) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{key}: not UTF-8 text") from None


def _json(line: str | bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError as error:
        raise CaptureFormatError(f"not a JSON line: {error}") from None


def _keys(
    value: Any, where: str, required: AbstractSet[str] = frozenset(), optional: AbstractSet[str] = frozenset()
) -> None:
    if not isinstance(value, Mapping):
        raise CaptureFormatError(f"{where} must be an object, got {type(value).__name__}")
    missing, unknown = required - value.keys(), value.keys() - required - optional
    if missing or unknown:
        raise CaptureFormatError(f"{where}: missing {sorted(missing)}, unexpected {sorted(unknown)}")


def _payload(capture: Mapping[str, Any], name: str, mode: str) -> CapturedPayload | None:
    if name not in capture:
        return None
    value = capture[name]
    _keys(value, name, required={"observedContentType", "mode", "data", "encoding"})
    if value["mode"] != mode:
        raise CaptureFormatError(f"{name}.mode must be {mode}, got {value['mode']!r}")
    if value["encoding"] not in ENCODINGS:
        raise CaptureFormatError(f"{name}.encoding must be one of {', '.join(ENCODINGS)}, got {value['encoding']!r}")
    if not isinstance(value["data"], str) or not isinstance(value["observedContentType"], str):
        raise CaptureFormatError(f"{name}.data and {name}.observedContentType must be strings")
    if value["encoding"] == "BASE64":
        try:
            base64.b64decode(value["data"], validate=True)
        except binascii.Error as error:
            raise CaptureFormatError(f"{name}.data is not base64: {error}") from None
    return CapturedPayload(value["observedContentType"], value["mode"], value["data"], value["encoding"])


def _time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or not value.endswith("Z"):
        raise CaptureFormatError(f"eventMetadata.inferenceTime must be UTC like 2022-04-18T00:21:48Z, got {value!r}")
    return parsed.astimezone(UTC)


def read_ground_truth(root: Path) -> dict[str, str]:
    """{inference id: label "0"/"1"} of every *.jsonl under `root`; StepError names the file and line."""
    labels: dict[str, str] = {}
    where_labelled: dict[str, str] = {}
    for path in sorted(root.rglob("*.jsonl")):
        key = path.relative_to(root).as_posix()
        for number, line in enumerate(_text(path, key, StepError).splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{key} line {number}"
            inference_id, label = _ground_truth_record(where, line)
            if inference_id in labels:
                raise StepError(
                    f"{where}: inference id {inference_id!r} is already labelled ({where_labelled[inference_id]})"
                )
            labels[inference_id], where_labelled[inference_id] = label, where
    return labels


def _ground_truth_record(where: str, line: str) -> tuple[str, str]:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise StepError(f"{where}: not a JSON line: {error}") from None
    truth = record.get("groundTruthData") if isinstance(record, dict) else None
    metadata = record.get("eventMetadata") if isinstance(record, dict) else None
    if not isinstance(truth, dict) or not isinstance(metadata, dict) or not isinstance(metadata.get("eventId"), str):
        raise StepError(
            f'{where}: not a ground-truth record {{"groundTruthData": {{"data", "encoding"}}, '
            '"eventMetadata": {"eventId"}, "eventVersion": "0"}'
        )
    if truth.get("encoding") != LABEL_ENCODING or record.get("eventVersion") != EVENT_VERSION:
        raise StepError(f'{where}: labels are encoded as "CSV" with "eventVersion": "0"')
    if truth.get("data") not in LABELS:
        raise StepError(f"{where}: label {truth.get('data')!r} is not 0 or 1 (as text)")
    return metadata["eventId"], truth["data"]
