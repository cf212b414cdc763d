"""TrainingTrigger alone: the rule matches the marker under the given prefix and bucket; it starts one pipeline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from platform_constructs.training_trigger import TrainingTrigger
from tests.infra.constructs.conftest import ACCOUNT, REGION, only, statements

PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/any-training"


def build(stack: Stack, **changes: Any) -> Template:
    props: dict[str, Any] = {
        "landing_bucket": s3.Bucket.from_bucket_name(stack, "Landing", "any-landing"),
        "pipeline_name": "any-training",
        "dataset_prefix": "raw/churn/",
        "marker_name": "READY",
        "reserved_concurrency": 3,
        "log_retention_days": 14,
        "log_removal_policy": RemovalPolicy.DESTROY,
    } | changes
    TrainingTrigger(stack, "Trigger", **props)
    return Template.from_stack(stack)


def test_rule_matches_only_the_marker_under_the_prefix_of_the_bucket(stack: Stack) -> None:
    template = build(stack)
    function_id, _ = only(template.find_resources("AWS::Lambda::Function"))
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    _, rule = only(template.find_resources("AWS::Events::Rule"))
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["any-landing"]}, "object": {"key": [{"wildcard": "raw/churn/*/READY"}]}},
    }
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}


def test_function_is_configured_from_the_props(stack: Stack) -> None:
    template = build(stack)
    _, function = only(template.find_resources("AWS::Lambda::Function"))
    props = function["Properties"]
    assert props["Environment"]["Variables"] == {
        "PIPELINE_NAME": "any-training",
        "LANDING_BUCKET": "any-landing",
        "DATASET_PREFIX": "raw/churn/",
        "MARKER_NAME": "READY",
    }
    assert props["ReservedConcurrentExecutions"] == 3
    _, log_group = only(template.find_resources("AWS::Logs::LogGroup"))
    assert log_group["Properties"]["RetentionInDays"] == 14
    assert log_group["DeletionPolicy"] == "Delete"


def test_failed_invocations_go_to_the_dead_letter_queue(stack: Stack) -> None:
    template = build(stack)
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    _, invoke_config = only(template.find_resources("AWS::Lambda::EventInvokeConfig"))
    assert invoke_config["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}
    }


def test_role_may_start_and_list_that_pipeline_and_write_its_own_logs(stack: Stack) -> None:
    template = build(stack)
    _, function = only(template.find_resources("AWS::Lambda::Function"))
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    log_group_id, _ = only(template.find_resources("AWS::Logs::LogGroup"))
    grants = {
        (action, json.dumps(s["Resource"], sort_keys=True))
        for s in statements(template.to_json(), role_id)
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    log_group = json.dumps({"Fn::GetAtt": [log_group_id, "Arn"]})
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    queue = json.dumps({"Fn::GetAtt": [queue_id, "Arn"]})
    assert grants == {
        ("sagemaker:StartPipelineExecution", json.dumps(PIPELINE_ARN)),
        ("sagemaker:ListPipelineExecutions", json.dumps(PIPELINE_ARN)),
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
        # CDK's grant for the on-failure destination.
        ("sqs:SendMessage", queue),
        ("sqs:GetQueueAttributes", queue),
        ("sqs:GetQueueUrl", queue),
    }


def test_a_prefix_the_handler_could_not_match_fails_at_synth(stack: Stack) -> None:
    with pytest.raises(ValueError, match="dataset prefix"):
        build(stack, dataset_prefix="raw")
