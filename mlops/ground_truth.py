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

A request is labelled once. The merge (pipeline_defs/steps/merge_capture.py: the eval-only pipeline's MergeCapture and
`mlops monitor`) reads every ground-truth file of the endpoint and stops at an id labelled twice, so a second label
would break every later monitoring run on that capture. Put therefore reads the ground truth already stored for the
endpoint and refuses a file that labels an id again (one line naming the first ids and the file that has them):
nothing is written. There is no correction rule: a wrong label is corrected by replacing the file that holds it.

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
import functools
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
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
SHOWN_IDS = 3  # ids named in the refusal of a file that labels requests again


@dataclass(frozen=True)
class GroundTruth:
    """Validated labels, ready to upload: the JSON-lines body and how many records it holds."""

    body: bytes
    records: int
    source: str  # the file it came from, as shown to the operator
    inference_ids: tuple[str, ...]  # in the order of the file


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
    return GroundTruth(body.encode("utf-8"), len(records), shown(path), tuple(seen))


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


def endpoint_prefix(config: EnvironmentConfig) -> str:
    """ground-truth/<endpoint>/: every label of the endpoint's requests lies below it (the merge reads all of it)."""
    return f"{GROUND_TRUTH_PREFIX}{config.endpoint_name}/"


def refuse_labelled_again(labels: GroundTruth, stored: Iterable[tuple[str, Callable[[], bytes]]]) -> None:
    """UsageError when a stored ground-truth file - (where, read its bytes) - already labels an id of `labels`.

    One line naming the first ids (in the order of the new file) and the first stored file that labels them."""
    new = set(labels.inference_ids)
    for where, read in stored:
        already = stored_ids(read()) & new
        if not already:
            continue
        clashes = [inference_id for inference_id in labels.inference_ids if inference_id in already]
        named = ", ".join(repr(inference_id) for inference_id in clashes[:SHOWN_IDS])
        more = f" and {len(clashes) - SHOWN_IDS} more" if len(clashes) > SHOWN_IDS else ""
        raise UsageError(
            f"{labels.source}: {len(clashes)} inference id(s) already labelled in {where} ({named}{more}): a request "
            "is labelled once, because a second label stops every monitoring run on the capture. Nothing was written; "
            "put only new ids (to correct a label, replace the file that holds it)"
        )


def stored_ids(body: bytes) -> set[str]:
    """The eventIds of a stored ground-truth file (a line that is no record is the merge's to report, not put's)."""
    ids = set()
    for line in body.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        metadata = record.get("eventMetadata") if isinstance(record, dict) else None
        event_id = metadata.get("eventId") if isinstance(metadata, dict) else None
        if isinstance(event_id, str):
            ids.add(event_id)
    return ids


def put_local(state_dir: Path, config: EnvironmentConfig, key: str, labels: GroundTruth) -> tuple[str, str]:
    """Into the local landing bucket, atomically; an existing file is kept, ids labelled before are refused."""
    bucket = local_values(config.region)[DeployTimeValue.LANDING_BUCKET]
    s3 = LocalS3(state_dir / "s3")
    uri = f"s3://{bucket}/{key}"
    target = s3.path(uri)
    if target.exists():
        raise UsageError(f"{shown(target)} already exists: labels are never overwritten; rename the file or use --hour")
    stored = s3.path(f"s3://{bucket}/{endpoint_prefix(config)}")
    refuse_labelled_again(labels, ((shown(path), path.read_bytes) for path in sorted(stored.rglob("*.jsonl"))))
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
    """PutObject into the deployed landing bucket, SSE-KMS with the unit's data key, refusing to overwrite and to
    label an id again (the endpoint's stored ground truth is listed and read first)."""
    outputs = stack_outputs(client("cloudformation", config), config, "Storage")
    bucket, data_key = outputs.get("TrainingDataBucketName"), outputs.get("DataKeyArn")
    if not bucket or not data_key:
        raise AwsCallFailed(
            f"{config.name_prefix}-Storage has no TrainingDataBucketName/DataKeyArn output: redeploy it"
        )
    uri = f"s3://{bucket}/{key}"
    s3 = client("s3", config)
    stored = _stored_keys(s3, bucket, endpoint_prefix(config))
    if key in stored:
        raise UsageError(f"{uri} already exists: labels are never overwritten; rename the file or use --hour")
    refuse_labelled_again(labels, ((f"s3://{bucket}/{k}", functools.partial(_read, s3, bucket, k)) for k in stored))
    try:
        s3.put_object(
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


def _stored_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The keys of the ground-truth files under `prefix` (*.jsonl, as the merge reads them), in key order."""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"].endswith(".jsonl")]
    except (BotoCoreError, ClientError) as error:
        raise AwsCallFailed(f"listing the ground truth under s3://{bucket}/{prefix} failed: {error}") from None


def _read(s3: Any, bucket: str, key: str) -> bytes:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as error:
        raise AwsCallFailed(f"reading s3://{bucket}/{key} (ground truth stored before) failed: {error}") from None
    return body
