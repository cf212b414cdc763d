"""Start a pipeline once per dataset when the dataset's marker object lands in the landing bucket.

One deployment of this function per pipeline that datasets start: training (under the dataset prefix) and scoring
(under the scoring prefix), each with its own rule, settings and dead-letter queue.

Producers write `s3://<LANDING_BUCKET>/<DATASET_PREFIX><dataset-id>/...` and the marker
`<DATASET_PREFIX><dataset-id>/<MARKER_NAME>` last; an EventBridge rule (see event_pattern.py) delivers the
marker's `Object Created` event here. Configuration is read once, at cold start, from PIPELINE_NAME,
LANDING_BUCKET, DATASET_PREFIX and MARKER_NAME; a missing or invalid value fails the init with one message.

Every invocation writes exactly one JSON log line and returns {"status": "started" | "duplicate" | "ignored"}:
- ignored: the event can never start a run (wrong shape, bucket, key or dataset id). Returning normally is
  what stops Lambda from retrying a permanent problem; the WARNING line says why.
- duplicate: the dataset already has an execution that is running or succeeded (looked up by display name,
  because moto and the idempotency window of ClientRequestToken are not enough on their own).
- Errors from SageMaker are re-raised, so Lambda retries and finally hands the event to its failure
  destination: transient ones (throttling, 5xx, conflict, limits, network) log a WARNING, the rest
  (missing pipeline, validation, access) an ERROR. Nothing is dropped; `mlops dlq replay` re-sends it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from event_pattern import dataset_experiment_id, dataset_id_problem, validate_location

# Duplicates arrive within hours (EventBridge and Lambda retries) or days (DLQ replays); the newest 500
# executions cover that for a pipeline that runs per dataset, and bound the cost of every invocation.
MAX_EXECUTIONS_SCANNED = 500
# A dataset whose executions all ended in one of these may run again; any other status (including ones
# SageMaker may add later) counts as "this dataset already has a run".
RERUNNABLE_STATUSES = frozenset({"Failed", "Stopped", "CompletedWithFailures"})
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
        # The pipeline is being updated or is busy: the same request succeeds later.
        "ConflictException",
        # Too many concurrent executions: frees up when running executions finish.
        "ResourceLimitExceeded",
    }
)
# Standard mode retries throttling and 5xx with backoff inside one invocation; Lambda's own retries and the
# DLQ cover longer outages. The function timeout must exceed 4 attempts x (connect + read) plus backoff.
BOTO_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=5, read_timeout=20)

_PIPELINE_NAME_PATTERN = re.compile(
    r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:([0-9]{12}|aws):pipeline/.*)?([a-zA-Z0-9](-*[a-zA-Z0-9]){0,255})"
)
_BUCKET_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MAX_LOGGED_CHARS = 1024


class ConfigError(RuntimeError):
    """The function's environment is missing or has invalid settings; the message names each one."""


@dataclass(frozen=True)
class Settings:
    pipeline_name: str
    landing_bucket: str
    dataset_prefix: str
    marker_name: str


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the four settings, reporting every problem at once."""
    names = ("PIPELINE_NAME", "LANDING_BUCKET", "DATASET_PREFIX", "MARKER_NAME")
    values = {name: environ.get(name, "") for name in names}
    problems = [f"{name} is not set" for name, value in values.items() if not value]
    if values["PIPELINE_NAME"] and not _PIPELINE_NAME_PATTERN.fullmatch(values["PIPELINE_NAME"]):
        problems.append(f"PIPELINE_NAME {values['PIPELINE_NAME']!r} is not a SageMaker pipeline name or ARN")
    if values["LANDING_BUCKET"] and not _BUCKET_NAME_PATTERN.fullmatch(values["LANDING_BUCKET"]):
        problems.append(f"LANDING_BUCKET {values['LANDING_BUCKET']!r} is not an S3 bucket name")
    if values["DATASET_PREFIX"] and values["MARKER_NAME"]:
        try:
            validate_location(values["DATASET_PREFIX"], values["MARKER_NAME"])
        except ValueError as error:
            problems.append(f"DATASET_PREFIX/MARKER_NAME: {error}")
    if problems:
        raise ConfigError("start_pipeline is misconfigured: " + "; ".join(problems))
    return Settings(values["PIPELINE_NAME"], values["LANDING_BUCKET"], values["DATASET_PREFIX"], values["MARKER_NAME"])


def log(level: str, message: str, **fields: Any) -> None:
    """Write one JSON object on one line to stdout, which Lambda ships to CloudWatch Logs as one event."""
    record = {"level": level, "message": message, "timestamp": datetime.now(UTC).isoformat(), **fields}
    clipped = {k: v[:_MAX_LOGGED_CHARS] if isinstance(v, str) else v for k, v in record.items()}
    sys.stdout.write(json.dumps(clipped, default=str) + "\n")
    sys.stdout.flush()


def _settings_at_cold_start() -> Settings:
    try:
        return load_settings(os.environ)
    except ConfigError as error:
        log("ERROR", "invalid configuration", error=str(error))
        raise


SETTINGS = _settings_at_cold_start()
_sagemaker_client: Any = None


def sagemaker_client() -> Any:
    """The SageMaker client, created on first use (ignored events never pay for it); tests replace it."""
    global _sagemaker_client
    if _sagemaker_client is None:
        _sagemaker_client = boto3.client("sagemaker", config=BOTO_CONFIG)
    return _sagemaker_client


class IgnoredEvent(Exception):
    """The event can never start a run; `reason` is a stable code for alarms, `detail` the explanation."""

    def __init__(self, reason: str, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.fields = fields


@dataclass(frozen=True)
class MarkerEvent:
    bucket: str
    key: str
    dataset_id: str
    version_id: str | None
    etag: str | None
    sequencer: str | None


def parse_marker_event(event: Any, settings: Settings) -> MarkerEvent:
    """Validate an EventBridge S3 event as the marker of one dataset, or raise IgnoredEvent."""
    if not isinstance(event, dict):
        raise IgnoredEvent("not_an_object", f"the event is a {type(event).__name__}, not a JSON object")
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        raise IgnoredEvent(
            "not_s3_object_created",
            "the event is not an S3 'Object Created' event",
            source=_short_repr(event.get("source")),
            detail_type=_short_repr(event.get("detail-type")),
        )
    detail = _as_dict(event.get("detail"))
    object_info = _as_dict(detail.get("object"))
    bucket = _nonempty_str(_as_dict(detail.get("bucket")).get("name"))
    key = _nonempty_str(object_info.get("key"))
    if bucket is None:
        raise IgnoredEvent("missing_field", "detail.bucket.name is missing or not a string", field="detail.bucket.name")
    if key is None:
        raise IgnoredEvent("missing_field", "detail.object.key is missing or not a string", field="detail.object.key")
    where = {"bucket": bucket, "key": key}
    if bucket != settings.landing_bucket:
        raise IgnoredEvent(
            "wrong_bucket", f"the object is not in the landing bucket {settings.landing_bucket}", **where
        )
    dataset_id = _dataset_id(key, settings, where)
    version_id = _nonempty_str(object_info.get("version-id"))
    etag = _nonempty_str(object_info.get("etag"))
    # "null" is the version id of objects written while versioning was off or suspended: not an identity.
    if version_id == "null":
        version_id = None
    if version_id is None and etag is None:
        raise IgnoredEvent(
            "missing_field", "detail.object has neither version-id nor etag", field="detail.object.version-id", **where
        )
    return MarkerEvent(bucket, key, dataset_id, version_id, etag, _nonempty_str(object_info.get("sequencer")))


def _dataset_id(key: str, settings: Settings, where: dict[str, str]) -> str:
    """The dataset id of a marker key `<prefix><dataset id>/<marker>`, checked; IgnoredEvent for any other key."""
    if not key.startswith(settings.dataset_prefix):
        raise IgnoredEvent("outside_prefix", f"the key is not under {settings.dataset_prefix}", **where)
    rest = key[len(settings.dataset_prefix) :]
    marker_suffix = "/" + settings.marker_name
    if rest == settings.marker_name:
        dataset_id = ""
    elif rest.endswith(marker_suffix):
        dataset_id = rest[: -len(marker_suffix)]
    else:
        raise IgnoredEvent("not_marker", f"the key is not a {settings.marker_name} marker", **where)
    _check_dataset_id(dataset_id, where)
    return dataset_id


def _check_dataset_id(dataset_id: str, where: dict[str, str]) -> None:
    """IgnoredEvent unless the id passes the rule in event_pattern.py (the one `mlops dataset put` applies too)."""
    problem = dataset_id_problem(dataset_id)
    if problem is None:
        return
    reason, detail = problem
    decoded = unquote_plus(where["key"])
    hint = {"decoded_key": decoded} if reason == "invalid_dataset_id" and decoded != where["key"] else {}
    fields = {"dataset_id": dataset_id} if reason == "invalid_dataset_id" else {}
    raise IgnoredEvent(reason, detail, **fields, **where, **hint)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _short_repr(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)[:100]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def execution_display_name(dataset_id: str) -> str:
    """`dataset-<id>-<hash>`: readable, within SageMaker's [a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}, and one per id.

    The name only allows letters, digits and hyphens, so `.` and `_` become `-`; the hash of the original id
    keeps `a.b`, `a_b` and `a-b` apart, because the duplicate check matches executions by this name.
    """
    return f"dataset-{re.sub(r'[._]', '-', dataset_id)}-{_digest(dataset_id)[:8]}"


def experiment_id(dataset_id: str) -> str:
    """The run's ExperimentId (event_pattern.py: `mlops dataset put --local` starts its local run with it too)."""
    return dataset_experiment_id(dataset_id)


def client_request_token(marker: MarkerEvent) -> str:
    """SageMaker's idempotency token (32-128 characters): the same for every delivery of one marker write.

    A new write of the marker (new version id; without versioning, a new sequencer) gets a new token.
    """
    if marker.version_id is not None:
        identity = f"version:{marker.version_id}"
    else:
        identity = f"etag:{marker.etag}:{marker.sequencer or ''}"
    return _digest(marker.bucket, marker.key, identity)


def start_request(marker: MarkerEvent, settings: Settings) -> dict[str, Any]:
    """The StartPipelineExecution request for a dataset's marker."""
    # The dataset's folder, ending with "/": the InputDataUri rule of pipeline_defs/contract.py (which this asset
    # cannot import; tests/handlers/test_input_data_uri_rule.py checks that the two agree).
    data_uri = f"s3://{marker.bucket}/{settings.dataset_prefix}{marker.dataset_id}/"
    written = f"version {marker.version_id}" if marker.version_id else f"etag {marker.etag}"
    return {
        "PipelineName": settings.pipeline_name,
        "PipelineExecutionDisplayName": execution_display_name(marker.dataset_id),
        "PipelineParameters": [
            {"Name": "InputDataUri", "Value": data_uri},
            {"Name": "ExperimentId", "Value": experiment_id(marker.dataset_id)},
        ],
        "PipelineExecutionDescription": (
            f"Run on dataset {marker.dataset_id}, started by s3://{marker.bucket}/{marker.key} ({written})"
        ),
        "ClientRequestToken": client_request_token(marker),
    }


def find_existing_execution(client: Any, pipeline_name: str, display_name: str) -> dict[str, Any] | None:
    """The newest-first search for an execution of this dataset that is running or succeeded."""
    pages = client.get_paginator("list_pipeline_executions").paginate(
        PipelineName=pipeline_name,
        SortBy="CreationTime",
        SortOrder="Descending",
        PaginationConfig={"MaxItems": MAX_EXECUTIONS_SCANNED, "PageSize": 100},
    )
    for page in pages:
        for summary in page.get("PipelineExecutionSummaries", []):
            if (
                summary.get("PipelineExecutionDisplayName") == display_name
                and summary.get("PipelineExecutionStatus") not in RERUNNABLE_STATUSES
            ):
                return summary
    return None


def is_transient(error: BaseException) -> bool:
    """True when the same request can succeed later, so a retry (and the DLQ after the last one) is right."""
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in TRANSIENT_ERROR_CODES or status >= 500 or status == 429
    return False


def _log_failure(error: Exception, fields: dict[str, Any]) -> None:
    described = {"error_type": type(error).__name__, "error": str(error)}
    if isinstance(error, ClientError):
        described["error_code"] = error.response.get("Error", {}).get("Code")
        described["http_status"] = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    retryable = is_transient(error)
    if retryable:
        level, message = "WARNING", "transient error, the event will be retried"
    elif isinstance(error, (ClientError, BotoCoreError)):
        level, message = "ERROR", "SageMaker rejected the request; the event goes to the DLQ after retries"
    else:
        level, message = "ERROR", "unexpected error; the event goes to the DLQ after retries"
    log(level, message, retryable=retryable, **described, **fields)


def handler(event: Any, context: Any) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None)
    try:
        marker = parse_marker_event(event, SETTINGS)
    except IgnoredEvent as ignored:
        log(
            "WARNING",
            "ignored event",
            request_id=request_id,
            reason=ignored.reason,
            detail=ignored.detail,
            **ignored.fields,
        )
        return {"status": "ignored", "reason": ignored.reason}

    request = start_request(marker, SETTINGS)
    fields = {
        "request_id": request_id,
        "dataset_id": marker.dataset_id,
        "bucket": marker.bucket,
        "key": marker.key,
        "version_id": marker.version_id,
        "pipeline_name": SETTINGS.pipeline_name,
        "display_name": request["PipelineExecutionDisplayName"],
    }
    try:
        client = sagemaker_client()
        existing = find_existing_execution(client, SETTINGS.pipeline_name, request["PipelineExecutionDisplayName"])
        if existing is not None:
            log(
                "INFO",
                "duplicate marker: the dataset already has a running or succeeded execution",
                execution_arn=existing.get("PipelineExecutionArn"),
                execution_status=existing.get("PipelineExecutionStatus"),
                **fields,
            )
            return {
                "status": "duplicate",
                "dataset_id": marker.dataset_id,
                "execution_arn": existing.get("PipelineExecutionArn"),
                "execution_status": existing.get("PipelineExecutionStatus"),
            }
        execution_arn = client.start_pipeline_execution(**request)["PipelineExecutionArn"]
    except Exception as error:
        _log_failure(error, fields)
        raise
    log(
        "INFO",
        "pipeline execution started",
        execution_arn=execution_arn,
        experiment_id=experiment_id(marker.dataset_id),
        client_request_token=request["ClientRequestToken"],
        **fields,
    )
    return {"status": "started", "dataset_id": marker.dataset_id, "execution_arn": execution_arn}
