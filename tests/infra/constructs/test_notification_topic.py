"""NotificationTopic alone: own rotating key, TLS only, email subscriptions, a publisher grant on both policies."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk.assertions import Template

from platform_constructs.notification_topic import NotificationTopic
from tests.infra.constructs.conftest import ACCOUNT, only


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
