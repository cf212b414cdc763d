"""`mlops dlq replay --env E`: invoke the dataset trigger's function again with each of its dead letters.

The queue and the function come from the deployed Orchestration stack's outputs (`TrainingTriggerDeadLetterQueueUrl`,
`StartPipelineFunctionName`; with `--trigger scoring`, `ScoringTriggerDeadLetterQueueUrl`, `StartScoringFunctionName`);
`--queue-url` / `--function-name` override them. Two message shapes reach the queue:
- from the EventBridge rule's target DLQ (the event could not be delivered): the body is the event itself;
- from the function's on-failure destination (the handler raised on every attempt): the body is Lambda's
  invocation record, whose `requestPayload` is the event.
Anything else is reported as unreadable and left for a human. A message is deleted only after Lambda accepted
the asynchronous invoke; every message that stays is made visible again at the end, so apart from receive
counts the queue looks as it did. Replaying twice is safe: the handler starts one execution per marker.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client, stack_outputs
from mlops.common import UsageError

ORCHESTRATION_STACK = "Orchestration"
# {trigger: (its dead-letter queue's output, its function's output)}: one start-pipeline function per trigger.
TRIGGER_OUTPUTS = {
    "training": ("TrainingTriggerDeadLetterQueueUrl", "StartPipelineFunctionName"),
    "scoring": ("ScoringTriggerDeadLetterQueueUrl", "StartScoringFunctionName"),
}

_SQS_BATCH = 10


@dataclass
class ReplaySummary:
    received: int = 0
    replayed: int = 0
    would_replay: int = 0
    unreadable: int = 0
    failed: int = 0
    not_deleted: int = 0

    @property
    def clean(self) -> bool:
        return not (self.unreadable or self.failed or self.not_deleted)

    def __str__(self) -> str:
        return (
            f"received={self.received} replayed={self.replayed} would_replay={self.would_replay} "
            f"unreadable={self.unreadable} failed={self.failed} not_deleted={self.not_deleted}"
        )


@dataclass(frozen=True)
class DeadLetter:
    """The original event of a dead letter (`event` is None when unreadable) and where it came from."""

    event: dict[str, Any] | None
    shape: str


def extract_event(body: str) -> DeadLetter:
    """The EventBridge event inside a DLQ message body; shape says which kind of message held it, or why not."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return DeadLetter(None, "body is not JSON")
    if not isinstance(parsed, dict):
        return DeadLetter(None, "body is not a JSON object")
    if "requestPayload" in parsed and "requestContext" in parsed:
        event, shape = parsed["requestPayload"], "lambda-destination"
    else:
        event, shape = parsed, "eventbridge"
    is_event = (
        isinstance(event, dict)
        and isinstance(event.get("source"), str)
        and isinstance(event.get("detail-type"), str)
        and isinstance(event.get("detail"), dict)
    )
    if not is_event:
        return DeadLetter(None, f"{shape} message without an EventBridge event")
    return DeadLetter(event, shape)


# Long polling: an empty receive waits this long for late messages before the replay ends.
RECEIVE_WAIT_SECONDS = 2


def replay(
    sqs: Any,
    lambda_client: Any,
    queue_url: str,
    function_name: str,
    max_messages: int,
    dry_run: bool,
    *,
    echo: Callable[[str], None] = print,
    visibility_timeout: int = 300,
    wait_seconds: int | None = None,
) -> ReplaySummary:
    """Replay up to `max_messages` dead letters into `function_name`; print one line per message and a summary.

    Received messages stay invisible for `visibility_timeout` seconds while the run lasts, so a kept message is
    not processed twice; one that does come back (a run longer than that) is recognised by its id and skipped.
    """
    summary = ReplaySummary()
    seen: set[str] = set()
    kept: dict[str, str] = {}  # message id -> latest receipt handle, made visible again at the end
    while summary.received < max_messages:
        try:
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(_SQS_BATCH, max_messages - summary.received),
                VisibilityTimeout=visibility_timeout,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS if wait_seconds is None else wait_seconds,
            ).get("Messages", [])
        except (ClientError, BotoCoreError) as error:  # what was received so far is made visible again below
            _make_visible(sqs, queue_url, kept, echo)
            raise AwsCallFailed(f"receiving dead letters from {queue_url} failed: {error}") from None
        fresh = [message for message in batch if message["MessageId"] not in seen]
        kept.update({m["MessageId"]: m["ReceiptHandle"] for m in batch if m["MessageId"] in kept})
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            summary.received += 1
            if _replay_one(sqs, lambda_client, queue_url, function_name, message, dry_run, summary, echo):
                kept[message["MessageId"]] = message["ReceiptHandle"]
    _make_visible(sqs, queue_url, kept, echo)
    echo(f"{'dry run: ' if dry_run else ''}{summary}")
    return summary


def _replay_one(
    sqs: Any,
    lambda_client: Any,
    queue_url: str,
    function_name: str,
    message: dict[str, Any],
    dry_run: bool,
    summary: ReplaySummary,
    echo: Callable[[str], None],
) -> bool:
    """Handle one message; True when it stays in the queue."""
    message_id = message["MessageId"]
    letter = extract_event(message.get("Body", ""))
    if letter.event is None:
        summary.unreadable += 1
        echo(f"unreadable  {message_id}: {letter.shape}; left in the queue")
        return True
    s3_object = letter.event["detail"].get("object")
    key = s3_object.get("key") if isinstance(s3_object, dict) else None
    label = f"{message_id} ({letter.shape}, key={key})"
    if dry_run:
        summary.would_replay += 1
        echo(f"would replay {label}")
        return True
    try:
        response = lambda_client.invoke(
            FunctionName=function_name, InvocationType="Event", Payload=json.dumps(letter.event).encode()
        )
    except (ClientError, BotoCoreError) as error:
        summary.failed += 1
        echo(f"failed      {label}: {error}; left in the queue")
        return True
    if response.get("StatusCode") != 202:
        summary.failed += 1
        echo(f"failed      {label}: invoke returned status {response.get('StatusCode')}; left in the queue")
        return True
    summary.replayed += 1
    try:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    except (ClientError, BotoCoreError) as error:
        summary.not_deleted += 1
        echo(f"replayed    {label}, but not deleted ({error}): a later replay is a harmless duplicate")
        return False
    echo(f"replayed    {label}")
    return False


def _make_visible(sqs: Any, queue_url: str, kept: dict[str, str], echo: Callable[[str], None]) -> None:
    entries = [
        {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
        for index, handle in enumerate(kept.values())
    ]
    for start in range(0, len(entries), _SQS_BATCH):
        try:
            result = sqs.change_message_visibility_batch(
                QueueUrl=queue_url, Entries=entries[start : start + _SQS_BATCH]
            )
        except (ClientError, BotoCoreError) as error:
            echo(f"could not make kept messages visible again ({error}); they reappear after the visibility timeout")
            continue
        for failure in result.get("Failed", []):
            echo(f"could not make a kept message visible again: {failure.get('Message', failure.get('Code'))}")


def command_dlq(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if args.max_messages < 1:
        raise UsageError("--max must be at least 1")
    queue_url, function_name = args.queue_url, args.function_name
    if queue_url is None or function_name is None:
        outputs = stack_outputs(client("cloudformation", config), config, ORCHESTRATION_STACK)
        queue_output, function_output = TRIGGER_OUTPUTS[args.trigger]
        queue_url = queue_url or _output(outputs, queue_output, config)
        function_name = function_name or _output(outputs, function_output, config)
    echo: Callable[[str], None] = (lambda line: print(line, file=sys.stderr)) if args.json else print
    sqs, lambda_client = client("sqs", config), client("lambda", config)
    summary = replay(sqs, lambda_client, queue_url, function_name, args.max_messages, args.dry_run, echo=echo)
    if args.json:
        print(json.dumps({"queue_url": queue_url, "function_name": function_name, **asdict(summary)}, indent=2))
    return 0 if summary.clean else 1


def _output(outputs: dict[str, str], key: str, config: EnvironmentConfig) -> str:
    if key not in outputs:
        raise UsageError(
            f"stack {config.name_prefix}-{ORCHESTRATION_STACK} has no output {key}: deploy the current version "
            f"(cdk deploy '{config.name_prefix}/*') or pass it explicitly"
        )
    return outputs[key]
