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
RESOLVED = {"found": True, "model_package_version": 6, "model_package_arn": "arn:...:model-package/g/6", "x": [1]}
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
    """A training execution: ResolveIncumbent and Train ran, Evaluate was a cache hit of an earlier execution, a version
    registered."""
    common = {"StartTime": STARTED, "EndTime": ENDED, "StepStatus": "Succeeded"}
    training_job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/pipelines-p1-train"
    return [
        {"StepName": "ResolveIncumbent", **common, "Metadata": {"ProcessingJob": {"Arn": job_arn("pipelines-p1-res")}}},
        {"StepName": "Train", **common, "Metadata": {"TrainingJob": {"Arn": training_job}}},
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
        ("pipelines-p1-res", "p1a2b3c4d5e6", "ResolveIncumbent", "resolved"),
        ("pipelines-0ld-eval", "0ld3r0ld3r00", "Evaluate", "evaluation"),
    ):
        if step == "Evaluate":  # Train's final metrics come between the two processing jobs
            aws.sagemaker.add_response(
                "describe_training_job",
                {"TrainingJobName": "pipelines-p1-train", "TrainingJobArn": job_arn("pipelines-p1-train"),
                 "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed", "CreationTime": STARTED,
                 "AlgorithmSpecification": {"TrainingInputMode": "File"}, "RoleArn": "arn:aws:iam::1:role/r",
                 "OutputDataConfig": {"S3OutputPath": "s3://b/p"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
                 "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
                 "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m.tar.gz"},
                 "FinalMetricDataList": [{"MetricName": "validation:roc_auc", "Value": 0.83, "Timestamp": ENDED}]},
                {"TrainingJobName": "pipelines-p1-train"},
            )  # fmt: skip
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
        (f"{prefix}/p1a2b3c4d5e6/ResolveIncumbent/resolved/resolved.json", RESOLVED),
        (f"{prefix}/0ld3r0ld3r00/Evaluate/evaluation/evaluation.json", EVALUATION),
    ):
        body = json.dumps(document).encode()
        aws.s3.add_response(
            "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))}, {"Bucket": BUCKET, "Key": key}
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
        f"{PIPELINE} p1a2b3c4d5e6", "FINISHED", millis(STARTED), millis(ENDED)
    )  # fmt: skip
    # The local record's tags (mlops/tracking.py), and the execution's ARN and display name.
    assert parent.tags == {
        "mlflow.runName": f"{PIPELINE} p1a2b3c4d5e6",
        "mlops.role": "record",
        "mlops.execution_id": "p1a2b3c4d5e6",
        "mlops.execution_arn": EXECUTION_ARN,
        "mlops.display_name": "dataset-2026-11-20-1a2b3c4d",
        "mlops.pipeline": PIPELINE,
        "mlops.status": "Succeeded",
        "mlops.dataset": DATASET,
        "mlops.registered_model_package_arn": PACKAGE_ARN,
        "mlops.registered_version": "7",
    }
    assert parent.params == PARAMETERS
    assert parent.metrics == [("seconds", 672.0, millis(ENDED), 0)]
    children = mlflow.children(parent)
    assert list(children) == ["ResolveIncumbent", "Train", "Evaluate", "RegisterModel"]
    assert {run.status for run in children.values()} == {"FINISHED"}
    evaluate = children["Evaluate"]
    # The property file's numbers, named as the local engine names them (NaN, None, text and yes/no are not metrics).
    assert sorted(evaluate.metrics) == [
        ("Evaluation.candidate.roc_auc", 0.8196, millis(ENDED), 0),
        ("Evaluation.candidate.rows", 392.0, millis(ENDED), 0),
        ("Evaluation.candidate_score", 0.8196, millis(ENDED), 0),
        ("seconds", 672.0, millis(ENDED), 0),
    ]
    assert evaluate.params == {"cache_hit": "True", "status": "Succeeded"}
    assert {key: evaluate.tags[key] for key in ("mlops.step_type", "mlops.reused_from", "mlops.job")} == {
        "mlops.step_type": "Processing",
        "mlops.reused_from": "0ld3r0ld3r00",
        "mlops.job": "pipelines-0ld-eval",
    }
    assert evaluate.tags["mlops.execution_id"] == "p1a2b3c4d5e6"
    assert {key for key, *_ in children["ResolveIncumbent"].metrics} == {"Resolved.model_package_version", "seconds"}
    train = children["Train"]
    assert ("validation:roc_auc", 0.83, millis(ENDED), 0) in train.metrics
    assert train.tags["mlops.step_type"] == "Training" and train.params["cache_hit"] == "False"
    assert children["RegisterModel"].tags["mlops.registered_version"] == "7"


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
    assert mlflow.requests.count(("POST", "runs/create")) == 2 + handler.HTTP_ATTEMPTS  # parent, Resolve, Train x3
    [parent] = mlflow.parents()
    assert parent.status == "RUNNING"

    mlflow._runs_create = original  # type: ignore[method-assign]
    expect_execution(aws)
    result = handler.handler(status_event(), CONTEXT)

    assert (result["status"], result["steps"]) == ("resumed", ["Train", "Evaluate", "RegisterModel"])
    assert mlflow.parents() == [parent] and parent.status == "FINISHED"
    children = mlflow.children(parent)
    assert sorted(children) == ["Evaluate", "RegisterModel", "ResolveIncumbent", "Train"]
    assert len(mlflow.runs) == 5
    assert len(children["ResolveIncumbent"].metrics) == 2  # written once, not again by the second delivery


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


def test_a_reports_numbers_become_metrics_as_the_local_engine_names_them():
    found = run_structure().numbers(
        {"a b": {"c/d": 1, "e": True}, "n": None, "inf": float("inf"), "l": [1], "t": "v"}, "X"
    )
    assert found == {"X.a b.c/d": 1.0}


def test_the_tracked_reports_are_the_property_files_of_the_synthesized_definitions():
    """Read from the committed template snapshots (tests/infra/test_snapshots.py keeps them current): no synth here."""
    declared = set()
    for unit in ("dev", "prod"):
        template = json.loads((REPO_ROOT / "tests" / "infra" / "snapshots" / unit / "Pipelines.json").read_text())
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::SageMaker::Pipeline":
                continue
            body = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
            for step in _all_steps(json.loads(body)["Steps"]):
                declared |= {
                    (
                        step["Name"],
                        declared_file["OutputName"],
                        declared_file["FilePath"],
                        declared_file["PropertyFileName"],
                    )
                    for declared_file in step.get("PropertyFiles", [])
                }
    tracked = {(step, *entry) for step, entry in run_structure().TRACKED_REPORTS.items()}
    assert tracked == declared


def _all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step, also those inside a condition's branches."""
    for step in steps:
        yield step
        arguments = step.get("Arguments", {})
        yield from _all_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))
