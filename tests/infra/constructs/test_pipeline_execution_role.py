"""PipelineExecutionRole alone: every statement follows from the props (prefixes, image, code objects, group)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from platform_constructs.pipeline_execution_role import PipelineExecutionRole, repository_arn
from tests.infra.constructs.conftest import ACCOUNT, REGION, only, statements

IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/some-framework:2.1-cpu-py3"


def build(stack: Stack, **changes: Any) -> tuple[dict[str, dict[str, Any]], str]:
    """{Sid: statement} of the role built with these props, and the role's logical id."""
    props: dict[str, Any] = {
        "model_package_group_name": "team-a-models",
        "data_key": kms.Key(stack, "Key"),
        "artifacts_bucket_arn_export": "team-a-artifacts-arn",
        "training_data_bucket_arn_export": "team-a-landing-arn",
        "read_prefixes": ["incoming/", "recent/"],
        "code_objects": [("assets-bucket", "abc.py"), ("assets-bucket", "def.tar.gz")],
        "image_uri": IMAGE,
        "job_name_prefix": "jobs-",
        "artifacts_prefix": "runs/",
    } | changes
    PipelineExecutionRole(stack, "ExecutionRole", **props)
    template = Template.from_stack(stack).to_json()
    role_id, _ = only({k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"})
    return {s["Sid"]: s for s in statements(template, role_id) if "Sid" in s}, role_id


def test_job_permissions_use_the_job_name_prefix(stack: Stack) -> None:
    by_sid, _ = build(stack)
    assert by_sid["RunPipelineJobs"]["Resource"] == [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/jobs-*",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/jobs-*",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/jobs-*",
    ]
    # The scoring pipeline's Model step: Pipelines names the model, so no job prefix applies.
    assert sorted(by_sid["CreateScoringModels"]["Action"]) == [
        "sagemaker:AddTags",
        "sagemaker:CreateModel",
        "sagemaker:DescribeModel",
    ]
    assert by_sid["CreateScoringModels"]["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/*"


def test_artifact_permissions_use_the_artifacts_prefix_of_the_exported_bucket(stack: Stack) -> None:
    by_sid, _ = build(stack)
    assert by_sid["ReadWritePipelineArtifacts"]["Resource"] == {
        "Fn::Join": ["", [{"Fn::ImportValue": "team-a-artifacts-arn"}, "/runs/*"]]
    }
    assert by_sid["ListPipelineArtifacts"]["Resource"] == {"Fn::ImportValue": "team-a-artifacts-arn"}
    assert by_sid["ListPipelineArtifacts"]["Condition"] == {"StringLike": {"s3:prefix": ["runs/*"]}}


def test_landed_data_is_readable_under_the_read_prefixes_only(stack: Stack) -> None:
    by_sid, _ = build(stack)
    assert by_sid["ReadLandedData"]["Resource"] == [
        {"Fn::Join": ["", [{"Fn::ImportValue": "team-a-landing-arn"}, f"/{prefix}*"]]}
        for prefix in ("incoming/", "recent/")
    ]
    assert by_sid["ListLandedData"]["Condition"] == {"StringLike": {"s3:prefix": ["incoming/*", "recent/*"]}}


def test_step_code_is_exactly_the_given_objects(stack: Stack) -> None:
    by_sid, _ = build(stack)
    assert by_sid["ReadStepCode"]["Resource"] == [
        "arn:aws:s3:::assets-bucket/abc.py",
        "arn:aws:s3:::assets-bucket/def.tar.gz",
    ]
    assert by_sid["ListStepCode"]["Resource"] == "arn:aws:s3:::assets-bucket"
    assert by_sid["ListStepCode"]["Condition"] == {"StringEquals": {"s3:prefix": ["abc.py", "def.tar.gz"]}}


def test_image_is_pulled_from_the_repository_of_the_image_uri(stack: Stack) -> None:
    by_sid, _ = build(stack)
    assert by_sid["PullFrameworkImage"]["Resource"] == "arn:aws:ecr:eu-west-1:763104351884:repository/some-framework"


def test_models_are_registered_in_the_given_group_only(stack: Stack) -> None:
    by_sid, _ = build(stack)
    assert by_sid["RegisterAndReadModels"]["Resource"] == [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/team-a-models",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/team-a-models/*",
    ]


def test_role_is_assumed_by_sagemaker_of_this_account_and_passes_only_itself(stack: Stack) -> None:
    by_sid, role_id = build(stack)
    role = Template.from_stack(stack).to_json()["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT}
    }
    assert "ManagedPolicyArns" not in role
    assert by_sid["PassSelfToJobs"]["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}


@pytest.mark.parametrize(
    ("uri", "arn"),
    [
        (IMAGE, "arn:aws:ecr:eu-west-1:763104351884:repository/some-framework"),
        ("1.dkr.ecr.us-east-1.amazonaws.com/a/b@sha256:0f", "arn:aws:ecr:us-east-1:1:repository/a/b"),
        ("1.dkr.ecr.cn-north-1.amazonaws.com.cn/repo", "arn:aws:ecr:cn-north-1:1:repository/repo"),
    ],
)
def test_repository_arn_of_an_image_uri(uri: str, arn: str) -> None:
    assert repository_arn(uri, "aws") == arn


@pytest.mark.parametrize(
    "uri", ["public.ecr.aws/x/y:1", "docker.io/library/python:3", "1.dkr.ecr.eu-west-1.amazonaws.com/"]
)
def test_repository_arn_refuses_what_is_not_an_ecr_image(uri: str) -> None:
    with pytest.raises(ValueError, match="is not an ECR image URI"):
        repository_arn(uri, "aws")
