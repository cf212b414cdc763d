"""The helpers alone: tags reach CDK's own provider resources; checker exceptions accumulate with their reasons."""

from __future__ import annotations

import pytest
from aws_cdk import CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from platform_constructs.compliance import (
    AUTO_DELETE_PROVIDER_ID,
    annotate_auto_delete_provider,
    cfn_resource,
    ignore_cfn_lint,
    skip_checkov,
)
from platform_constructs.tagging import apply_tags
from tests.infra.constructs.conftest import only

TAGS = {"project": "p", "owner": "o"}


def disposable_bucket(stack: Stack) -> s3.Bucket:
    """A bucket with auto-delete: CDK adds its provider role and function as plain CfnResources."""
    return s3.Bucket(stack, "Bucket", removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=True)


def test_tags_reach_every_resource_including_cdks_provider_resources(stack: Stack) -> None:
    disposable_bucket(stack)
    apply_tags(stack, TAGS)
    template = Template.from_stack(stack)
    expected = [{"Key": "owner", "Value": "o"}, {"Key": "project", "Value": "p"}]
    for resource_type in ("AWS::S3::Bucket", "AWS::IAM::Role", "AWS::Lambda::Function"):
        _, resource = only(template.find_resources(resource_type))
        tags = [t for t in resource["Properties"]["Tags"] if not t["Key"].startswith("aws-cdk:")]
        assert sorted(tags, key=lambda t: t["Key"]) == expected, resource_type


def test_checkov_skips_and_cfn_lint_ignores_accumulate_with_their_reasons(stack: Stack) -> None:
    queue = cfn_resource(sqs.Queue(stack, "Queue").node.default_child, sqs.CfnQueue)
    skip_checkov(queue, CKV_1="first reason")
    skip_checkov(queue, CKV_2="second reason")
    ignore_cfn_lint(queue, "W1", "why W1")
    ignore_cfn_lint(queue, "W2", "why W2")
    _, resource = only(Template.from_stack(stack).find_resources("AWS::SQS::Queue"))
    assert resource["Metadata"]["checkov"] == {
        "skip": [{"id": "CKV_1", "comment": "first reason"}, {"id": "CKV_2", "comment": "second reason"}]
    }
    assert resource["Metadata"]["cfn-lint"] == {
        "config": {"ignore_checks": ["W1", "W2"]},
        "reasons": {"W1": "why W1", "W2": "why W2"},
    }


def test_auto_delete_provider_is_annotated_when_present_and_ignored_otherwise(stack: Stack) -> None:
    annotate_auto_delete_provider(stack)  # no provider yet: nothing to do, no error
    disposable_bucket(stack)
    annotate_auto_delete_provider(stack)
    handler = stack.node.find_child(AUTO_DELETE_PROVIDER_ID).node.find_child("Handler")
    _, function = only(Template.from_stack(stack).find_resources("AWS::Lambda::Function"))
    assert [s["id"] for s in function["Metadata"]["checkov"]["skip"]] == ["CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"]
    assert function["Metadata"]["cfn-lint"]["config"]["ignore_checks"] == ["W3005"]
    assert isinstance(handler, CfnResource)


def test_cfn_resource_refuses_the_wrong_type(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "Bucket")
    with pytest.raises(TypeError, match="expected a CfnQueue, got CfnBucket"):
        cfn_resource(bucket.node.default_child, sqs.CfnQueue)
