"""SecureBucket alone: encryption follows the key prop, the baseline is always on, lifecycle follows the days."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from platform_constructs.secure_bucket import SecureBucket
from tests.infra.constructs.conftest import only

DEFAULTS: dict[str, Any] = {
    "noncurrent_version_retention_days": 7,
    "incomplete_upload_days": 3,
    "removal_policy": RemovalPolicy.RETAIN,
    "auto_delete_objects": False,
}


def bucket_of(template: Template, fragment: str) -> dict[str, Any]:
    return next(b for lid, b in template.find_resources("AWS::S3::Bucket").items() if fragment in lid)


def test_with_a_key_it_is_sse_kms_with_a_bucket_key_and_the_private_versioned_baseline(stack: Stack) -> None:
    key = kms.Key(stack, "Key")
    logs = SecureBucket(stack, "Logs", encryption_key=None, access_logs_bucket=None, **DEFAULTS)
    SecureBucket(
        stack, "Data", encryption_key=key, access_logs_bucket=logs.bucket, access_logs_prefix="data/", **DEFAULTS
    )
    template = Template.from_stack(stack)
    key_id, _ = only(template.find_resources("AWS::KMS::Key"))
    props = bucket_of(template, "Data")["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                "SSEAlgorithm": "aws:kms",
            },
        }
    ]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "data/"
    assert "NotificationConfiguration" not in props
    # TLS only.
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_without_a_key_it_is_sse_s3_as_access_log_targets_require(stack: Stack) -> None:
    SecureBucket(stack, "Logs", encryption_key=None, access_logs_bucket=None, **DEFAULTS)
    _, bucket = only(Template.from_stack(stack).find_resources("AWS::S3::Bucket"))
    assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"BucketKeyEnabled": False, "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert "LoggingConfiguration" not in bucket["Properties"]


def test_lifecycle_follows_the_day_props(stack: Stack) -> None:
    SecureBucket(stack, "Logs", encryption_key=None, access_logs_bucket=None, expire_objects_after_days=30, **DEFAULTS)
    _, bucket = only(Template.from_stack(stack).find_resources("AWS::S3::Bucket"))
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"] == [
        {
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3},
            "Id": "expire-noncurrent-versions-and-abandoned-uploads",
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
            "Status": "Enabled",
        },
        {"ExpirationInDays": 30, "Id": "expire-current-objects", "Status": "Enabled"},
    ]


def test_event_bridge_notifications_use_the_native_property_not_a_custom_resource(stack: Stack) -> None:
    SecureBucket(
        stack, "Landing", encryption_key=None, access_logs_bucket=None, event_bridge_notifications=True, **DEFAULTS
    )
    template = Template.from_stack(stack)
    _, bucket = only(template.find_resources("AWS::S3::Bucket"))
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    template.resource_count_is("Custom::S3BucketNotifications", 0)
    template.resource_count_is("AWS::Lambda::Function", 0)


def test_removal_policy_and_auto_delete_follow_the_props(stack: Stack) -> None:
    kept = SecureBucket(stack, "Kept", encryption_key=None, access_logs_bucket=None, **DEFAULTS)
    SecureBucket(
        stack,
        "Disposable",
        encryption_key=None,
        access_logs_bucket=None,
        **{**DEFAULTS, "removal_policy": RemovalPolicy.DESTROY, "auto_delete_objects": True},
    )
    template = Template.from_stack(stack)
    assert bucket_of(template, "Kept")["DeletionPolicy"] == "Retain"
    assert bucket_of(template, "Disposable")["DeletionPolicy"] == "Delete"
    # Only the disposable bucket is emptied on deletion.
    _, auto_delete = only(template.find_resources("Custom::S3AutoDeleteObjects"))
    assert "Kept" not in str(auto_delete["Properties"]["BucketName"])
    assert kept.bucket.node.try_find_child("AutoDeleteObjectsCustomResource") is None
