"""The handler and the marker rule against moto: one execution per dataset, and S3 -> EventBridge routing.

moto delivers S3 events to EventBridge and evaluates rule patterns (including `wildcard`), so routing is
tested end to end with an SQS queue standing in for the Lambda target (moto cannot invoke Lambda without
Docker). Its `test_event_pattern` is a stub that returns nothing, so it cannot be used to check patterns.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.handlers.conftest import CONTEXT, LANDING_BUCKET, MARKER, PIPELINE_NAME, PREFIX, REGION, marker_event

MINIMAL_DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "InputDataUri", "Type": "String"}, {"Name": "ExperimentId", "Type": "String"}],
    "Steps": [],
}


@pytest.fixture
def moto_pipeline(aws_env: None):
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_pipeline(
            PipelineName=PIPELINE_NAME,
            PipelineDefinition=json.dumps(MINIMAL_DEFINITION),
            RoleArn="arn:aws:iam::123456789012:role/churn-dev-pipeline",
        )
        yield sagemaker


def executions(sagemaker: Any) -> list[dict[str, Any]]:
    return sagemaker.list_pipeline_executions(PipelineName=PIPELINE_NAME)["PipelineExecutionSummaries"]


# --- idempotency -------------------------------------------------------------------------------------------


def test_same_marker_delivered_twice_starts_one_execution(handler_module, moto_pipeline, capsys):
    event = marker_event(f"{PREFIX}churn-2024-06-01/{MARKER}")

    first = handler_module.handler(event, CONTEXT)
    second = handler_module.handler(event, CONTEXT)

    assert first["status"] == "started"
    assert second == {
        "status": "duplicate",
        "dataset_id": "churn-2024-06-01",
        "execution_arn": first["execution_arn"],
        "execution_status": "Succeeded",  # moto finishes executions at once
    }
    [execution] = executions(moto_pipeline)
    assert execution["PipelineExecutionArn"] == first["execution_arn"]
    assert execution["PipelineExecutionDisplayName"] == handler_module.execution_display_name("churn-2024-06-01")
    parameters = moto_pipeline.list_pipeline_parameters_for_execution(PipelineExecutionArn=first["execution_arn"])
    assert {p["Name"]: p["Value"] for p in parameters["PipelineParameters"]} == {
        "InputDataUri": f"s3://{LANDING_BUCKET}/{PREFIX}churn-2024-06-01/",
        "ExperimentId": "dataset-churn-2024-06-01",
    }
    started, duplicate = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert started["message"] == "pipeline execution started"
    assert duplicate["message"].startswith("duplicate marker")


def test_each_dataset_gets_its_own_execution(handler_module, moto_pipeline):
    for dataset_id in ("churn-2024-06-01", "churn-2024-06-02", "churn.2024.06.01"):
        assert handler_module.handler(marker_event(f"{PREFIX}{dataset_id}/{MARKER}"), CONTEXT)["status"] == "started"

    assert len(executions(moto_pipeline)) == 3


def test_missing_pipeline_is_an_error_that_is_raised(handler_module, aws_env, capsys):
    with mock_aws(), pytest.raises(ClientError, match="Could not find pipeline"):
        handler_module.handler(marker_event(f"{PREFIX}churn-2024-06-01/{MARKER}"), CONTEXT)

    [line] = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (line["level"], line["retryable"], line["pipeline_name"]) == ("ERROR", False, PIPELINE_NAME)


# --- routing: the rule the CDK construct deploys -----------------------------------------------------------


@pytest.fixture
def routed(aws_env: None, event_pattern_module):
    """The landing bucket (versioned, EventBridge on), another bucket, and the marker rule with an SQS spy."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (LANDING_BUCKET, "churn-dev-other"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="marker-spy")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=REGION)
        pattern = event_pattern_module.marker_event_pattern(LANDING_BUCKET, PREFIX, MARKER)
        events.put_rule(Name="dataset-marker", EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule="dataset-marker", Targets=[{"Id": "spy", "Arn": queue_arn}])

        def put(key: str, bucket: str = LANDING_BUCKET) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=b"")

        def delivered() -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(message["Body"]) for message in messages]

        yield put, delivered


def test_only_the_marker_reaches_the_function(routed, handler_module):
    put, delivered = routed
    put(f"{PREFIX}churn-2024-06-01/part-00000.parquet")
    put(f"{PREFIX}churn-2024-06-01/_SUCCESS.tmp")
    put(f"raw/churn-2024-06-01/{MARKER}")
    put(f"{PREFIX}churn-2024-06-01/{MARKER}", bucket="churn-dev-other")
    assert delivered() == []

    put(f"{PREFIX}churn-2024-06-01/{MARKER}")

    [event] = delivered()
    marker = handler_module.parse_marker_event(event, handler_module.SETTINGS)
    assert (marker.bucket, marker.dataset_id) == (LANDING_BUCKET, "churn-2024-06-01")
    assert marker.version_id  # the landing bucket is versioned, so the token comes from the version id


def test_routed_marker_starts_the_pipeline(routed, handler_module):
    put, delivered = routed
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_pipeline(
        PipelineName=PIPELINE_NAME,
        PipelineDefinition=json.dumps(MINIMAL_DEFINITION),
        RoleArn="arn:aws:iam::123456789012:role/churn-dev-pipeline",
    )
    put(f"{PREFIX}churn-2024-06-01/{MARKER}")

    [event] = delivered()

    assert handler_module.handler(event, CONTEXT)["status"] == "started"
    assert len(executions(sagemaker)) == 1


def test_nested_marker_passes_the_rule_and_is_ignored_by_the_handler(routed, handler_module, capsys):
    put, delivered = routed
    put(f"{PREFIX}team/churn-2024-06-01/{MARKER}")

    [event] = delivered()

    assert handler_module.handler(event, CONTEXT) == {"status": "ignored", "reason": "nested_path"}


# --- the pattern itself ------------------------------------------------------------------------------------


def test_pattern_is_exactly_what_the_rule_needs(event_pattern_module):
    assert event_pattern_module.marker_event_pattern("landing", "datasets/", "_SUCCESS") == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": ["landing"]},
            "object": {"key": [{"wildcard": "datasets/*/_SUCCESS"}]},
        },
    }


@pytest.mark.parametrize(
    ("prefix", "marker"),
    [("datasets", "_SUCCESS"), ("", "_SUCCESS"), ("data*/", "_SUCCESS"), ("datasets/", "*"), ("datasets/", "a/b")],
)
def test_pattern_rejects_prefixes_and_markers_that_cannot_delimit_a_dataset(event_pattern_module, prefix, marker):
    with pytest.raises(ValueError):
        event_pattern_module.marker_event_pattern("landing", prefix, marker)
