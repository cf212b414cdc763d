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
BASE64 for any other type. Reading is the step library's (steplib/capture_format.py: `parse_record`, `read_capture`,
re-exported here): the pipeline's merge step and `mlops monitor --local` parse captures with the same code.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_defs.contract import CAPTURE_TEXT_ENCODINGS as TEXT_ENCODINGS
from pipeline_defs.contract import DATA_CAPTURE_PREFIX
from steplib.capture_format import (
    ENCODINGS,
    EVENT_VERSION,
    CapturedPayload,
    CaptureFormatError,
    CaptureRecord,
    parse_record,
    read_capture,
)

__all__ = [
    "CAPTURE_PREFIX",
    "ENCODINGS",
    "EVENT_VERSION",
    "CaptureFormatError",
    "CaptureRecord",
    "CaptureWriter",
    "CapturedPayload",
    "media_type",
    "parse_record",
    "payload",
    "read_capture",
    "record",
]

CAPTURE_PREFIX = DATA_CAPTURE_PREFIX.rstrip("/")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


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

    Thread-safe; every line is written whole or not at all, so a stopped server leaves only complete lines. One file per
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
        self._file: io.FileIO | None = None
        self._hour = ""
        self._closed = False
        self.written = 0

    def sampled(self) -> bool:
        """Whether to capture the next request (InitialSamplingPercentage)."""
        return self.sampling_percentage > 0 and self._random_fraction() * 100 < self.sampling_percentage

    def write(self, line_record: Mapping[str, Any], when: datetime) -> None:
        """Append one line in one write (a concurrent reader sees all of it, or a part as the file's last line); when
        that write fails, the file is cut back to its last whole line and the OSError raised."""
        line = (json.dumps(line_record, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                return
            hour = when.astimezone(UTC).strftime("%Y/%m/%d/%H")
            if self._file is None or hour != self._hour:
                self._open(hour, when)
            assert self._file is not None
            whole_lines = os.fstat(self._file.fileno()).st_size
            try:
                unwritten = memoryview(line)
                while unwritten:  # one write, but for a short one (a full disk): then the rest, or its error
                    unwritten = unwritten[self._file.write(unwritten) :]
            except OSError:
                os.ftruncate(self._file.fileno(), whole_lines)
                raise
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
        self._file = (folder / name).open("ab", buffering=0)  # unbuffered: each write() is one system call
        self._hour = hour
