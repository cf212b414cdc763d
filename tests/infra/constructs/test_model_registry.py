"""ModelRegistry alone: a named model package group whose removal policy is the caller's."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk.assertions import Template

from platform_constructs.model_registry import ModelRegistry
from tests.infra.constructs.conftest import only


def test_group_has_the_given_name_and_description_and_no_resource_policy(stack: Stack) -> None:
    registry = ModelRegistry(
        stack, "Registry", group_name="team-a-models", description="Versions of A", removal_policy=RemovalPolicy.RETAIN
    )
    group_id, group = only(Template.from_stack(stack).find_resources("AWS::SageMaker::ModelPackageGroup"))
    assert group["Properties"] == {
        "ModelPackageGroupName": "team-a-models",
        "ModelPackageGroupDescription": "Versions of A",
    }
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"
    assert registry.group_name == "team-a-models"
    assert stack.resolve(registry.group_arn) == {"Fn::GetAtt": [group_id, "ModelPackageGroupArn"]}


def test_a_disposable_group_is_deleted_with_its_stack(stack: Stack) -> None:
    ModelRegistry(stack, "Registry", group_name="sandbox-models", description="d", removal_policy=RemovalPolicy.DESTROY)
    _, group = only(Template.from_stack(stack).find_resources("AWS::SageMaker::ModelPackageGroup"))
    assert group["DeletionPolicy"] == "Delete"
