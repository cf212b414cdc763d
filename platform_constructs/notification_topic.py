"""The unit's notifications topic: where budgets (and later approvals and alarms) tell people something happened."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


@dataclass(frozen=True)
class SlackChannel:
    """A Slack channel of a workspace authorized in the AWS Chatbot console; `name` names its configuration."""

    name: str
    workspace_id: str
    channel_id: str


class NotificationTopic(Construct):
    """An SNS topic encrypted with its own customer key, TLS only, with email subscriptions.

    The key is the topic's own, not the unit's data key: AWS services that publish here (AWS Budgets, CloudWatch
    alarms) must be allowed to use the key that encrypts the topic, and granting them that on the data key would
    widen the policy of the key that protects the training data. `allow_service_to_publish` grants one service
    both what SNS and what KMS require, limited to this account.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        emails: Sequence[str],
        removal_policy: RemovalPolicy,
        slack: SlackChannel | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the notifications topic of the ML platform unit",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.slack_channel = self._post_to_slack(slack) if slack is not None else None

    def _post_to_slack(self, slack: SlackChannel) -> chatbot.SlackChannelConfiguration:
        """AWS Chatbot posts every message of the topic to the channel; nobody can act on AWS from that channel.

        The channel role has no permissions and the guardrail denies every action (without a guardrail Chatbot
        applies AdministratorAccess), so the channel only reads notifications. Chatbot logs its delivery errors to
        CloudWatch Logs (`/aws/chatbot/<name>`, in us-east-1).
        """
        no_actions = iam.ManagedPolicy(
            self,
            "SlackGuardrail",
            description="Guardrail of the Slack channel of the notifications topic: notifications only, no actions",
            statements=[
                iam.PolicyStatement(sid="NoActionsFromSlack", effect=iam.Effect.DENY, actions=["*"], resources=["*"])
            ],
        )
        return chatbot.SlackChannelConfiguration(
            self,
            "Slack",
            slack_channel_configuration_name=slack.name,
            slack_workspace_id=slack.workspace_id,
            slack_channel_id=slack.channel_id,
            notification_topics=[self.topic],
            guardrail_policies=[no_actions],
            logging_level=chatbot.LoggingLevel.ERROR,
        )

    def allow_service_to_publish(self, service: str, *, source_arn_pattern: str | None = None) -> None:
        """Let `service` (e.g. budgets.amazonaws.com) publish, acting for this account only.

        A publisher to a topic encrypted with a customer key needs kms:GenerateDataKey* and kms:Decrypt on that key
        (SNS developer guide, "Enable compatibility between event sources from AWS services and encrypted topics").
        `source_arn_pattern` further limits the topic policy to the publisher's resources in this account.
        """
        account = Stack.of(self).account
        # Statement ids are alphanumeric: budgets.amazonaws.com -> BudgetsAmazonawsCom.
        service_id = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", service))
        topic_conditions: dict[str, dict[str, str]] = {"StringEquals": {"aws:SourceAccount": account}}
        if source_arn_pattern is not None:
            topic_conditions["ArnLike"] = {"aws:SourceArn": source_arn_pattern}
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AllowPublishFrom{service_id}",
                principals=[iam.ServicePrincipal(service)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=topic_conditions,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AllowEncryptFor{service_id}",
                principals=[iam.ServicePrincipal(service)],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
