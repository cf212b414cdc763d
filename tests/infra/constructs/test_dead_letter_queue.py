"""DeadLetterQueue alone: encrypted, TLS only, 14 days, and its checker exceptions carry their reasons."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk.assertions import Template

from platform_constructs.dead_letter_queue import DeadLetterQueue
from tests.infra.constructs.conftest import only


def test_queue_is_encrypted_tls_only_and_keeps_messages_14_days(stack: Stack) -> None:
    DeadLetterQueue(stack, "Dlq")
    template = Template.from_stack(stack)
    queue_id, queue = only(template.find_resources("AWS::SQS::Queue"))
    assert queue["Properties"] == {"MessageRetentionPeriod": 14 * 24 * 3600, "SqsManagedSseEnabled": True}
    _, policy = only(template.find_resources("AWS::SQS::QueuePolicy"))
    assert policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        }
    ]
    skips = queue["Metadata"]["checkov"]["skip"]
    assert [s["id"] for s in skips] == ["CKV_AWS_27"] and "SqsManagedSseEnabled" in skips[0]["comment"]


def test_two_queues_in_one_stack_are_independent(stack: Stack) -> None:
    first, second = DeadLetterQueue(stack, "A"), DeadLetterQueue(stack, "B")
    Template.from_stack(stack).resource_count_is("AWS::SQS::Queue", 2)
    assert first.queue.node.path != second.queue.node.path
