"""ExecutionTracking alone: the MLflow App and its role, the rule, the function's exact grants, DLQ and alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from platform_constructs.execution_tracking import ExecutionTracking
from tests.infra.constructs.conftest import ACCOUNT, REGION, only, statements

EXPORT = "any-artifacts-bucket-arn"
JOBS = [
    json.dumps(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}-job/pipelines-*") for kind in ("processing", "training")
]
IMPORTED_BUCKET = {"Fn::ImportValue": EXPORT}


def build(stack: Stack, **changes: Any) -> Template:
    props: dict[str, Any] = {
        "app_name": "any-mlflow",
        "pipeline_names": ["any-training", "any-evaluation"],
        "artifacts_bucket_name": "any-artifacts",
        "artifacts_bucket_arn_export": EXPORT,
        "data_key": kms.Key.from_key_arn(stack, "Key", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd"),
        "log_retention_days": 14,
        "removal_policy": RemovalPolicy.RETAIN,
    } | changes
    ExecutionTracking(stack, "Tracking", **props)
    return Template.from_stack(stack)


def objects(prefix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [IMPORTED_BUCKET, f"/{prefix}*"]]}


def grants(template: Template, role_id: str) -> set[tuple[str, str]]:
    """(action, resource) of every Allow statement of a role, resources as JSON."""
    found = set()
    for statement in statements(template.to_json(), role_id):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        found |= {(a, json.dumps(r, sort_keys=True)) for a in actions for r in resources}
    return found


@pytest.mark.parametrize(("policy", "deletion"), [(RemovalPolicy.RETAIN, "Retain"), (RemovalPolicy.DESTROY, "Delete")])
def test_the_mlflow_app_stores_artifacts_in_its_prefix_of_the_artifacts_bucket(stack: Stack, policy, deletion) -> None:
    template = build(stack, removal_policy=policy)
    _, app = only(template.find_resources("AWS::SageMaker::MlflowApp"))
    role_id = app["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert app["Properties"] | {"RoleArn": None} == {
        "Name": "any-mlflow",
        "ArtifactStoreUri": "s3://any-artifacts/mlflow/",
        "ModelRegistrationMode": "AutoModelRegistrationDisabled",
        "RoleArn": None,
    }
    assert app["DeletionPolicy"] == deletion
    key = json.dumps(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd")
    assert grants(template, role_id) == {
        *((action, json.dumps(objects("mlflow/"), sort_keys=True))
          for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")),
        ("s3:ListBucket", json.dumps(IMPORTED_BUCKET)),
        ("s3:GetBucketLocation", json.dumps(IMPORTED_BUCKET)),
        ("kms:Decrypt", key),
        ("kms:GenerateDataKey", key),
    }  # fmt: skip
    role = template.to_json()["Resources"][role_id]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_the_rule_matches_terminal_status_changes_of_the_units_pipelines_only(stack: Stack) -> None:
    template = build(stack)
    function_id, _ = only(template.find_resources("AWS::Lambda::Function"))
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    _, rule = only(template.find_resources("AWS::Events::Rule"))
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {
            "pipelineArn": [
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/any-training",
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/any-evaluation",
            ],
            "currentPipelineExecutionStatus": ["Succeeded", "Failed", "Stopped"],
        },
    }
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}


def test_the_function_may_read_executions_and_reports_and_write_runs_to_its_app_only(stack: Stack) -> None:
    template = build(stack)
    _, function = only(template.find_resources("AWS::Lambda::Function"))
    props = function["Properties"]
    app_id, _ = only(template.find_resources("AWS::SageMaker::MlflowApp"))
    log_group_id, _ = only(template.find_resources("AWS::Logs::LogGroup"))
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    queue = json.dumps({"Fn::GetAtt": [queue_id, "Arn"]}, sort_keys=True)
    assert props["Environment"]["Variables"] == {
        "MLFLOW_TRACKING_ARN": {"Fn::GetAtt": [app_id, "Arn"]},
        "PIPELINE_NAMES": "any-training,any-evaluation",
        "ARTIFACTS_BUCKET": "any-artifacts",
    }
    assert props["ReservedConcurrentExecutions"] == 1  # deliveries of one execution never race
    app = json.dumps({"Fn::GetAtt": [app_id, "Arn"]}, sort_keys=True)
    executions = [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{name}/execution/*"
                  for name in ("any-training", "any-evaluation")]  # fmt: skip
    log_group = json.dumps({"Fn::GetAtt": [log_group_id, "Arn"]}, sort_keys=True)
    assert grants(template, props["Role"]["Fn::GetAtt"][0]) == {
        *((action, json.dumps(arn)) for arn in executions for action in (
            "sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps",
            "sagemaker:ListPipelineParametersForExecution")),
        *((f"sagemaker:Describe{kind}Job", job) for job in JOBS for kind in ("Processing", "Training")),
        ("s3:GetObject", json.dumps(objects("pipelines/"), sort_keys=True)),
        ("kms:Decrypt", json.dumps(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd")),
        *((action, app) for action in (
            "sagemaker:CallMlflowAppApi", "sagemaker-mlflow:GetExperimentByName", "sagemaker-mlflow:CreateExperiment",
            "sagemaker-mlflow:SearchRuns", "sagemaker-mlflow:CreateRun", "sagemaker-mlflow:LogBatch",
            "sagemaker-mlflow:UpdateRun")),
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
        # CDK's grant for the on-failure destination: the function itself hands a failed event to its DLQ.
        *((action, queue) for action in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")),
    }  # fmt: skip


def test_failures_are_retried_kept_in_the_dlq_and_alarm(stack: Stack) -> None:
    template = build(stack)
    function_id, _ = only(template.find_resources("AWS::Lambda::Function"))
    queue_id, _ = only(template.find_resources("AWS::SQS::Queue"))
    _, invoke_config = only(template.find_resources("AWS::Lambda::EventInvokeConfig"))
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 2
    assert invoke_config["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}
    }
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    watched = {
        (
            alarm["Properties"]["Namespace"],
            alarm["Properties"]["MetricName"],
            json.dumps(alarm["Properties"]["Dimensions"]),
        )
        for alarm in alarms.values()
    }
    assert watched == {
        ("AWS/Lambda", "Errors", json.dumps([{"Name": "FunctionName", "Value": {"Ref": function_id}}])),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
         json.dumps([{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}])),
    }  # fmt: skip
    assert {alarm["Properties"]["Threshold"] for alarm in alarms.values()} == {1}
