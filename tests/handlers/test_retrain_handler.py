"""The retraining function against botocore Stubber: it starts training only on a newer dataset and an idle pipeline."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from types import ModuleType

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tests.helpers import REPO_ROOT, load_module

TRAINING = "churn-prod-training"
GROUP = "churn-prod-models"
LANDING = "churn-prod-landing"
TOPIC = "arn:aws:sns:eu-west-1:333333333333:churn-prod-notifications"
PACKAGE = f"arn:aws:sagemaker:eu-west-1:333333333333:model-package/{GROUP}/4"
OLD, NEW = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
ALARM = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "detail": {
        "alarmName": "churn-prod-Monitoring-DriftAlarmtenuremonths-1A2B",
        "state": {"value": "ALARM", "reason": "Threshold Crossed: 0.42 > 0.1", "timestamp": "2026-11-29T06:00:00Z"},
        "configuration": {
            "metrics": [{"metricStat": {"metric": {"namespace": "aws/sagemaker/Endpoints/data-metrics"}}}]
        },
    },
}
DISPLAY_NAME = (
    "retrain-"
    + hashlib.sha256(b"alarm:churn-prod-Monitoring-DriftAlarmtenuremonths-1A2B:2026-11-29T06:00:00Z").hexdigest()[:16]
)


@pytest.fixture
def retrain(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> tuple[ModuleType, dict[str, Stubber]]:
    values = {
        "TRAINING_PIPELINE": TRAINING,
        "LANDING_BUCKET": LANDING,
        "DATASET_PREFIX": "datasets/",
        "MARKER_NAME": "_SUCCESS",
        "MODEL_PACKAGE_GROUP": GROUP,
        "TOPIC_ARN": TOPIC,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    module = load_module("retrain_handler", REPO_ROOT / "lambda" / "retrain" / "handler.py")
    stubbers = {}
    for service in ("sagemaker", "s3", "sns"):
        module._clients[service] = boto3.client(service, region_name="eu-west-1")
        stubbers[service] = Stubber(module._clients[service])
        stubbers[service].activate()
    return module, stubbers


def expect_runs(sagemaker: Stubber, *runs: tuple[str, str]) -> None:
    """The training pipeline's recent executions: (display name, status)."""
    summaries = [
        {
            "PipelineExecutionArn": f"arn:aws:sagemaker:eu-west-1:333333333333:pipeline/{TRAINING}/execution/{n}",
            "PipelineExecutionDisplayName": name,
            "PipelineExecutionStatus": status,
        }
        for n, (name, status) in enumerate(runs)
    ]
    sagemaker.add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": summaries},
        {"PipelineName": TRAINING, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 50},
    )


def expect_datasets_and_incumbent(s3: Stubber, sagemaker: Stubber, newest: str) -> None:
    """The landing bucket holds datasets v1 (landed OLD) and `newest` (landed NEW); the incumbent trained on v1."""
    contents = [
        {"Key": "datasets/v1/part-0.csv", "LastModified": OLD},
        {"Key": "datasets/v1/_SUCCESS", "LastModified": OLD},
        {"Key": f"datasets/{newest}/_SUCCESS", "LastModified": NEW if newest != "v1" else OLD},
    ]
    s3.add_response("list_objects_v2", {"Contents": contents}, {"Bucket": LANDING, "Prefix": "datasets/"})
    sagemaker.add_response(
        "list_model_packages",
        {
            "ModelPackageSummaryList": [
                {
                    "ModelPackageArn": PACKAGE,
                    "ModelPackageStatus": "Completed",
                    "CreationTime": OLD,
                    "ModelPackageGroupName": GROUP,
                }
            ]
        },
        {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 1,
        },
    )
    sagemaker.add_response(
        "describe_model_package",
        {
            "ModelPackageName": GROUP,
            "ModelPackageArn": PACKAGE,
            "CreationTime": OLD,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "CustomerMetadataProperties": {"dataset": f"s3://{LANDING}/datasets/v1/"},
        },
        {"ModelPackageName": PACKAGE},
    )


def expect_start(sagemaker: Stubber) -> None:
    sagemaker.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": f"arn:aws:sagemaker:eu-west-1:333333333333:pipeline/{TRAINING}/execution/new"},
        {
            "PipelineName": TRAINING,
            "PipelineExecutionDisplayName": DISPLAY_NAME,
            "PipelineExecutionDescription": ANY,
            "PipelineParameters": [
                {"Name": "InputDataUri", "Value": f"s3://{LANDING}/datasets/v2/"},
                {"Name": "ExperimentId", "Value": "retrain-v2"},
            ],
            "ClientRequestToken": ANY,
        },
    )


def test_a_newer_dataset_starts_exactly_one_training_run(retrain) -> None:
    module, stub = retrain
    expect_runs(stub["sagemaker"], ("dataset-v1-1234abcd", "Succeeded"))
    expect_datasets_and_incumbent(stub["s3"], stub["sagemaker"], newest="v2")
    expect_start(stub["sagemaker"])

    result = module.handler(ALARM, None)

    assert result["status"] == "started" and result["dataset"] == f"s3://{LANDING}/datasets/v2/"
    for stubber in stub.values():
        stubber.assert_no_pending_responses()  # one start, no notification


def test_the_incumbents_own_dataset_only_notifies_with_the_evidence(retrain) -> None:
    module, stub = retrain
    expect_runs(stub["sagemaker"])
    expect_datasets_and_incumbent(stub["s3"], stub["sagemaker"], newest="v1")
    published: list[str] = []
    stub["sns"].add_response(
        "publish", {"MessageId": "m-1"}, {"TopicArn": TOPIC, "Subject": module.SUBJECT, "Message": ANY}
    )
    module._clients["sns"].meta.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: published.append(params["Message"])
    )

    result = module.handler(ALARM, None)

    assert result["status"] == "notified"
    message = json.loads(published[0])
    assert module.SUBJECT == "drift detected; needs fresh labelled data"
    assert message["evidence"].startswith("alarm churn-prod-Monitoring-DriftAlarmtenuremonths-1A2B: Threshold")
    assert message["newest_dataset"] == message["incumbent_dataset"] == f"s3://{LANDING}/datasets/v1/"
    stub["sagemaker"].assert_no_pending_responses()  # nothing started


def test_a_repeated_alarm_event_starts_nothing_more(retrain) -> None:
    module, stub = retrain
    expect_runs(stub["sagemaker"])
    expect_datasets_and_incumbent(stub["s3"], stub["sagemaker"], newest="v2")
    expect_start(stub["sagemaker"])
    first = module.handler(ALARM, None)
    expect_runs(stub["sagemaker"], (DISPLAY_NAME, "Executing"))  # the run the first delivery started

    second = module.handler(ALARM, None)

    assert first["status"] == "started" and second == {"status": "duplicate", "display_name": DISPLAY_NAME}
    for stubber in stub.values():
        stubber.assert_no_pending_responses()


def test_a_training_run_in_progress_means_no_start_but_a_notification(retrain) -> None:
    module, stub = retrain
    expect_runs(stub["sagemaker"], ("dataset-v2-99aa00bb", "Executing"))
    expect_datasets_and_incumbent(stub["s3"], stub["sagemaker"], newest="v2")
    stub["sns"].add_response(
        "publish", {"MessageId": "m-2"}, {"TopicArn": TOPIC, "Subject": module.SUBJECT, "Message": ANY}
    )

    result = module.handler(ALARM, None)

    assert result["status"] == "notified" and result["reason"].startswith("training execution(s) already running")
    for stubber in stub.values():
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "event",
    [
        {**ALARM, "detail": {**ALARM["detail"], "state": {"value": "OK"}}},
        {**ALARM, "detail": {**ALARM["detail"], "configuration": {"metrics": []}}},
        {"detail-type": "Object Created", "detail": {}},
    ],
    ids=["back-to-ok", "not-a-monitoring-metric", "other-event"],
)
def test_other_events_are_ignored_without_a_call(retrain, event: dict) -> None:
    module, _ = retrain
    assert module.handler(event, None) == {"status": "ignored"}
