"""SageMaker data capture, both ways: the records the local endpoint writes, and a parser that checks any capture file.

Layout (an endpoint's DataCaptureConfig.DestinationS3Uri is `s3://<artifacts bucket>/data-capture`):

    data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/<MM-SS-mmm-uuid>.jsonl     (hour of the inference, UTC)

One JSON record a line:

    {"captureData": {
        "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",  "data": "...", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "...", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<the caller's InferenceId, when given>",
                       "inferenceTime": "2022-04-18T00:21:48Z"},
     "eventVersion": "0"}

`encoding` is CSV or JSON for the content types listed in CaptureContentTypeHeader (the data is the payload's text),
BASE64 for any other type. `parse_record` / `read_capture` are what the monitoring code reads captures with.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pipeline_defs.contract import CAPTURE_TEXT_ENCODINGS as TEXT_ENCODINGS
from pipeline_defs.contract import DATA_CAPTURE_PREFIX

CAPTURE_PREFIX = DATA_CAPTURE_PREFIX.rstrip("/")
ENCODINGS = ("CSV", "JSON", "BASE64")
EVENT_VERSION = "0"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_KEY = re.compile(r"(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/[^/]+\.jsonl")


class CaptureFormatError(ValueError):
    """A capture file or record that is not in SageMaker's data capture format."""


@dataclass(frozen=True)
class CapturedPayload:
    observed_content_type: str
    mode: str  # INPUT or OUTPUT
    data: str
    encoding: str  # CSV, JSON or BASE64

    def content(self) -> bytes:
        """The payload as the endpoint received or sent it."""
        return base64.b64decode(self.data) if self.encoding == "BASE64" else self.data.encode("utf-8")


@dataclass(frozen=True)
class CaptureRecord:
    endpoint_input: CapturedPayload | None
    endpoint_output: CapturedPayload | None
    event_id: str
    inference_time: datetime
    inference_id: str | None
    event_version: str


# Writing ---------------------------------------------------------------------------------------------------------
def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def payload(content: bytes, content_type: str | None, mode: str) -> dict[str, str]:
    """`endpointInput` / `endpointOutput` of a record: text for the listed content types, base64 otherwise."""
    encoding = TEXT_ENCODINGS.get(media_type(content_type), "BASE64")
    if encoding != "BASE64":
        try:
            data = content.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if encoding == "BASE64":
        data = base64.b64encode(content).decode("ascii")
    return {"observedContentType": content_type or "", "mode": mode, "data": data, "encoding": encoding}


def record(
    request: tuple[bytes, str | None],
    response: tuple[bytes, str],
    inference_time: datetime,
    inference_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One capture record of a request (body, content type) and its response (body, content type)."""
    metadata = {"eventId": event_id or str(uuid.uuid4()), "inferenceTime": inference_time.strftime(_TIME_FORMAT)}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return {
        "captureData": {
            "endpointInput": payload(*request, "INPUT"),
            "endpointOutput": payload(*response, "OUTPUT"),
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


class CaptureWriter:
    """Appends records for one endpoint variant under `folder` (= <artifacts bucket>/data-capture/<endpoint>/<variant>).

    Thread-safe; every line is flushed when written, so a stopped server leaves only complete lines. One file per
    hour folder per writer, named like SageMaker's (`MM-SS-mmm-<uuid>.jsonl`, the time of its first record).
    """

    def __init__(
        self,
        folder: Path,
        sampling_percentage: int,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        if not 0 <= sampling_percentage <= 100:
            raise ValueError(f"sampling percentage {sampling_percentage} is not in 0..100")
        self.folder = folder
        self.sampling_percentage = sampling_percentage
        self._random_fraction = random_fraction
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._hour = ""
        self._closed = False
        self.written = 0

    def sampled(self) -> bool:
        """Whether to capture the next request (InitialSamplingPercentage)."""
        return self.sampling_percentage > 0 and self._random_fraction() * 100 < self.sampling_percentage

    def write(self, line_record: Mapping[str, Any], when: datetime) -> None:
        line = json.dumps(line_record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._closed:
                return
            hour = when.astimezone(UTC).strftime("%Y/%m/%d/%H")
            if self._file is None or hour != self._hour:
                self._open(hour, when)
            assert self._file is not None
            self._file.write(line)
            self._file.flush()
            self.written += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None

    def _open(self, hour: str, when: datetime) -> None:
        if self._file is not None:
            self._file.close()
        folder = self.folder / hour
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
        self._file = (folder / name).open("a", encoding="utf-8")
        self._hour = hour


# Reading ---------------------------------------------------------------------------------------------------------
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


def read_capture(root: Path) -> list[tuple[str, CaptureRecord]]:
    """(key below `root`, record) of every capture file under `root` (a data-capture prefix), in file and line order.

    Each key must be `<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl`, and each record's inferenceTime in that hour.
    """
    found = []
    for path in sorted(root.rglob("*.jsonl")):
        key = path.relative_to(root).as_posix()
        layout = _KEY.fullmatch(key)
        if layout is None:
            raise CaptureFormatError(f"{key}: not <endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                parsed = parse_record(line)
            except CaptureFormatError as error:
                raise CaptureFormatError(f"{key} line {number}: {error}") from None
            if parsed.inference_time.strftime("%Y/%m/%d/%H") != layout["hour"]:
                raise CaptureFormatError(f"{key} line {number}: inferenceTime {parsed.inference_time} not in its hour")
            found.append((key, parsed))
    return found


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
