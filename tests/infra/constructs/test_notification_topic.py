"""NotificationTopic alone: own rotating key, TLS only, email subscriptions, a publisher grant on both policies."""

from __future__ import annotations

import dataclasses
import json

from aws_cdk import RemovalPolicy, Stack, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_by_config

from config import load_config
from platform_constructs.notification_topic import NotificationTopic, SlackChannel
from stacks.orchestration_stack import _slack_channel
from tests.infra.constructs.conftest import ACCOUNT, REGION, only, statements


def test_topic_is_encrypted_with_its_own_rotating_key_and_tls_only(stack: Stack) -> None:
    NotificationTopic(
        stack, "Notifications", emails=("a@example.com", "b@example.com"), removal_policy=RemovalPolicy.DESTROY
    )
    template = Template.from_stack(stack)
    key_id, key = only(template.find_resources("AWS::KMS::Key"))
    assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == "Delete"
    topic_id, topic = only(template.find_resources("AWS::SNS::Topic"))
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    _, policy = only(template.find_resources("AWS::SNS::TopicPolicy"))
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "sns:Publish",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": "*",
            "Resource": {"Ref": topic_id},
            "Sid": "AllowPublishThroughSSLOnly",
        }
    ]
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    assert sorted((s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions.values()) == [
        ("email", "a@example.com"),
        ("email", "b@example.com"),
    ]


def test_a_service_allowed_to_publish_gets_the_topic_and_the_key_for_this_account_only(stack: Stack) -> None:
    notifications = NotificationTopic(stack, "Notifications", emails=(), removal_policy=RemovalPolicy.RETAIN)
    notifications.allow_service_to_publish("budgets.amazonaws.com", source_arn_pattern=f"arn:aws:budgets::{ACCOUNT}:*")
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Subscription", 0)
    topic_id, _ = only(template.find_resources("AWS::SNS::Topic"))
    _, policy = only(template.find_resources("AWS::SNS::TopicPolicy"))
    assert policy["Properties"]["PolicyDocument"]["Statement"][1] == {
        "Action": "sns:Publish",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{ACCOUNT}:*"},
        },
        "Effect": "Allow",
        "Principal": {"Service": "budgets.amazonaws.com"},
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishFromBudgetsAmazonawsCom",
    }
    _, key = only(template.find_resources("AWS::KMS::Key"))
    assert key["Properties"]["KeyPolicy"]["Statement"][1] == {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        "Effect": "Allow",
        "Principal": {"Service": "budgets.amazonaws.com"},
        "Resource": "*",
        "Sid": "AllowEncryptForBudgetsAmazonawsCom",
    }
    assert key["DeletionPolicy"] == "Retain"


def test_a_slack_channel_gets_every_message_and_no_permission_to_act(stack: Stack, tmp_path) -> None:
    slack = SlackChannel(name="churn-dev-notifications", workspace_id="T0123ABCD", channel_id="C0123ABCD")
    NotificationTopic(stack, "Notifications", emails=(), removal_policy=RemovalPolicy.DESTROY, slack=slack)
    template = Template.from_stack(stack)
    topic_id, _ = only(template.find_resources("AWS::SNS::Topic"))
    _, channel = only(template.find_resources("AWS::Chatbot::SlackChannelConfiguration"))
    guardrail_id, guardrail = only(template.find_resources("AWS::IAM::ManagedPolicy"))
    role_id, role = only(template.find_resources("AWS::IAM::Role"))
    assert channel["Properties"] == {
        "ConfigurationName": "churn-dev-notifications",
        "SlackWorkspaceId": "T0123ABCD",
        "SlackChannelId": "C0123ABCD",
        "SnsTopicArns": [{"Ref": topic_id}],
        "GuardrailPolicies": [{"Ref": guardrail_id}],
        "IamRoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "LoggingLevel": "ERROR",
    }
    # Without a guardrail Chatbot applies AdministratorAccess: this one denies every action, the role has none.
    assert guardrail["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "*", "Effect": "Deny", "Resource": "*", "Sid": "NoActionsFromSlack"}
    ]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "chatbot.amazonaws.com"
    }
    assert statements(template.to_json(), role_id) == [] and "ManagedPolicyArns" not in role["Properties"]
    # cdk-nag (AwsSolutions) and cfn-lint find nothing on it.
    app = stack.node.root
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises on an unacknowledged finding
    path = tmp_path / "slack.template.json"
    path.write_text(json.dumps(template.to_json()))
    assert [str(match) for match in lint_by_config(ManualArgs(templates=[str(path)], regions=[REGION]))] == []


def test_no_slack_channel_unless_one_is_configured(stack: Stack) -> None:
    NotificationTopic(stack, "Notifications", emails=(), removal_policy=RemovalPolicy.DESTROY)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 0)


def test_the_unit_names_its_slack_channel_only_when_config_gives_both_ids() -> None:
    dev = load_config("dev")
    assert _slack_channel(dev) is None
    configured = dataclasses.replace(dev, slack_workspace_id="T0123ABCD", slack_channel_id="C0123ABCD")
    assert _slack_channel(configured) == SlackChannel("churn-dev-notifications", "T0123ABCD", "C0123ABCD")
