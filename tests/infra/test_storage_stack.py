"""The storage stack: encryption, bucket baseline, model registry, and per-environment lifecycle."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import ALL_UNITS

# Renaming one of these would make CloudFormation replace a stateful resource (new, empty bucket or key).
PINNED_STATEFUL_LOGICAL_IDS = {
    "AWS::KMS::Key": {"DataKey17AFBB84"},
    "AWS::S3::Bucket": {"AccessLogsBucket9935880A", "TrainingDataBucketEEAF1117", "ArtifactsBucket454C14F5"},
    "AWS::SageMaker::ModelPackageGroup": {"ModelRegistryGroupC87F7ECA"},
}
RETAINED_UNITS = ["dev", "staging", "prod"]
SANDBOX_UNIT = "dev/sandbox=ci"


def storage_template(synthesized, unit: str) -> Template:
    stage, _ = synthesized(unit)
    return Template.from_stack(stage.storage)


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_stateful_logical_ids_are_pinned(synthesized, unit):
    template = storage_template(synthesized, unit)
    for resource_type, expected_ids in PINNED_STATEFUL_LOGICAL_IDS.items():
        assert set(template.find_resources(resource_type)) == expected_ids, resource_type


def test_data_key_rotates_and_encrypts_data_buckets(synthesized):
    template = storage_template(synthesized, "prod")
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/churn-prod-data"})
    kms_encrypted = template.find_resources(
        "AWS::S3::Bucket",
        {
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "BucketKeyEnabled": True,
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey17AFBB84", "Arn"]},
                            },
                        }
                    ]
                }
            }
        },
    )
    assert set(kms_encrypted) == {"TrainingDataBucketEEAF1117", "ArtifactsBucket454C14F5"}


def test_access_log_bucket_uses_sse_s3_because_log_delivery_cannot_use_kms(synthesized):
    template = storage_template(synthesized, "prod")
    log_bucket = template.find_resources("AWS::S3::Bucket")["AccessLogsBucket9935880A"]
    encryption = log_bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    # Logs expire after the configured retention; prod keeps a year.
    rules = log_bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"ExpirationInDays": 365, "Id": "expire-current-objects", "Status": "Enabled"} in rules


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_every_bucket_has_the_baseline(synthesized, unit):
    config = ALL_UNITS[unit]
    template = storage_template(synthesized, unit)
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 3
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, logical_id
        assert {
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": config.incomplete_upload_days},
            "Id": "expire-noncurrent-versions-and-abandoned-uploads",
            "NoncurrentVersionExpiration": {"NoncurrentDays": config.noncurrent_version_retention_days},
            "Status": "Enabled",
        } in props["LifecycleConfiguration"]["Rules"], logical_id
    for data_bucket in ("TrainingDataBucketEEAF1117", "ArtifactsBucket454C14F5"):
        logging = buckets[data_bucket]["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": "AccessLogsBucket9935880A"}
    # TLS only: every bucket policy denies requests without SecureTransport.
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_model_package_group_has_stable_name_and_description(synthesized):
    template = storage_template(synthesized, "staging")
    template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup",
        {
            "ModelPackageGroupName": "churn-staging-models",
            "ModelPackageGroupDescription": Match.string_like_regexp("approve a version"),
            "ModelPackageGroupPolicy": Match.absent(),
        },
    )


@pytest.mark.parametrize("unit", RETAINED_UNITS)
def test_shared_environments_retain_stateful_resources(synthesized, unit):
    template = storage_template(synthesized, unit)
    for resource_type, logical_ids in PINNED_STATEFUL_LOGICAL_IDS.items():
        resources = template.find_resources(resource_type)
        for logical_id in logical_ids:
            assert resources[logical_id]["DeletionPolicy"] == "Retain", (unit, logical_id)
            assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", (unit, logical_id)
    template.resource_count_is("Custom::S3AutoDeleteObjects", 0)


def test_sandbox_destroys_everything_with_it(synthesized):
    template = storage_template(synthesized, SANDBOX_UNIT)
    for resource_type, logical_ids in PINNED_STATEFUL_LOGICAL_IDS.items():
        resources = template.find_resources(resource_type)
        for logical_id in logical_ids:
            assert resources[logical_id]["DeletionPolicy"] == "Delete", logical_id
    # Buckets are emptied on stack deletion, so `cdk destroy` leaves nothing behind.
    template.resource_count_is("Custom::S3AutoDeleteObjects", 3)
    template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "churn-dev-ci-models"}
    )


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_only_prod_is_termination_protected(synthesized, unit):
    stage, _ = synthesized(unit)
    assert stage.storage.termination_protection is (unit == "prod")
    assert stage.storage.stack_name == f"{ALL_UNITS[unit].name_prefix}-Storage"
    assert (stage.storage.account, stage.storage.region) == (ALL_UNITS[unit].account, ALL_UNITS[unit].region)


def test_landing_bucket_sends_events_to_eventbridge_natively(synthesized):
    template = storage_template(synthesized, "dev")
    buckets = template.find_resources("AWS::S3::Bucket")
    enabled = {
        logical_id
        for logical_id, bucket in buckets.items()
        if bucket["Properties"].get("NotificationConfiguration")
        == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    }
    assert enabled == {"TrainingDataBucketEEAF1117"}
    # No custom-resource Lambda for notifications (that is what Bucket(event_bridge_enabled=True) would add).
    template.resource_count_is("Custom::S3BucketNotifications", 0)
