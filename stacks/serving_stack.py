"""Stateless serving: the pinned model version behind the unit's endpoint, with data capture and safe rollout."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from config import ConfigError, EnvironmentConfig
from config.deployments import ModelPin, unit_key
from config.environments import model_source_of
from pipeline_defs.contract import DATA_CAPTURE_PREFIX, GROUND_TRUTH_PREFIX, Parameter
from pipeline_defs.packaging import INFERENCE_TARBALL, write_archives
from platform_constructs.endpoint_autoscaling import EndpointAutoscaling
from platform_constructs.evaluation_schedule import EvaluationSchedule
from platform_constructs.model_endpoint import ModelEndpoint, Rollout
from platform_constructs.model_execution_role import ModelExecutionRole
from platform_constructs.model_registry_access import SERVING_ROLE, read_source_models
from platform_constructs.served_lifecycle import ServedLifecycle

# Every scheduled run on captured traffic shares one experiment id: one line in the cost report.
CAPTURE_EVALUATION_EXPERIMENT_ID = "scheduled-capture-evaluation"


def capture_evaluation_parameters(
    config: EnvironmentConfig, artifacts_bucket_name: str, landing_bucket_name: str
) -> dict[str, str]:
    """The eval-only pipeline's parameters for the endpoint's capture of the last period (and its ground truth)."""
    endpoint = config.endpoint_name
    parameters = {
        Parameter.EXPERIMENT_ID.value: CAPTURE_EVALUATION_EXPERIMENT_ID,
        Parameter.INPUT_DATA_URI.value: f"s3://{artifacts_bucket_name}/{DATA_CAPTURE_PREFIX}{endpoint}/",
        Parameter.CAPTURE_PERIOD_HOURS.value: str(float(config.capture_evaluation_period_hours)),
    }
    if config.capture_evaluation_ground_truth:
        parameters[Parameter.GROUND_TRUTH_URI.value] = f"s3://{landing_bucket_name}/{GROUND_TRUTH_PREFIX}{endpoint}/"
    return parameters


class ServingStack(Stack):
    """Exists only when `config/deployments.json` pins a version for the unit (written by `mlops promote`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        pin: ModelPin,
        data_key: kms.IKey,
        artifacts_bucket_name: str,
        artifacts_bucket_arn_export: str,
        landing_bucket_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        endpoint_name = config.endpoint_name
        # With a model_source, the pinned version is the source unit's: this unit reads it across accounts.
        self.model_source = model_source_of(config)
        # ...except its serving code (below): None means the package's own.
        local_code_url = None if self.model_source is None else self._local_copy_of_inference_code(config, pin)
        model_role = ModelExecutionRole(
            self,
            "ModelRole",
            endpoint_name=endpoint_name,
            image_uri=pin.image_uri,
            model_objects=[pin.model_data_url, local_code_url or pin.inference_code_url],
            data_key=data_key,
            artifacts_bucket_arn_export=artifacts_bucket_arn_export,
            capture_prefix=f"{DATA_CAPTURE_PREFIX}{endpoint_name}/",
        )
        self.endpoint = ModelEndpoint(
            self,
            "Serving",
            endpoint_name=endpoint_name,
            model_package_arn=pin.model_package_arn,
            version=pin.version,
            role_arn=model_role.role.role_arn,
            instance_type=config.serving_instance_type,
            instance_count=config.serving_instance_count,
            data_key=data_key,
            # SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh/ to this.
            capture_destination=f"s3://{artifacts_bucket_name}/{DATA_CAPTURE_PREFIX.rstrip('/')}",
            capture_sampling_percentage=config.capture_sampling_percentage,
            latency_p99_ms=config.latency_alarm_p99_ms,
            rollout=Rollout(config.rollout_canary_percent, config.rollout_bake_seconds)
            if config.safe_rollout
            else None,
            inference_code_url=local_code_url,
        )
        if self.model_source is not None:
            read_source_models(model_role.role, SERVING_ROLE, config, self.model_source, pin.model_package_arn)
        # The model role's permissions must be in place before SageMaker validates the role at CreateModel.
        self.endpoint.node.add_dependency(model_role.policy)
        # The registry records that this unit serves the version (its own versions only: another account's package
        # is updated with that account's credentials, by mlops promote).
        self.lifecycle: ServedLifecycle | None = None
        if self.model_source is None:
            self.lifecycle = ServedLifecycle(
                self,
                f"LifecycleV{pin.version}",
                model_package_arn=pin.model_package_arn,
                stage=unit_key(config),
                endpoint_name=endpoint_name,
                after=self.endpoint.endpoint,
                log_retention_days=config.log_retention_days,
                log_removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
            )
        if config.serving_max_instance_count is not None:
            EndpointAutoscaling(
                self,
                "Autoscaling",
                endpoint=self.endpoint.endpoint,
                min_instances=config.serving_instance_count,
                max_instances=config.serving_max_instance_count,
                invocations_per_instance=config.serving_invocations_per_instance,
            )
        outputs = {
            "EndpointName": endpoint_name,
            "ServedModelPackageArn": pin.model_package_arn,
            "ServedModelVersion": str(pin.version),
        }
        if self.model_source is not None:
            outputs["ModelSourceUnit"] = self.model_source.env_name
        # The monitoring path of every account: the eval-only pipeline on this endpoint's captured traffic.
        self.capture_evaluation: EvaluationSchedule | None = None
        if config.capture_evaluation_schedule is not None:
            self.capture_evaluation = EvaluationSchedule(
                self,
                "CaptureEvaluationSchedule",
                pipeline_name=config.evaluation_pipeline_name,
                schedule_expression=config.capture_evaluation_schedule,
                pipeline_parameters=capture_evaluation_parameters(config, artifacts_bucket_name, landing_bucket_name),
            )
            outputs["CaptureEvaluationDeadLetterQueueUrl"] = self.capture_evaluation.dead_letter_queue.queue_url
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)

    def _local_copy_of_inference_code(self, config: EnvironmentConfig, pin: ModelPin) -> str:
        """This unit's own copy of the pinned version's serving code, as a CDK asset in its account; its URL.

        The package names its code in the source account's CDK assets bucket, which `cdk bootstrap` encrypts with that
        account's AWS-managed S3 key: no other account can read it. The code tarball is deterministic and the asset
        key is its content hash, so the same key means the same bytes: a checkout whose serving code differs from
        the version's is refused instead of serving the version with other code."""
        with tempfile.TemporaryDirectory() as build_dir:  # the Asset stages the file into the cloud assembly
            code = s3_assets.Asset(self, "InferenceCode", path=str(write_archives(Path(build_dir))[INFERENCE_TARBALL]))
        registered = PurePosixPath(pin.inference_code_url).name
        if registered != code.s3_object_key:
            raise ConfigError(
                config.unit_name,
                "deployments.json",
                f"version {pin.version} of {pin.source_unit} was registered with serving code {registered}, this "
                f"checkout builds {code.s3_object_key} (pipeline_defs/steps/inference.py or the feature contract "
                "changed since)",
                f"deploy from the commit that trained version {pin.version}, or promote a version {pin.source_unit} "
                "trained from this code",
            )
        return code.s3_object_url
