"""The track-execution function: SageMaker and S3 through botocore Stubber, MLflow through an in-memory REST server.

A finished execution becomes a parent run with a nested run per step holding its reports' numbers; a redelivered event
creates nothing; an attempt cut short is completed by the next delivery without duplicates.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tests.handlers.fake_mlflow import FakeMlflow
from tests.helpers import REPO_ROOT, load_module

FUNCTION_DIR = REPO_ROOT / "lambda" / "track_execution"
REGION, ACCOUNT = "eu-west-1", "123456789012"
APP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-app/app-5A7B9C"
BUCKET = "churn-dev-artifacts"
PIPELINE = "churn-dev-training"
EXECUTION_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/p1a2b3c4d5e6"
EARLIER_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/0ld3r0ld3r00"
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-dev-models/7"
DATASET = "s3://churn-dev-landing/datasets/2026-11-20/"
STARTED, ENDED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC), datetime(2026, 11, 20, 10, 11, 12, tzinfo=UTC)
PARAMETERS = {"ExperimentId": "dataset-2026-11-20", "InputDataUri": DATASET, "MinimumScore": "0.7"}
CONTEXT = SimpleNamespace(aws_request_id="5e1c2d3e-0000-4000-8000-000000000002")
PREPROCESS_REPORT = {"rows_read": 2020, "mode": "split", "rows_written": {"test": 392}, "instance": ["algo-1", 1]}
EVALUATION = {
    "candidate": {"roc_auc": 0.8196, "rows": 392, "f1": float("nan")},
    "candidate_score": 0.8196,
    "has_incumbent": False,
    "incumbent": None,
    "metric": "roc_auc",
    "summary": "roc_auc 0.8196 on 392 labelled test rows; no incumbent compared.",
}


def job_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}"


def output_uri(execution: str, step: str, output: str) -> str:
    return f"s3://{BUCKET}/pipelines/{PIPELINE}/{PARAMETERS['ExperimentId']}/{execution}/{step}/{output}"


def steps() -> list[dict[str, Any]]:
    """A training execution: Preprocess ran, Evaluate was a cache hit of an earlier execution, a version registered."""
    common = {"StartTime": STARTED, "EndTime": ENDED, "StepStatus": "Succeeded"}
    return [
        {"StepName": "Preprocess", **common, "Metadata": {"ProcessingJob": {"Arn": job_arn("pipelines-p1-pre")}}},
        {"StepName": "Train", **common, "Metadata": {"TrainingJob": {"Arn": job_arn("pipelines-p1-train")}}},
        {
            "StepName": "Evaluate",
            **common,
            "Metadata": {"ProcessingJob": {"Arn": job_arn("pipelines-0ld-eval")}},
            "CacheHitResult": {"SourcePipelineExecutionArn": EARLIER_ARN},
        },
        {"StepName": "RegisterModel", **common, "Metadata": {"RegisterModel": {"Arn": PACKAGE_ARN}}},
    ]


def status_event(status: str = "Succeeded", arn: str = EXECUTION_ARN) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (REPO_ROOT / "tests" / "infra" / "fixtures" / "events" / "pipeline_execution_status_change.json").read_text()
    )
    event["detail"] |= {"currentPipelineExecutionStatus": status, "pipelineExecutionArn": arn}
    return event


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> ModuleType:
    """handler.py at a cold start, its sibling module importable by name as in the Lambda runtime."""
    for name, value in {"MLFLOW_TRACKING_ARN": APP_ARN, "PIPELINE_NAMES": f"{PIPELINE},churn-dev-evaluation",
                        "ARTIFACTS_BUCKET": BUCKET}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "run_structure", load_module("run_structure", FUNCTION_DIR / "run_structure.py"))
    monkeypatch.setitem(sys.modules, "track_execution_handler", ModuleType("track_execution_handler"))
    return load_module("track_execution_handler", FUNCTION_DIR / "handler.py")


@pytest.fixture
def mlflow(handler: ModuleType) -> FakeMlflow:
    base_url, service, header = handler.endpoint(APP_ARN)
    fake = FakeMlflow(base_url, (header, APP_ARN), service, REGION)
    handler._clients["mlflow"] = handler.MlflowApi(
        APP_ARN, Credentials("testing", "testing"), send=fake.send, sleep=lambda _seconds: None
    )
    return fake


@pytest.fixture
def aws(handler: ModuleType) -> Iterator[SimpleNamespace]:
    """Stubbers on the SageMaker and S3 clients the handler uses; a call without a queued response fails."""
    clients = {name: boto3.client(name, region_name=REGION) for name in ("sagemaker", "s3")}
    handler._clients.update(clients)
    with Stubber(clients["sagemaker"]) as sagemaker, Stubber(clients["s3"]) as s3:
        yield SimpleNamespace(sagemaker=sagemaker, s3=s3)
        sagemaker.assert_no_pending_responses()
        s3.assert_no_pending_responses()


def expect_parameters(aws: SimpleNamespace) -> None:
    aws.sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": k, "Value": v} for k, v in PARAMETERS.items()]},
        {"PipelineExecutionArn": EXECUTION_ARN},
    )


def expect_execution(aws: SimpleNamespace) -> None:
    """Every read of a first recording, in order: parameters, the execution, its steps, two jobs, three reports."""
    expect_parameters(aws)
    aws.sagemaker.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION_ARN, "PipelineExecutionDisplayName": "dataset-2026-11-20-1a2b3c4d",
         "PipelineExecutionStatus": "Succeeded", "CreationTime": STARTED, "LastModifiedTime": ENDED},
        {"PipelineExecutionArn": EXECUTION_ARN},
    )  # fmt: skip
    aws.sagemaker.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps()},
        {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending"},
    )
    for job, execution, step, output in (
        ("pipelines-p1-pre", "p1a2b3c4d5e6", "Preprocess", "report"),
        ("pipelines-0ld-eval", "0ld3r0ld3r00", "Evaluate", "evaluation"),
    ):
        aws.sagemaker.add_response(
            "describe_processing_job",
            {"ProcessingJobName": job, "ProcessingJobArn": job_arn(job), "ProcessingJobStatus": "Completed",
             "CreationTime": STARTED, "AppSpecification": {"ImageUri": "image"},
             "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                        "VolumeSizeInGB": 30}},
             "ProcessingOutputConfig": {"Outputs": [{"OutputName": output, "S3Output": {
                 "S3Uri": output_uri(execution, step, output), "LocalPath": "/opt/ml/processing/output",
                 "S3UploadMode": "EndOfJob"}}]}},
            {"ProcessingJobName": job},
        )  # fmt: skip
    prefix = f"pipelines/{PIPELINE}/{PARAMETERS['ExperimentId']}"
    for key, document in (
        (f"{prefix}/p1a2b3c4d5e6/Preprocess/report/preprocess_report.json", PREPROCESS_REPORT),
        (f"{prefix}/0ld3r0ld3r00/Evaluate/evaluation/evaluation.json", EVALUATION),
    ):
        body = json.dumps(document).encode()
        aws.s3.add_response(
            "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))}, {"Bucket": BUCKET, "Key": key}
        )
    aws.s3.add_client_error(
        "get_object",
        service_error_code="NoSuchKey",
        http_status_code=404,
        expected_params={"Bucket": BUCKET, "Key": f"{prefix}/0ld3r0ld3r00/Evaluate/evaluation/model_quality.json"},
    )


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_an_execution_becomes_a_parent_run_with_a_nested_run_per_step(handler, aws, mlflow):
    expect_execution(aws)
    result = handler.handler(status_event(), CONTEXT)

    assert result["status"] == "recorded"
    assert mlflow.experiments == {"dataset-2026-11-20": "1"}
    [parent] = mlflow.parents()
    assert (parent.run_name, parent.status, parent.start_time, parent.end_time) == (
        "dataset-2026-11-20-1a2b3c4d", "FINISHED", millis(STARTED), millis(ENDED)
    )  # fmt: skip
    assert parent.tags == {
        "pipeline_execution_arn": EXECUTION_ARN,
        "pipeline_execution_id": "p1a2b3c4d5e6",
        "pipeline": PIPELINE,
        "experiment_id": "dataset-2026-11-20",
        "dataset_uri": DATASET,
        "registered_model_package_arn": PACKAGE_ARN,
        "registered_version": "7",
    }
    assert parent.params == PARAMETERS
    children = mlflow.children(parent)
    assert list(children) == ["Preprocess", "Train", "Evaluate", "RegisterModel"]
    assert {run.status for run in children.values()} == {"FINISHED"}
    evaluate = children["Evaluate"]
    # The report's numbers are the metrics (NaN and None are not); its text and yes/no values the parameters.
    assert sorted(evaluate.metrics) == [
        ("evaluation.candidate.roc_auc", 0.8196, millis(ENDED), 0),
        ("evaluation.candidate.rows", 392.0, millis(ENDED), 0),
        ("evaluation.candidate_score", 0.8196, millis(ENDED), 0),
    ]
    assert evaluate.params == {
        "evaluation.has_incumbent": "false",
        "evaluation.metric": "roc_auc",
        "evaluation.summary": EVALUATION["summary"],
    }
    assert evaluate.tags["cache_hit_source_execution"] == EARLIER_ARN
    assert evaluate.tags["processing_job"] == "pipelines-0ld-eval"
    preprocess = children["Preprocess"]
    assert {key: value for key, value, *_ in preprocess.metrics} == {
        "preprocess_report.rows_read": 2020.0,
        "preprocess_report.rows_written.test": 392.0,
    }
    assert children["RegisterModel"].tags["registered_version"] == "7"
    assert children["Train"].metrics == [] and children["Train"].tags["step_type"] == "TrainingJob"


def test_a_redelivered_event_creates_nothing(handler, aws, mlflow):
    expect_execution(aws)
    handler.handler(status_event(), CONTEXT)
    runs_before = {run_id: (run.status, list(run.metrics), dict(run.params)) for run_id, run in mlflow.runs.items()}
    mlflow.requests.clear()

    expect_parameters(aws)  # and nothing else: no steps, jobs or reports are read again
    result = handler.handler(status_event(), CONTEXT)

    assert result["status"] == "duplicate"
    assert mlflow.requests == [("GET", "experiments/get-by-name"), ("POST", "runs/search")]
    assert {run_id: (run.status, run.metrics, run.params) for run_id, run in mlflow.runs.items()} == runs_before


def test_an_attempt_cut_short_is_completed_by_the_next_delivery_without_duplicates(handler, aws, mlflow):
    # The third run (the second step's) cannot be created: every attempt answers 503, so the invocation fails.
    expect_execution(aws)
    original = mlflow._runs_create

    def create_fails_for_train(method: str, query: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if payload["run_name"] == "Train":
            return 503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected"}
        return original(method, query, payload)

    mlflow._runs_create = create_fails_for_train  # type: ignore[method-assign]
    with pytest.raises(handler.MlflowError, match="503"):
        handler.handler(status_event(), CONTEXT)
    assert mlflow.requests.count(("POST", "runs/create")) == 2 + handler.HTTP_ATTEMPTS  # parent, Preprocess, Train x3
    [parent] = mlflow.parents()
    assert parent.status == "RUNNING"

    mlflow._runs_create = original  # type: ignore[method-assign]
    expect_execution(aws)
    result = handler.handler(status_event(), CONTEXT)

    assert (result["status"], result["steps"]) == ("resumed", ["Train", "Evaluate", "RegisterModel"])
    assert mlflow.parents() == [parent] and parent.status == "FINISHED"
    children = mlflow.children(parent)
    assert sorted(children) == ["Evaluate", "Preprocess", "RegisterModel", "Train"]
    assert len(mlflow.runs) == 5
    assert len(children["Preprocess"].metrics) == 2  # written once, not again by the second delivery


def test_transient_mlflow_errors_are_retried_within_the_invocation(handler, aws, mlflow):
    expect_execution(aws)
    mlflow.failures["runs/search"] = [503, 429]
    assert handler.handler(status_event(), CONTEXT)["status"] == "recorded"
    assert mlflow.requests.count(("POST", "runs/search")) == 3


def test_a_rejected_request_fails_the_invocation_with_mlflows_error(handler, aws, mlflow):
    expect_parameters(aws)
    mlflow.failures["experiments/get-by-name"] = [403]
    with pytest.raises(handler.MlflowError, match="403 INTERNAL_ERROR: injected"):
        handler.handler(status_event(), CONTEXT)
    assert mlflow.requests == [("GET", "experiments/get-by-name")]  # a refusal is not retried here (Lambda retries)


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "Object Created", "detail": {}},
        status_event(status="Executing"),
        status_event(arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/other-team/execution/abc"),
        {"detail-type": "SageMaker Model Building Pipeline Execution Status Change", "detail": {}},
    ],
)
def test_events_that_are_not_a_finished_execution_of_the_unit_are_ignored(handler, aws, mlflow, event):
    assert handler.handler(event, CONTEXT)["status"] == "ignored"
    assert mlflow.requests == []


def test_a_misconfigured_function_names_every_problem(handler, monkeypatch):
    with pytest.raises(handler.ConfigError) as raised:
        handler.load_settings({"MLFLOW_TRACKING_ARN": "arn:aws:s3:::bucket"})
    message = str(raised.value)
    assert "MLFLOW_TRACKING_ARN 'arn:aws:s3:::bucket' is not the ARN" in message
    assert "PIPELINE_NAMES is not set" in message and "ARTIFACTS_BUCKET is not set" in message


def test_the_endpoint_and_signing_name_follow_the_kind_of_mlflow(handler):
    assert handler.endpoint(APP_ARN) == (
        "https://mlflow.sagemaker.eu-west-1.app.aws",
        "sagemaker",
        "x-sm-mlflow-app-arn",
    )
    server = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/churn"
    assert handler.endpoint(server) == (
        "https://eu-west-1.experiments.sagemaker.aws", "sagemaker-mlflow", "x-mlflow-sm-tracking-server-arn"
    )  # fmt: skip


def run_structure() -> ModuleType:
    return load_module("run_structure_under_test", FUNCTION_DIR / "run_structure.py")


def test_reports_flatten_to_metrics_and_parameters_within_mlflows_rules():
    metrics, params = run_structure().metrics_and_params(
        {"x.json": {"a b": {"c/d": 1, "e%f": True}, "n": None, "inf": float("inf"), "list": [1, 2], "t": "v"}}
    )
    assert metrics == {"x.a b.c/d": 1.0}
    assert params == {"x.a b.e_f": "true", "x.t": "v"}


def test_every_report_mlops_report_reads_is_tracked():
    """The function reads at least what `mlops report --env` draws (mlops/report/sources.py), from the same output."""
    from mlops.report import sources

    tracked = run_structure().TRACKED_REPORTS
    for step, output in (sources.EVALUATE, sources.BASELINE, sources.CHECK_DRIFT, sources.RESOLVE_MODEL):
        assert tracked[step][0] == output, step
    assert "evaluation.json" in tracked["Evaluate"][1] and "resolved.json" in tracked["ResolveModel"][1]
