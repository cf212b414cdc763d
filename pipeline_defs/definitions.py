"""Both pipeline definitions of a unit, built from its config, with placeholders for deploy-time values."""

from __future__ import annotations

from collections.abc import Mapping

from config import EnvironmentConfig
from pipeline_defs import sdk
from pipeline_defs.contract import DeployTimeValue
from pipeline_defs.dsl import PipelineSettings
from pipeline_defs.evaluation import evaluation_pipeline
from pipeline_defs.training import training_pipeline

# Shaped like the real values (the SDK parses ARNs and bucket names), and replaced by CloudFormation.
ROLE_ARN_PLACEHOLDER = "arn:aws:iam::000000000000:role/PLACEHOLDER-PipelineExecutionRole"
KMS_KEY_ARN_PLACEHOLDER = "arn:aws:kms:us-east-1:000000000000:key/PLACEHOLDER-DataKey"
ARTIFACTS_BUCKET_PLACEHOLDER = "placeholder-artifacts-bucket"
LANDING_BUCKET_PLACEHOLDER = "placeholder-landing-bucket"
# {Fn::Sub variable of the deployed definition: the placeholder it replaces}
PLACEHOLDERS: dict[DeployTimeValue, str] = {
    DeployTimeValue.PIPELINE_ROLE_ARN: ROLE_ARN_PLACEHOLDER,
    DeployTimeValue.DATA_KEY_ARN: KMS_KEY_ARN_PLACEHOLDER,
    DeployTimeValue.ARTIFACTS_BUCKET: ARTIFACTS_BUCKET_PLACEHOLDER,
    DeployTimeValue.LANDING_BUCKET: LANDING_BUCKET_PLACEHOLDER,
}


def pipeline_settings(config: EnvironmentConfig, code_uris: Mapping[str, str]) -> PipelineSettings:
    return PipelineSettings(
        region=config.region,
        role_arn=ROLE_ARN_PLACEHOLDER,
        kms_key_arn=KMS_KEY_ARN_PLACEHOLDER,
        artifacts_bucket=ARTIFACTS_BUCKET_PLACEHOLDER,
        landing_bucket=LANDING_BUCKET_PLACEHOLDER,
        evaluation_data_prefix=config.evaluation_data_prefix,
        model_package_group_name=config.model_package_group_name,
        processing_instance_type=config.processing_instance_type,
        training_instance_type=config.training_instance_type,
        cache_expire_after=config.cache_expire_after,
        minimum_score=config.minimum_score,
        default_approval_status=config.model_approval_status,
        code_uris=code_uris,
        tags=config.tags,
    )


def build_definitions(config: EnvironmentConfig, code_uris: Mapping[str, str]) -> dict[str, str]:
    """{pipeline name: definition JSON}; deterministic for the same config and code."""
    settings = pipeline_settings(config, code_uris)
    with sdk.offline_build():
        return {
            name: build(name, settings).definition()
            for name, build in (
                (config.training_pipeline_name, training_pipeline),
                (config.evaluation_pipeline_name, evaluation_pipeline),
            )
        }
