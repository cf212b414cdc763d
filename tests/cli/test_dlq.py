"""`mlops dlq replay`: moto SQS as the dead-letter queue, moto CloudFormation for stack outputs, Stubber on Invoke."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlops import dlq as dlq_replay
from mlops.aws import NO_CREDENTIALS
from mlops.cli import main
from tests.handlers.conftest import MARKER, PREFIX, REGION, marker_event

FUNCTION_NAME = "churn-dev-start-pipeline"
RAW_EVENT = marker_event(f"{PREFIX}churn-2024-06-01/{MARKER}")
DESTINATION_EVENT = marker_event(f"{PREFIX}churn-2024-06-02/{MARKER}", event_id="second-event")
DESTINATION_RECORD = {
    "version": "1.0",
    "timestamp": "2024-06-01T12:03:00.000Z",
    "requestContext": {
        "requestId": "c9b4c0e5-0000-4000-8000-000000000002",
        "functionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    },
    "requestPayload": DESTINATION_EVENT,
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "responsePayload": {"errorMessage": "Rate exceeded", "errorType": "ClientError"},
}
UNREADABLE_BODIES = [
    "not json at all",
    json.dumps({"hello": "world"}),
    json.dumps({**DESTINATION_RECORD, "requestPayload": "x"}),
]


@pytest.fixture(autouse=True)
def no_long_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto sleeps through WaitTimeSeconds on the replay's last, empty receive: nothing arrives late here."""
    monkeypatch.setattr(dlq_replay, "RECEIVE_WAIT_SECONDS", 0)


@pytest.fixture
def dlq(aws_env: None):
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        yield sqs, sqs.create_queue(QueueName="start-pipeline-dlq")["QueueUrl"]


@pytest.fixture
def lambda_stub():
    client = boto3.client("lambda", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber


def send(sqs: Any, queue_url: str, *bodies: str) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)


def remaining_bodies(sqs: Any, queue_url: str) -> list[str]:
    """Bodies of the messages that are visible right now (kept messages must be visible again)."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return sorted(message["Body"] for message in messages.get("Messages", []))


def expect_invoke(stubber: Stubber, event: dict[str, Any]) -> None:
    stubber.add_response(
        "invoke",
        {"StatusCode": 202},
        {"FunctionName": FUNCTION_NAME, "InvocationType": "Event", "Payload": json.dumps(event).encode()},
    )


def run(sqs, lambda_client, queue_url, *, dry_run=False, max_messages=50) -> tuple[dlq_replay.ReplaySummary, list]:
    lines: list[str] = []
    summary = dlq_replay.replay(
        sqs, lambda_client, queue_url, FUNCTION_NAME, max_messages, dry_run, echo=lines.append, wait_seconds=0
    )
    return summary, lines


def test_both_message_shapes_are_replayed_and_deleted_and_unreadable_ones_kept(dlq, lambda_stub):
    sqs, queue_url = dlq
    lambda_client, stubber = lambda_stub
    send(sqs, queue_url, json.dumps(RAW_EVENT), json.dumps(DESTINATION_RECORD), *UNREADABLE_BODIES)
    expect_invoke(stubber, RAW_EVENT)
    expect_invoke(stubber, DESTINATION_EVENT)

    summary, lines = run(sqs, lambda_client, queue_url)

    stubber.assert_no_pending_responses()
    assert (summary.received, summary.replayed, summary.unreadable, summary.failed) == (5, 2, 3, 0)
    assert not summary.clean
    assert remaining_bodies(sqs, queue_url) == sorted(UNREADABLE_BODIES)
    assert sum(line.startswith("replayed") for line in lines) == 2
    assert sum(line.startswith("unreadable") for line in lines) == 3
    assert lines[-1] == str(summary)


def test_failed_invoke_keeps_the_message(dlq, lambda_stub):
    sqs, queue_url = dlq
    lambda_client, stubber = lambda_stub
    send(sqs, queue_url, json.dumps(RAW_EVENT))
    stubber.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", http_status_code=429)

    summary, lines = run(sqs, lambda_client, queue_url)

    assert (summary.replayed, summary.failed) == (0, 1)
    assert remaining_bodies(sqs, queue_url) == [json.dumps(RAW_EVENT)]
    assert any(line.startswith("failed") and "Rate exceeded" in line for line in lines)


def test_unexpected_invoke_status_keeps_the_message(dlq, lambda_stub):
    sqs, queue_url = dlq
    lambda_client, stubber = lambda_stub
    send(sqs, queue_url, json.dumps(RAW_EVENT))
    stubber.add_response("invoke", {"StatusCode": 200})

    summary, _ = run(sqs, lambda_client, queue_url)

    assert summary.failed == 1
    assert remaining_bodies(sqs, queue_url) == [json.dumps(RAW_EVENT)]


def test_dry_run_changes_nothing(dlq, lambda_stub):
    sqs, queue_url = dlq
    lambda_client, _ = lambda_stub  # nothing stubbed: an invoke would count as failed
    bodies = [json.dumps(RAW_EVENT), json.dumps(DESTINATION_RECORD), UNREADABLE_BODIES[0]]
    send(sqs, queue_url, *bodies)

    summary, lines = run(sqs, lambda_client, queue_url, dry_run=True)

    assert (summary.would_replay, summary.replayed, summary.unreadable, summary.failed) == (2, 0, 1, 0)
    assert remaining_bodies(sqs, queue_url) == sorted(bodies)
    assert lines[-1].startswith("dry run: ")


def test_max_bounds_the_messages_handled(dlq, lambda_stub):
    sqs, queue_url = dlq
    lambda_client, stubber = lambda_stub
    send(sqs, queue_url, *[json.dumps(RAW_EVENT)] * 3)
    expect_invoke(stubber, RAW_EVENT)
    expect_invoke(stubber, RAW_EVENT)

    summary, _ = run(sqs, lambda_client, queue_url, max_messages=2)

    assert (summary.received, summary.replayed) == (2, 2)
    assert len(remaining_bodies(sqs, queue_url)) == 1


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        (json.dumps(RAW_EVENT), "eventbridge"),
        (json.dumps(DESTINATION_RECORD), "lambda-destination"),
        ("[1, 2]", "body is not a JSON object"),
        ("{", "body is not JSON"),
        (json.dumps({**RAW_EVENT, "detail": "flat"}), "eventbridge message without an EventBridge event"),
    ],
)
def test_extract_event(body, shape):
    assert dlq_replay.extract_event(body).shape == shape


def test_cli_dry_run(dlq, capsys):
    sqs, queue_url = dlq
    send(sqs, queue_url, json.dumps(RAW_EVENT))

    exit_code = main(["dlq", "replay", "--queue-url", queue_url, "--function-name", FUNCTION_NAME, "--dry-run"])

    assert exit_code == 0
    out = capsys.readouterr().out
    assert "would replay" in out
    assert "dry run: received=1" in out
    assert remaining_bodies(sqs, queue_url) == [json.dumps(RAW_EVENT)]


@pytest.fixture
def cloudformation(monkeypatch, dlq):
    """CloudFormation answered by Stubber (moto's needs extras for its other models); SQS stays moto's."""
    stubbed = boto3.client("cloudformation", region_name=REGION)
    real_client = dlq_replay.client
    monkeypatch.setattr(
        dlq_replay,
        "client",
        lambda service, config: stubbed if service == "cloudformation" else real_client(service, config),
    )
    with Stubber(stubbed) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def stack_with_outputs(cloudformation: Stubber, outputs: dict[str, str]) -> None:
    """The deployed churn-dev-Orchestration stack, as DescribeStacks answers for it."""
    stack = {
        "StackName": "churn-dev-Orchestration",
        "CreationTime": "2026-11-01T00:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
    }
    cloudformation.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "churn-dev-Orchestration"})


def test_the_queue_and_the_function_come_from_the_stack_outputs(dlq, cloudformation, capsys):
    sqs, queue_url = dlq
    send(sqs, queue_url, json.dumps(RAW_EVENT), "not json at all")
    stack_with_outputs(
        cloudformation,
        {
            dlq_replay.TRIGGER_OUTPUTS["training"][0]: queue_url,
            dlq_replay.TRIGGER_OUTPUTS["training"][1]: FUNCTION_NAME,
        },
    )

    exit_code = main(["dlq", "replay", "--env", "dev", "--dry-run", "--json"])

    captured = capsys.readouterr()
    assert exit_code == 1  # the unreadable message stays for a human
    assert json.loads(captured.out) == {
        "queue_url": queue_url,
        "function_name": FUNCTION_NAME,
        "received": 2,
        "replayed": 0,
        "would_replay": 1,
        "unreadable": 1,
        "failed": 0,
        "not_deleted": 0,
    }
    assert "would replay" in captured.err


def test_a_missing_stack_or_output_is_one_line_saying_what_to_do(cloudformation, capsys):
    cloudformation.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id churn-dev-Orchestration does not exist"
    )
    assert main(["dlq", "replay", "--env", "dev", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        "error: stack churn-dev-Orchestration is not deployed in eu-west-1 (deploy it: cdk deploy 'churn-dev/*')\n"
    )

    stack_with_outputs(cloudformation, {dlq_replay.TRIGGER_OUTPUTS["training"][1]: FUNCTION_NAME})
    assert main(["dlq", "replay", "--env", "dev"]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: stack churn-dev-Orchestration has no output {dlq_replay.TRIGGER_OUTPUTS['training'][0]}: "
        "deploy the current"
    )
    assert main(["dlq", "replay", "--max", "0", "--queue-url", "q", "--function-name", "f"]) == 2
    assert capsys.readouterr().err == "error: --max must be at least 1\n"


@pytest.fixture
def no_credentials(monkeypatch):
    """No credentials anywhere in the chain: no variables, no files, no instance metadata, a fresh default session."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.mark.parametrize(
    "options", [[], ["--queue-url", "https://sqs.eu-west-1.amazonaws.com/1/q", "--function-name", "f"]]
)
def test_without_credentials_it_is_one_line_naming_the_fix(no_credentials, capsys, options):
    """Defect 8 of issue 20: with the queue and function named, botocore's NoCredentialsError was a traceback."""
    assert main(["dlq", "replay", "--env", "dev", *options]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {NO_CREDENTIALS}\n"
    assert "aws configure" in captured.err


def test_a_queue_that_cannot_be_read_is_one_line_exit_1(dlq, capsys):
    _, queue_url = dlq
    missing = queue_url.replace("start-pipeline-dlq", "no-such-queue")
    assert main(["dlq", "replay", "--queue-url", missing, "--function-name", FUNCTION_NAME]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: receiving dead letters from {missing} failed: ") and err.count("\n") == 1
