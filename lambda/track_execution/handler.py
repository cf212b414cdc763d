"""Record a finished pipeline execution in the unit's managed MLflow: a parent run, a nested run per step.

EventBridge delivers "SageMaker Model Building Pipeline Execution Status Change" events of the unit's pipelines in a
terminal state (Succeeded, Failed, Stopped). The function finds the execution's steps and their report locations as
`mlops report --env` does (ListPipelineExecutionSteps, then DescribeProcessingJob of each reported step, the reused
job for a cache hit), reads the JSON reports from the artifacts bucket, and writes the runs through MLflow's REST API,
signed with SigV4 by botocore (the runtime has boto3 and nothing else; the structure is run_structure.py's).

Idempotent per execution: every run carries the execution's ARN as a tag and is looked up by it before anything is
created. A parent run that has ended means the execution is recorded: a redelivered event writes nothing. A parent
still RUNNING is an earlier attempt cut short: the steps without a finished run are written, then the parent ends.
Metric timestamps are the step's end time, so writing a step again adds no new metric values. The function runs one
invocation at a time (reserved concurrency 1), so two deliveries never race to create the same parent.

Every failure raises: Lambda retries the event, then hands it to the on-failure destination (the DLQ), and the
function's errors alarm on the unit's topic. Configuration: MLFLOW_TRACKING_ARN, PIPELINE_NAMES (comma-separated),
ARTIFACTS_BUCKET, read at cold start.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from itertools import zip_longest
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError
from run_structure import (
    DATASET_TAG,
    DISPLAY_NAME_TAG,
    EXECUTION_ARN_TAG,
    EXECUTION_TAG,
    JOB_TAG,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MESSAGE_TAG,
    PARENT_RUN_TAG,
    PIPELINE_TAG,
    RECORD_ROLE,
    REGISTERED_PACKAGE_TAG,
    REGISTERED_VERSION_TAG,
    REUSED_FROM_TAG,
    ROLE_TAG,
    STATUS_TAG,
    STEP_STATUS_TAG,
    STEP_TYPE_TAG,
    TERMINAL_STATUSES,
    TRACKED_REPORTS,
    numbers,
    registered_version,
    run_status,
    step_type,
)

STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
BOTO_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=5, read_timeout=20)
# MLflow calls: up to 3 attempts on throttling, 5xx and network errors, 1 s then 2 s apart; Lambda retries the rest.
HTTP_ATTEMPTS = 3
HTTP_TIMEOUT_SECONDS = 20
# runs/log-batch accepts at most 1000 metrics, 100 params and 100 tags, 1000 entities in all, per request.
BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS = 800, 100, 100
MAX_RUNS_SEARCHED = 1000
# The parameters that name the run's experiment and its dataset (pipeline_defs/contract.py `Parameter`).
EXPERIMENT_PARAMETER = "ExperimentId"
DATASET_PARAMETER = "InputDataUri"
DEFAULT_EXPERIMENT = "adhoc"

_MLFLOW_ARN = re.compile(r"arn:(aws[a-z-]*):sagemaker:([a-z0-9-]+):(\d{12}):(mlflow-app|mlflow-tracking-server)/.+")
_EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/([^/]+)/execution/([a-z0-9]+)")
_MAX_LOGGED_CHARS = 1024


class ConfigError(RuntimeError):
    """The function's environment is missing or has invalid settings; the message names each one."""


class MlflowError(RuntimeError):
    """MLflow answered with an error (`code` is MLflow's error code, e.g. RESOURCE_DOES_NOT_EXIST)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"MLflow answered {status} {code}: {message}")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Settings:
    tracking_arn: str
    pipeline_names: frozenset[str]
    artifacts_bucket: str


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the settings, reporting every problem at once."""
    arn = environ.get("MLFLOW_TRACKING_ARN", "")
    pipelines = frozenset(name for name in environ.get("PIPELINE_NAMES", "").split(",") if name)
    bucket = environ.get("ARTIFACTS_BUCKET", "")
    problems = []
    if not _MLFLOW_ARN.fullmatch(arn):
        problems.append(f"MLFLOW_TRACKING_ARN {arn!r} is not the ARN of an MLflow App or tracking server")
    if not pipelines:
        problems.append("PIPELINE_NAMES is not set (comma-separated pipeline names)")
    if not bucket:
        problems.append("ARTIFACTS_BUCKET is not set")
    if problems:
        raise ConfigError("track_execution is misconfigured: " + "; ".join(problems))
    return Settings(arn, pipelines, bucket)


def log(level: str, message: str, **fields: Any) -> None:
    """Write one JSON object on one line to stdout, which Lambda ships to CloudWatch Logs as one event."""
    record = {"level": level, "message": message, "timestamp": datetime.now(UTC).isoformat(), **fields}
    clipped = {k: v[:_MAX_LOGGED_CHARS] if isinstance(v, str) else v for k, v in record.items()}
    sys.stdout.write(json.dumps(clipped, default=str) + "\n")
    sys.stdout.flush()


# --- what SageMaker and S3 say about the execution --------------------------------------------------------------------


@dataclass
class StepRecord:
    name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    tags: dict[str, str]
    cache_hit: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    registered_package_arn: str | None = None


@dataclass
class ExecutionRecord:
    arn: str
    pipeline: str
    execution_id: str
    display_name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    parameters: dict[str, str]
    steps: list[StepRecord]
    failure_reason: str | None = None


class IgnoredEvent(Exception):
    """The event is not a finished execution of this unit's pipelines: nothing to record, nothing to retry."""


def parse_event(event: Any, settings: Settings) -> str:
    """The ARN of the finished execution the event is about, or IgnoredEvent."""
    if not isinstance(event, dict) or event.get("detail-type") != STATUS_CHANGE:
        raise IgnoredEvent("not a pipeline execution status change")
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    arn = detail.get("pipelineExecutionArn")
    match = _EXECUTION_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if match is None:
        raise IgnoredEvent("detail.pipelineExecutionArn is missing or not an execution ARN")
    if match[1] not in settings.pipeline_names:
        raise IgnoredEvent(f"pipeline {match[1]} is not one of this unit's")
    if detail.get("currentPipelineExecutionStatus") not in TERMINAL_STATUSES:
        raise IgnoredEvent(f"status {detail.get('currentPipelineExecutionStatus')!r} is not terminal")
    return arn


def _millis(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if isinstance(moment, datetime) else None


def _pages(client: Any, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def execution_parameters(sagemaker: Any, arn: str) -> dict[str, str]:
    """{name: value} of the parameters the execution ran with (its ExperimentId names the MLflow experiment)."""
    pages = _pages(sagemaker, "list_pipeline_parameters_for_execution", "PipelineParameters", PipelineExecutionArn=arn)
    return {p["Name"]: p["Value"] for p in pages}


def experiment_name(parameters: Mapping[str, str]) -> str:
    return parameters.get(EXPERIMENT_PARAMETER) or DEFAULT_EXPERIMENT


def collect(sagemaker: Any, s3: Any, arn: str, parameters: dict[str, str], settings: Settings) -> ExecutionRecord:
    """The execution and each step with the metrics and parameters of its reports."""
    match = _EXECUTION_ARN.fullmatch(arn)
    assert match is not None  # parse_event checked it
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    steps = [
        _step_record(sagemaker, s3, step, settings)
        for step in _pages(
            sagemaker, "list_pipeline_execution_steps", "PipelineExecutionSteps", PipelineExecutionArn=arn,
            SortOrder="Ascending",
        )
    ]  # fmt: skip
    return ExecutionRecord(
        arn=arn,
        pipeline=match[1],
        execution_id=match[2],
        display_name=str(described.get("PipelineExecutionDisplayName") or match[2]),
        status=str(described.get("PipelineExecutionStatus", "?")),
        start_ms=_millis(described.get("CreationTime")),
        end_ms=_millis(described.get("LastModifiedTime")),
        parameters=parameters,
        steps=steps,
        failure_reason=described.get("FailureReason"),
    )


def _step_record(sagemaker: Any, s3: Any, step: dict[str, Any], settings: Settings) -> StepRecord:
    metadata = step.get("Metadata") or {}
    status = str(step.get("StepStatus", "?"))
    record = StepRecord(
        name=str(step["StepName"]),
        status=status,
        start_ms=_millis(step.get("StartTime")),
        end_ms=_millis(step.get("EndTime")),
        tags={STEP_TYPE_TAG: step_type(metadata), STEP_STATUS_TAG: status},
    )
    if step.get("FailureReason"):
        record.tags[MESSAGE_TAG] = str(step["FailureReason"])
    source = (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
    if source:
        record.cache_hit = True
        record.tags[REUSED_FROM_TAG] = str(source).rsplit("/", 1)[-1]
    processing_job = (metadata.get("ProcessingJob") or {}).get("Arn")
    training_job = (metadata.get("TrainingJob") or {}).get("Arn")
    if processing_job or training_job:
        record.tags[JOB_TAG] = str(processing_job or training_job).rsplit("/", 1)[-1]
    package_arn = (metadata.get("RegisterModel") or {}).get("Arn")
    if package_arn:
        record.registered_package_arn = str(package_arn)
    if status != "Succeeded":
        return record
    tracked = TRACKED_REPORTS.get(record.name)
    if tracked is not None and processing_job:
        output_name, file_name, property_file = tracked
        location = _output_uris(sagemaker, processing_job).get(output_name)
        report = _read_report(s3, location, file_name, settings) if location is not None else None
        record.metrics = numbers(report, property_file)
    if training_job:
        described = sagemaker.describe_training_job(TrainingJobName=training_job.rsplit("/", 1)[-1])
        record.metrics |= {m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList", [])}
    return record


def _output_uris(sagemaker: Any, job_arn: str) -> dict[str, str]:
    """{output name: S3 URI} of a processing job (for a cache hit, the job of the execution it reused)."""
    described = sagemaker.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
    outputs = described.get("ProcessingOutputConfig", {}).get("Outputs", [])
    return {output["OutputName"]: output["S3Output"]["S3Uri"] for output in outputs if "S3Output" in output}


def _read_report(s3: Any, location: str, name: str, settings: Settings) -> Any:
    """The parsed report `<location>/<name>`; None when it does not exist or is not JSON (logged)."""
    uri = f"{location.rstrip('/')}/{name}"
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if bucket != settings.artifacts_bucket:
        log("WARNING", "report outside the artifacts bucket, not read", uri=uri)
        return None
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    try:
        return json.loads(body)
    except ValueError as error:
        log("WARNING", "report is not JSON, not recorded", uri=uri, error=str(error))
        return None


# --- MLflow's REST API ------------------------------------------------------------------------------------------------

# (method, url, headers, body) -> (HTTP status, response body)
Send = Callable[[str, str, dict[str, str], bytes | None], tuple[int, bytes]]


def urllib_send(method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def endpoint(tracking_arn: str) -> tuple[str, str, str]:
    """(base URL, SigV4 service name, routing header) of an MLflow App or tracking server ARN.

    As the sagemaker-mlflow plugin does it: an App answers at mlflow.sagemaker.<region>.app.aws and signs as
    `sagemaker`, a tracking server at <region>.experiments.sagemaker.aws and signs as `sagemaker-mlflow`.
    """
    match = _MLFLOW_ARN.fullmatch(tracking_arn)
    if match is None:
        raise ConfigError(f"{tracking_arn!r} is not the ARN of an MLflow App or tracking server")
    region, kind = match[2], match[4]
    if kind == "mlflow-app":
        return f"https://mlflow.sagemaker.{region}.app.aws", "sagemaker", "x-sm-mlflow-app-arn"
    return f"https://{region}.experiments.sagemaker.aws", "sagemaker-mlflow", "x-mlflow-sm-tracking-server-arn"


class MlflowApi:
    """MLflow's REST API (/api/2.0/mlflow/...) on a SageMaker managed MLflow, each request signed with SigV4."""

    def __init__(self, tracking_arn: str, credentials: Any, send: Send = urllib_send, sleep: Callable = time.sleep):
        self.base_url, service, header = endpoint(tracking_arn)
        self.region = tracking_arn.split(":")[3]
        self.routing = {header: tracking_arn}
        self.signer = SigV4Auth(credentials, service, self.region)
        self.send = send
        self.sleep = sleep

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **query: str) -> dict[str, Any]:
        url = f"{self.base_url}/api/2.0/mlflow/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(1, HTTP_ATTEMPTS + 1):
            headers = {**self.routing, "Content-Type": "application/json"}
            headers["X-Amz-Content-SHA256"] = sha256(data or b"").hexdigest()
            request = AWSRequest(method=method, url=url, data=data, headers=headers)
            self.signer.add_auth(request)
            try:
                status, answer = self.send(method, url, dict(request.headers.items()), data)
            except OSError as error:  # network: connection refused, reset, timeout
                status, answer = 0, json.dumps({"error_code": "NETWORK", "message": str(error)}).encode()
            if status == 200:
                return json.loads(answer or b"{}")
            transient = status in (0, 429) or status >= 500
            if not transient or attempt == HTTP_ATTEMPTS:
                raise _mlflow_error(status, answer)
            self.sleep(2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def experiment_id(self, name: str) -> str:
        """The id of the experiment `name`, created when missing (by another writer too: then read again)."""
        try:
            return str(self.call("GET", "experiments/get-by-name", experiment_name=name)["experiment"]["experiment_id"])
        except MlflowError as error:
            if error.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return str(self.call("POST", "experiments/create", {"name": name})["experiment_id"])
        except MlflowError as error:
            if error.code != "RESOURCE_ALREADY_EXISTS":
                raise
        return str(self.call("GET", "experiments/get-by-name", experiment_name=name)["experiment"]["experiment_id"])

    def runs_of_execution(self, experiment_id: str, execution_arn: str) -> list[dict[str, Any]]:
        answer = self.call(
            "POST",
            "runs/search",
            {
                "experiment_ids": [experiment_id],
                "filter": f"tags.`{EXECUTION_ARN_TAG}` = '{execution_arn}'",
                "run_view_type": "ALL",
                "max_results": MAX_RUNS_SEARCHED,
            },
        )
        return list(answer.get("runs", []))

    def create_run(self, experiment_id: str, name: str, start_ms: int | None, tags: dict[str, str]) -> str:
        body: dict[str, Any] = {"experiment_id": experiment_id, "run_name": name, "tags": _pairs(tags)}
        if start_ms is not None:
            body["start_time"] = start_ms
        return str(self.call("POST", "runs/create", body)["run"]["info"]["run_id"])

    def log(
        self, run_id: str, metrics: dict[str, float], params: dict[str, str], tags: dict[str, str], at: int
    ) -> None:
        """log-batch within its limits; a metric logged again with the same timestamp adds no value to its history."""
        metric_list = [{"key": k, "value": v, "timestamp": at, "step": 0} for k, v in sorted(metrics.items())]
        param_list, tag_list = _pairs(params, MAX_PARAM_VALUE_LENGTH), _pairs(tags)
        chunks = zip_longest(
            _chunks(metric_list, BATCH_METRICS), _chunks(param_list, BATCH_PARAMS), _chunks(tag_list, BATCH_TAGS)
        )
        for batch_metrics, batch_params, batch_tags in chunks:
            body = {"run_id": run_id, "metrics": batch_metrics or [], "params": batch_params or []}
            body["tags"] = batch_tags or []
            self.call("POST", "runs/log-batch", body)

    def end_run(self, run_id: str, status: str, end_ms: int | None) -> None:
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if end_ms is not None:
            body["end_time"] = end_ms
        self.call("POST", "runs/update", body)


def _pairs(values: Mapping[str, str], limit: int = MAX_TAG_VALUE_LENGTH) -> list[dict[str, str]]:
    """[{key, value}] sorted by key, each value cut to MLflow's limit."""
    return [{"key": k, "value": v[:limit]} for k, v in sorted(values.items())]


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _mlflow_error(status: int, answer: bytes) -> MlflowError:
    try:
        parsed = json.loads(answer)
    except ValueError:
        parsed = {}
    parsed = parsed if isinstance(parsed, dict) else {}
    message = parsed.get("message") or answer[:300].decode(errors="replace")
    return MlflowError(status, str(parsed.get("error_code", f"HTTP_{status}")), str(message))


def _tag_value(run: dict[str, Any], key: str) -> str | None:
    tags = run.get("data", {}).get("tags", [])
    return next((tag.get("value") for tag in tags if tag.get("key") == key), None)


# --- the run structure ------------------------------------------------------------------------------------------------


def record_execution(api: MlflowApi, sagemaker: Any, s3: Any, arn: str, settings: Settings) -> dict[str, Any]:
    """Write the execution's parent run and its step runs, skipping what an earlier delivery finished.

    An execution already recorded costs one SageMaker and two MLflow reads: its steps and reports are not read.
    """
    parameters = execution_parameters(sagemaker, arn)
    experiment_id = api.experiment_id(experiment_name(parameters))
    existing = api.runs_of_execution(experiment_id, arn)
    parent = next((run for run in existing if _tag_value(run, ROLE_TAG) == RECORD_ROLE), None)
    if parent is not None and parent["info"].get("status") != "RUNNING":
        return {"status": "duplicate", "run_id": parent["info"]["run_id"], "experiment_id": experiment_id}
    record = collect(sagemaker, s3, arn, parameters, settings)
    common = {EXECUTION_TAG: record.execution_id, EXECUTION_ARN_TAG: record.arn}
    parent_tags = dict(common, **{ROLE_TAG: RECORD_ROLE, PIPELINE_TAG: record.pipeline, STATUS_TAG: record.status})
    parent_tags[DISPLAY_NAME_TAG] = record.display_name
    if parameters.get(DATASET_PARAMETER):
        parent_tags[DATASET_TAG] = parameters[DATASET_PARAMETER]
    registered = next((s.registered_package_arn for s in record.steps if s.registered_package_arn), None)
    if registered:
        parent_tags |= {REGISTERED_PACKAGE_TAG: registered, REGISTERED_VERSION_TAG: registered_version(registered)}
    if record.failure_reason:
        parent_tags[MESSAGE_TAG] = record.failure_reason
    if parent is None:
        name = f"{record.pipeline} {record.execution_id}"
        parent_id = api.create_run(experiment_id, name, record.start_ms, parent_tags)
    else:
        parent_id = str(parent["info"]["run_id"])
    children = {_run_name(run): run for run in existing if _tag_value(run, ROLE_TAG) != RECORD_ROLE}
    written = []
    for step in record.steps:
        child = children.get(step.name)
        if child is not None and child["info"].get("status") != "RUNNING":
            continue
        tags = dict(common, **step.tags, **{PARENT_RUN_TAG: parent_id})
        if step.registered_package_arn:
            tags[REGISTERED_PACKAGE_TAG] = step.registered_package_arn
            tags[REGISTERED_VERSION_TAG] = registered_version(step.registered_package_arn)
        if child is not None:
            run_id = str(child["info"]["run_id"])
        else:
            run_id = api.create_run(experiment_id, step.name, step.start_ms, tags)
        at = step.end_ms or step.start_ms or record.end_ms or 0
        metrics = step.metrics | _seconds(step.start_ms, step.end_ms)
        api.log(run_id, metrics, {"cache_hit": str(step.cache_hit), "status": step.status}, {}, at)
        api.end_run(run_id, run_status(step.status), step.end_ms)
        written.append(step.name)
    api.log(parent_id, _seconds(record.start_ms, record.end_ms), parameters, parent_tags, record.end_ms or 0)
    api.end_run(parent_id, run_status(record.status), record.end_ms)
    return {
        "status": "recorded" if parent is None else "resumed",
        "run_id": parent_id,
        "experiment_id": experiment_id,
        "steps": written,
    }


def _seconds(start_ms: int | None, end_ms: int | None) -> dict[str, float]:
    """The `seconds` metric of a run: how long it took, when both ends are known."""
    return {"seconds": (end_ms - start_ms) / 1000} if start_ms is not None and end_ms is not None else {}


def _run_name(run: dict[str, Any]) -> str | None:
    return run.get("info", {}).get("run_name") or _tag_value(run, "mlflow.runName")


# --- the function -----------------------------------------------------------------------------------------------------


def _settings_at_cold_start() -> Settings:
    try:
        return load_settings(os.environ)
    except ConfigError as error:
        log("ERROR", "invalid configuration", error=str(error))
        raise


SETTINGS = _settings_at_cold_start()
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """A boto3 client, created on first use; tests replace them."""
    if service not in _clients:
        _clients[service] = boto3.client(service, config=BOTO_CONFIG)
    return _clients[service]


def mlflow_api() -> MlflowApi:
    """The MLflow API with the function's credentials (refreshed by botocore); tests replace it."""
    if "mlflow" not in _clients:
        _clients["mlflow"] = MlflowApi(SETTINGS.tracking_arn, boto3.Session().get_credentials())
    return _clients["mlflow"]


def handler(event: Any, context: Any) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None)
    try:
        arn = parse_event(event, SETTINGS)
    except IgnoredEvent as ignored:
        log("WARNING", "ignored event", request_id=request_id, reason=str(ignored))
        return {"status": "ignored", "reason": str(ignored)}
    try:
        result = record_execution(mlflow_api(), client("sagemaker"), client("s3"), arn, SETTINGS)
    except Exception as error:
        log("ERROR", "recording failed; the event is retried, then kept in the DLQ", request_id=request_id,
            execution_arn=arn, error_type=type(error).__name__, error=str(error))  # fmt: skip
        raise
    log("INFO", f"execution {result['status']}", request_id=request_id, execution_arn=arn, **result)
    return result
