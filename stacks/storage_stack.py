"""Stateful resources: the KMS key, the buckets and the model registry. Retained in prod, destroyed in sandboxes."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config import EnvironmentConfig
from config.environments import model_consumers
from platform_constructs.compliance import annotate_auto_delete_provider, cfn_resource, skip_checkov
from platform_constructs.model_registry import ModelRegistry
from platform_constructs.model_registry_access import share_models
from platform_constructs.secure_bucket import SecureBucket


class StorageStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        removal_policy = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        auto_delete = not config.retain_data

        self.data_key = kms.Key(
            self,
            "DataKey",
            alias=config.data_key_alias,
            description=f"Encrypts training data, artifacts and models of {config.name_prefix}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        bucket_defaults: dict[str, Any] = {
            "noncurrent_version_retention_days": config.noncurrent_version_retention_days,
            "incomplete_upload_days": config.incomplete_upload_days,
            "removal_policy": removal_policy,
            "auto_delete_objects": auto_delete,
        }
        self.access_logs_bucket = SecureBucket(
            self,
            "AccessLogsBucket",
            encryption_key=None,
            access_logs_bucket=None,
            expire_objects_after_days=config.access_log_retention_days,
            **bucket_defaults,
        ).bucket
        skip_checkov(
            cfn_resource(self.access_logs_bucket.node.default_child, s3.CfnBucket),
            CKV_AWS_18="This is the access-log target bucket; logging it into itself would loop.",
        )
        self.training_data_bucket = SecureBucket(
            self,
            "TrainingDataBucket",
            encryption_key=self.data_key,
            access_logs_bucket=self.access_logs_bucket,
            access_logs_prefix="training-data/",
            event_bridge_notifications=True,
            **bucket_defaults,
        ).bucket
        self.artifacts_bucket = SecureBucket(
            self,
            "ArtifactsBucket",
            encryption_key=self.data_key,
            access_logs_bucket=self.access_logs_bucket,
            access_logs_prefix="artifacts/",
            **bucket_defaults,
        ).bucket
        self.model_registry = ModelRegistry(
            self,
            "ModelRegistry",
            group_name=config.model_package_group_name,
            description=f"Churn model versions of {config.name_prefix}; approve a version to make it the incumbent.",
            removal_policy=removal_policy,
        )

        # Units whose model_source is this one serve its versions from their accounts (none unless configured).
        share_models(
            config,
            model_consumers(config),
            registry=self.model_registry,
            artifacts_bucket=self.artifacts_bucket,
            data_key=self.data_key,
        )

        annotate_auto_delete_provider(self)

        outputs = {
            "TrainingDataBucketName": self.training_data_bucket.bucket_name,
            "ArtifactsBucketName": self.artifacts_bucket.bucket_name,
            "DataKeyArn": self.data_key.key_arn,
            "ModelPackageGroupName": self.model_registry.group_name,
        }
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)
        # Named exports for the ARNs other stacks use in IAM statements with object-key wildcards: a stable
        # name lets the consumer name each such statement exactly when acknowledging it (cdk-nag IAM5).
        self.training_data_bucket_arn_export = config.resource_name("training-data-bucket-arn")
        self.artifacts_bucket_arn_export = config.resource_name("artifacts-bucket-arn")
        for bucket, export_name, output_id in (
            (self.training_data_bucket, self.training_data_bucket_arn_export, "TrainingDataBucketArn"),
            (self.artifacts_bucket, self.artifacts_bucket_arn_export, "ArtifactsBucketArn"),
        ):
            CfnOutput(self, output_id, value=bucket.bucket_arn, export_name=export_name)
