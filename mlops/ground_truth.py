"""`mlops ground-truth put FILE (--env E | --local)`: hand labels for served requests to model-quality monitoring.

The contract for producers. Each label names the request it belongs to by the InferenceId the caller sent with it
(`mlops invoke --inference-id`, InvokeEndpoint's InferenceId), which data capture records as
`eventMetadata.inferenceId`. FILE is either
- JSON lines in Model Monitor's ground-truth format (`.jsonl`), one record a line:
      {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<inference id>"},
       "eventVersion": "0"}
- or CSV (`.csv`) with the header `inference_id,label`, converted to those records.
A label is "0" (stayed) or "1" (churned); the encoding is CSV; an inference id is 1-64 printable characters; each
id appears once per file. Any bad record stops the upload with one line naming its line number: nothing is written.

The file lands, unchanged in name (extension .jsonl), where Model Monitor's merge job reads labels:
    s3://<landing bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/<file>.jsonl
`hh` is the hour the labels were collected (UTC, default now; `--hour 2026-11-29T13`), which need not match the
hour of the inference. In AWS the landing bucket and the data key come from the deployed Storage stack's outputs and
the object is SSE-KMS encrypted with that key; an existing object is never overwritten. `--local` writes into the
local landing bucket (<state dir>/s3/local-landing/...).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client, stack_outputs
from mlops.common import UsageError, shown
from mlops.endpoint import INFERENCE_ID
from pipeline_defs.contract import GROUND_TRUTH_PREFIX, DeployTimeValue
from pipeline_defs.local import LocalS3, local_values

LABELS = ("0", "1")
ENCODING = "CSV"
EVENT_VERSION = "0"
CSV_HEADER = ["inference_id", "label"]
_HOUR_FORMAT = "%Y-%m-%dT%H"


@dataclass(frozen=True)
class GroundTruth:
    """Validated labels, ready to upload: the JSON-lines body and how many records it holds."""

    body: bytes
    records: int


def parse_file(path: Path) -> GroundTruth:
    """The labels of FILE (.jsonl records or .csv `inference_id,label` rows); UsageError names the bad line."""
    if not path.is_file():
        raise UsageError(f"{shown(path)} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{shown(path)} is not UTF-8 text") from None
    if path.suffix == ".csv":
        records = list(_csv_records(path, text))
    elif path.suffix == ".jsonl":
        records = list(_jsonl_records(path, text))
    else:
        raise UsageError(f"{shown(path)}: use a .jsonl file of ground-truth records or a .csv with inference_id,label")
    if not records:
        raise UsageError(f"{shown(path)} holds no labels")
    seen: dict[str, int] = {}
    for line, record in records:
        event_id = record["eventMetadata"]["eventId"]
        if event_id in seen:
            raise UsageError(
                f"{shown(path)}:{line}: inference id {event_id!r} is already labelled on line {seen[event_id]}"
            )
        seen[event_id] = line
    body = "".join(json.dumps(record, separators=(",", ":")) + "\n" for _, record in records)
    return GroundTruth(body.encode("utf-8"), len(records))


def ground_truth_record(inference_id: str, label: str) -> dict[str, Any]:
    return {
        "groundTruthData": {"data": label, "encoding": ENCODING},
        "eventMetadata": {"eventId": inference_id},
        "eventVersion": EVENT_VERSION,
    }


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{shown(path)}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{where}: not JSON ({error.msg})") from None
        yield number, _checked(where, record)


def _checked(where: str, record: object) -> dict[str, Any]:
    """A ground-truth record in Model Monitor's format, or UsageError naming what is wrong with it."""
    if not isinstance(record, dict):
        raise UsageError(f"{where}: a record is a JSON object")
    truth, metadata = record.get("groundTruthData"), record.get("eventMetadata")
    if not isinstance(truth, dict):
        raise UsageError(f'{where}: missing "groundTruthData": {{"data": "0"|"1", "encoding": "CSV"}}')
    if truth.get("encoding") != ENCODING:
        raise UsageError(f"{where}: unknown encoding {truth.get('encoding')!r}: labels are encoded as CSV")
    if not isinstance(metadata, dict) or "eventId" not in metadata:
        raise UsageError(f'{where}: missing "eventMetadata": {{"eventId": "<the request\'s inference id>"}}')
    if record.get("eventVersion") != EVENT_VERSION:
        raise UsageError(f'{where}: "eventVersion" must be "{EVENT_VERSION}"')
    return ground_truth_record(_inference_id(where, metadata["eventId"]), _label(where, truth.get("data")))


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if [cell.strip() for cell in header or []] != CSV_HEADER:
        raise UsageError(f"{shown(path)}:1: the header must be {','.join(CSV_HEADER)}")
    for row in rows:
        number = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        where = f"{shown(path)}:{number}"
        if len(row) != len(CSV_HEADER):
            raise UsageError(f"{where}: expected 2 columns (inference_id,label), found {len(row)}")
        yield number, ground_truth_record(_inference_id(where, row[0].strip()), _label(where, row[1].strip()))


def _inference_id(where: str, value: object) -> str:
    if not isinstance(value, str) or not INFERENCE_ID.fullmatch(value):
        raise UsageError(f"{where}: inference id {value!r} is not 1-64 printable characters")
    return value


def _label(where: str, value: object) -> str:
    if value not in LABELS:
        raise UsageError(f"{where}: label {value!r} is not 0 or 1 (as text)")
    return str(value)


def object_key(endpoint: str, hour: datetime, file_name: str) -> str:
    """ground-truth/<endpoint>/yyyy/mm/dd/hh/<file>.jsonl"""
    return f"{GROUND_TRUTH_PREFIX}{endpoint}/{hour:%Y/%m/%d/%H}/{Path(file_name).stem}.jsonl"


def collection_hour(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        return datetime.strptime(value, _HOUR_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"--hour {value!r}: use the UTC hour as YYYY-MM-DDTHH, e.g. 2026-11-29T13") from None


def command_ground_truth(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if args.local == (args.env is not None):
        raise UsageError("say where the labels go: --env <env> (the deployed unit) or --local, not both")
    labels = parse_file(Path(args.file))
    key = object_key(config.endpoint_name, collection_hour(args.hour), args.file)
    if args.local:
        uri, where = put_local(args.state_dir, config, key, labels)
    else:
        uri, where = put_aws(config, key, labels), None
    if args.json:
        print(json.dumps({"uri": uri, "records": labels.records, "local_path": where}))
    else:
        print(f"wrote {labels.records} label(s) to {uri}" + (f" ({shown(where)})" if where else ""))
    return 0


def put_local(state_dir: Path, config: EnvironmentConfig, key: str, labels: GroundTruth) -> tuple[str, str]:
    """Into the local landing bucket, atomically; an existing file is kept."""
    uri = f"s3://{local_values(config.region)[DeployTimeValue.LANDING_BUCKET]}/{key}"
    target = LocalS3(state_dir / "s3").path(uri)
    if target.exists():
        raise UsageError(f"{shown(target)} already exists: labels are never overwritten; rename the file or use --hour")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(labels.body)
        os.link(temporary, target)  # fails if a concurrent writer got there first; never replaces
    except FileExistsError:
        raise UsageError(f"{shown(target)} already exists: labels are never overwritten") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return uri, str(target)


def put_aws(config: EnvironmentConfig, key: str, labels: GroundTruth) -> str:
    """PutObject into the deployed landing bucket, SSE-KMS with the unit's data key, refusing to overwrite."""
    outputs = stack_outputs(client("cloudformation", config), config, "Storage")
    bucket, data_key = outputs.get("TrainingDataBucketName"), outputs.get("DataKeyArn")
    if not bucket or not data_key:
        raise AwsCallFailed(
            f"{config.name_prefix}-Storage has no TrainingDataBucketName/DataKeyArn output: redeploy it"
        )
    uri = f"s3://{bucket}/{key}"
    try:
        client("s3", config).put_object(
            Bucket=bucket,
            Key=key,
            Body=labels.body,
            ContentType="application/jsonl",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=data_key,
            IfNoneMatch="*",
        )
    except ClientError as error:
        if error.response["Error"].get("Code") == "PreconditionFailed":
            raise UsageError(
                f"{uri} already exists: labels are never overwritten; rename the file or use --hour"
            ) from None
        raise AwsCallFailed(f"writing {uri} failed: {error}") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"writing {uri} failed: {error}") from None
    return uri
