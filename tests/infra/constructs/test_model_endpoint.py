"""ModelEndpoint and ModelExecutionRole alone: rollout bounds, no rollout without a policy, exact object grants."""

from __future__ import annotations

import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from platform_constructs.model_endpoint import ModelEndpoint, Rollout
from platform_constructs.model_execution_role import ModelExecutionRole
from tests.infra.constructs.conftest import only

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-dev-models/3"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"


def endpoint(stack, rollout: Rollout | None) -> dict:
    ModelEndpoint(
        stack,
        "Serving",
        endpoint_name="churn-dev-endpoint",
        model_package_arn=ARN,
        version=3,
        role_arn="arn:aws:iam::123456789012:role/model",
        instance_type="ml.m5.large",
        instance_count=1,
        data_key=kms.Key(stack, "Key"),
        capture_destination="s3://artifacts/data-capture",
        capture_sampling_percentage=100,
        latency_p99_ms=250,
        rollout=rollout,
    )
    return Template.from_stack(stack).find_resources("AWS::SageMaker::Endpoint")


@pytest.mark.parametrize(("bake", "timeout"), [(0, 1800), (600, 3600), (3600, 12_600)])
def test_the_rollout_timeout_covers_both_bakes_and_stays_in_the_api_range(stack, bake: int, timeout: int) -> None:
    _, resource = only(endpoint(stack, Rollout(canary_percent=10, bake_seconds=bake)))
    policy = resource["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["MaximumExecutionTimeoutInSeconds"] == timeout
    assert policy["TerminationWaitInSeconds"] == bake


def test_without_a_rollout_the_endpoint_keeps_sagemakers_default_update(stack) -> None:
    _, resource = only(endpoint(stack, None))
    assert "DeploymentConfig" not in resource["Properties"]


def test_the_model_role_refuses_a_model_object_that_is_not_an_s3_object(stack) -> None:
    with pytest.raises(ValueError, match="is not an s3://<bucket>/<key> object URI"):
        ModelExecutionRole(
            stack,
            "Role",
            endpoint_name="churn-dev-endpoint",
            image_uri=IMAGE,
            model_objects=["s3://bucket-only"],
            data_key=kms.Key(stack, "Key"),
            artifacts_bucket_arn_export="churn-dev-artifacts-bucket-arn",
            capture_prefix="data-capture/churn-dev-endpoint/",
        )
