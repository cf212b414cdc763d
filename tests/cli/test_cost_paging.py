"""The paginated list calls of `mlops cost` and `mlops report --env` go through botocore's paginators (Stubber)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from mlops.aws import AwsCallFailed
from mlops.cost import paging

ARN = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/churn-dev-training/execution/run42"


@pytest.fixture
def sagemaker(aws_env):
    client = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_every_page_is_read_in_order(sagemaker):
    client, stubber = sagemaker
    for index, names in enumerate((["Preprocess", "Train"], ["Evaluate"], ["Register"])):
        request = {"PipelineExecutionArn": ARN, **({"NextToken": f"t{index}"} if index else {})}
        response = {"PipelineExecutionSteps": [{"StepName": name} for name in names]}
        if index < 2:
            response["NextToken"] = f"t{index + 1}"
        stubber.add_response("list_pipeline_execution_steps", response, request)
    steps = paging.execution_steps(client, ARN)
    assert [step["StepName"] for step in steps] == ["Preprocess", "Train", "Evaluate", "Register"]


def test_a_service_that_repeats_its_token_is_one_error_not_a_loop(sagemaker):
    """A hand-written NextToken loop would ask for the same page again and again; the paginator notices."""
    client, stubber = sagemaker
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": [{"StepName": "Preprocess"}], "NextToken": "same"},
        {"PipelineExecutionArn": ARN},
    )
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": [{"StepName": "Train"}], "NextToken": "same"},
        {"PipelineExecutionArn": ARN, "NextToken": "same"},
    )
    with pytest.raises(AwsCallFailed, match=f"^listing the steps of {ARN} failed: .*same next token") as raised:
        paging.execution_steps(client, ARN)
    assert "\n" not in str(raised.value)


def test_a_refused_call_keeps_the_one_line_wording(sagemaker):
    client, stubber = sagemaker
    stubber.add_client_error(
        "list_pipeline_execution_steps", "AccessDeniedException", "not allowed", expected_params=None
    )
    with pytest.raises(AwsCallFailed) as raised:
        paging.execution_steps(client, ARN)
    assert str(raised.value) == (
        f"listing the steps of {ARN} failed: An error occurred (AccessDeniedException) when calling the "
        "ListPipelineExecutionSteps operation: not allowed"
    )
