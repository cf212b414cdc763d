"""The SQS queue that keeps events nobody could deliver or process, long enough for an operator to replay them."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from platform_constructs.compliance import cfn_resource, skip_checkov

# SQS's maximum: a failure on Friday evening is still there after a long weekend and a week of leave.
DEAD_LETTER_RETENTION = Duration.days(14)


class DeadLetterQueue(Construct):
    """An encrypted, TLS-only queue that retains messages for 14 days.

    SQS-managed encryption (SSE-SQS): the messages are S3 event and schedule envelopes (bucket, key, dataset
    id), no secrets; a customer key would add KMS grants to every producer without protecting more.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        skip_checkov(
            cfn_resource(self.queue.node.default_child, sqs.CfnQueue),
            CKV_AWS_27="Encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled); the check only recognises "
            "a KMS key (KmsMasterKeyId). The messages are event envelopes without secrets.",
        )
        Validations.of(self.queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason=(
                    "This queue is itself a dead-letter queue (of a Lambda on-failure destination, an EventBridge "
                    "target or a Scheduler target); the rule only recognises queues named in a RedrivePolicy."
                ),
            )
        )
