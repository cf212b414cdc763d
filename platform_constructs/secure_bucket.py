"""An S3 bucket with the platform's baseline: encryption, versioning, TLS only, no public access, lifecycle."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from platform_constructs.compliance import cfn_resource


class SecureBucket(Construct):
    """A versioned, TLS-only, private bucket that cleans up old versions and abandoned uploads.

    `event_bridge_notifications` sends every object event to the default EventBridge bus.
    With `encryption_key` the bucket uses SSE-KMS with an S3 bucket key (fewer KMS calls); without it,
    SSE-S3 - which is what S3 server access logging requires of its target bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey | None,
        access_logs_bucket: s3.IBucket | None,
        access_logs_prefix: str | None = None,
        noncurrent_version_retention_days: int,
        incomplete_upload_days: int,
        expire_objects_after_days: int | None = None,
        removal_policy: RemovalPolicy,
        auto_delete_objects: bool,
        event_bridge_notifications: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        lifecycle_rules = [
            s3.LifecycleRule(
                id="expire-noncurrent-versions-and-abandoned-uploads",
                noncurrent_version_expiration=Duration.days(noncurrent_version_retention_days),
                abort_incomplete_multipart_upload_after=Duration.days(incomplete_upload_days),
            )
        ]
        if expire_objects_after_days is not None:
            lifecycle_rules.append(
                s3.LifecycleRule(id="expire-current-objects", expiration=Duration.days(expire_objects_after_days))
            )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            bucket_key_enabled=encryption_key is not None,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=access_logs_prefix,
            lifecycle_rules=lifecycle_rules,
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
        )
        if event_bridge_notifications:
            # The native property; `Bucket(event_bridge_enabled=True)` would add a custom-resource Lambda.
            cfn_bucket = cfn_resource(self.bucket.node.default_child, s3.CfnBucket)
            cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
            )
