"""EvaluationSchedule alone: props -> one Scheduler schedule, its role scoped to one pipeline and its own DLQ."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk.assertions import Template

from platform_constructs.evaluation_schedule import EvaluationSchedule
from tests.infra.constructs.conftest import ACCOUNT, REGION, only, statements

PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/any-pipeline"


def build(stack: Stack) -> Template:
    EvaluationSchedule(
        stack,
        "Schedule",
        pipeline_name="any-pipeline",
        schedule_expression="rate(1 day)",
        pipeline_parameters={"RunLabel": "nightly", "Threshold": "0.5"},
    )
    return Template.from_stack(stack)


def test_schedule_starts_the_pipeline_with_exactly_the_given_parameters(stack: Stack) -> None:
    template = build(stack)
    _, schedule = only(template.find_resources("AWS::Scheduler::Schedule"))
    role_id, _ = only(template.find_resources("AWS::IAM::Role"))
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(1 day)"
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["Target"] == {
        "Arn": PIPELINE_ARN,
        "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "SageMakerPipelineParameters": {
            "PipelineParameterList": [
                {"Name": "RunLabel", "Value": "nightly"},
                {"Name": "Threshold", "Value": "0.5"},
            ]
        },
        "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}},
    }


def test_role_may_start_that_pipeline_and_write_its_dlq_only(stack: Stack) -> None:
    template = build(stack)
    role_id, role = only(template.find_resources("AWS::IAM::Role"))
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    assert statements(template.to_json(), role_id) == [
        {"Action": "sagemaker:StartPipelineExecution", "Effect": "Allow", "Resource": PIPELINE_ARN},
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [queue_id, "Arn"]}},
    ]
