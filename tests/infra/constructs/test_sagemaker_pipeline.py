"""SageMakerPipeline alone: placeholders become Fn::Sub variables; a large definition goes to S3 instead."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from platform_constructs.sagemaker_pipeline import SageMakerPipeline
from tests.infra.constructs.conftest import only

DEFINITION = json.dumps({"Version": "2020-12-01", "RoleArn": "ROLE-PLACEHOLDER", "Out": "s3://BUCKET-PLACEHOLDER/x"})


def build(stack: Stack, definition: str = DEFINITION, **changes: Any) -> SageMakerPipeline:
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    props: dict[str, Any] = {
        "pipeline_name": "any-pipeline",
        "description": "A pipeline",
        "definition": definition,
        "substitutions": {
            "PipelineRole": ("ROLE-PLACEHOLDER", role.role_arn),
            "OutputBucket": ("BUCKET-PLACEHOLDER", "my-bucket"),
        },
        "role": role,
        "definitions_bucket": s3.Bucket.from_bucket_arn(stack, "Definitions", Fn.import_value("definitions-arn")),
        "definitions_bucket_export": "definitions-arn",
        "assets_bucket_name": "assets-bucket",
    } | changes
    return SageMakerPipeline(stack, "Pipeline", **props)


def test_each_placeholder_becomes_a_deploy_time_value(stack: Stack) -> None:
    pipeline = build(stack)
    template = Template.from_stack(stack)
    role_id, _ = only(template.find_resources("AWS::IAM::Role"))
    _, resource = only(template.find_resources("AWS::SageMaker::Pipeline"))
    props = resource["Properties"]
    assert (props["PipelineName"], props["PipelineDisplayName"]) == ("any-pipeline", "any-pipeline")
    assert props["PipelineDescription"] == "A pipeline"
    assert props["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    text, variables = props["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert json.loads(text) == {"Version": "2020-12-01", "RoleArn": "${PipelineRole}", "Out": "s3://${OutputBucket}/x"}
    assert variables == {"PipelineRole": {"Fn::GetAtt": [role_id, "Arn"]}, "OutputBucket": "my-bucket"}
    assert pipeline.inline and pipeline.definition == DEFINITION
    template.resource_count_is("Custom::CDKBucketDeployment", 0)


def test_a_definition_over_the_limit_is_written_to_the_bucket_under_a_content_hash(stack: Stack) -> None:
    pipeline = build(stack, inline_limit_bytes=10)
    template = Template.from_stack(stack)
    assert not pipeline.inline
    _, resource = only(template.find_resources("AWS::SageMaker::Pipeline"))
    location = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionS3Location"]
    assert location["Key"].startswith("pipeline-definitions/any-pipeline/") and location["Key"].endswith(".json")
    _, deployment = only(template.find_resources("Custom::CDKBucketDeployment"))
    assert deployment["Properties"]["Prune"] is False
    assert deployment["Properties"]["RetainOnDelete"] is True
    # The deployment resolves the same Fn::Sub at deploy time.
    assert "Fn::Sub" in json.dumps(deployment["Properties"]["SourceMarkers"])


def test_a_dollar_brace_in_the_definition_is_refused(stack: Stack) -> None:
    with pytest.raises(ValueError, match="Fn::Sub would misread"):
        build(stack, definition=DEFINITION.replace("x", "${x}"))


def test_a_placeholder_missing_from_the_definition_is_refused(stack: Stack) -> None:
    with pytest.raises(ValueError, match="'BUCKET-PLACEHOLDER' does not occur"):
        build(stack, definition=DEFINITION.replace("BUCKET-PLACEHOLDER", "fixed-bucket"))
