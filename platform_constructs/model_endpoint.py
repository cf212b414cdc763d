"""A real-time endpoint serving one pinned model package version, with data capture and rollback alarms.

The Model and the EndpointConfig are create-only resources: their logical ids carry the pinned version, so a
promotion adds a new pair next to the old one, CloudFormation points the endpoint (whose name never changes) at the
new config, then deletes the old pair. The endpoint's fixed name is what clients, alarms and monitors use.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_defs.contract import CAPTURE_TEXT_ENCODINGS, VARIANT_NAME
from platform_constructs.compliance import skip_checkov

# A 5XX in each of two consecutive minutes rolls back (or alarms): one stray error is not a failed deployment.
_ERROR_EVALUATION_MINUTES = 2
# Latency must stay above the limit for three minutes in a row: cold instances are slow for their first requests.
_LATENCY_EVALUATION_MINUTES = 3


@dataclass(frozen=True)
class Rollout:
    """Blue/green with a canary: `canary_percent` of capacity first, then all, each step baking `bake_seconds`."""

    canary_percent: int
    bake_seconds: int


class ModelEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_package_arn: str,
        version: int,
        role_arn: str,
        instance_type: str,
        instance_count: int,
        data_key: kms.IKey,
        capture_destination: str,
        capture_sampling_percentage: int,
        latency_p99_ms: int,
        rollout: Rollout | None,
        inference_code_url: str | None = None,
    ) -> None:
        """`inference_code_url`: where the container loads the serving code from instead of the package's
        SAGEMAKER_SUBMIT_DIRECTORY (the same bytes in a bucket the model role can read); None: the package's."""
        super().__init__(scope, construct_id)
        model = sagemaker.CfnModel(
            self,
            f"ModelV{version}",
            execution_role_arn=role_arn,
            # Image and model data come from the package itself (ModelPackageName), the code too unless overridden.
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(
                    model_package_name=model_package_arn,
                    environment={"SAGEMAKER_SUBMIT_DIRECTORY": inference_code_url} if inference_code_url else None,
                )
            ],
        )
        skip_checkov(
            model,
            CKV_AWS_370="The scikit-learn serving container downloads the package's inference code "
            "(SAGEMAKER_SUBMIT_DIRECTORY, an S3 tarball) itself at start-up; network isolation would block that.",
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            f"EndpointConfigV{version}",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=model.attr_model_name,
                    instance_type=instance_type,
                    initial_instance_count=instance_count,
                    initial_variant_weight=1,
                )
            ],
            kms_key_id=data_key.key_arn,  # the ML storage volume
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=capture_sampling_percentage,
                destination_s3_uri=capture_destination,
                kms_key_id=data_key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode) for mode in ("Input", "Output")
                ],
                # Without it SageMaker stores every payload base64-encoded.
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=[t for t, encoding in CAPTURE_TEXT_ENCODINGS.items() if encoding == "CSV"],
                    json_content_types=[t for t, encoding in CAPTURE_TEXT_ENCODINGS.items() if encoding == "JSON"],
                ),
            ),
        )
        self.errors_alarm = self._alarm(
            "Invocation5XXErrorsAlarm",
            endpoint_name,
            metric="Invocation5XXErrors",
            statistic="Sum",
            threshold=1,
            minutes=_ERROR_EVALUATION_MINUTES,
            description=f"{endpoint_name} answered 5XX errors in {_ERROR_EVALUATION_MINUTES} consecutive minutes",
        )
        self.latency_alarm = self._alarm(
            "ModelLatencyP99Alarm",
            endpoint_name,
            metric="ModelLatency",
            statistic="p99",
            threshold=latency_p99_ms * 1000,  # ModelLatency is in microseconds
            minutes=_LATENCY_EVALUATION_MINUTES,
            description=f"{endpoint_name} model latency p99 over {latency_p99_ms} ms for "
            f"{_LATENCY_EVALUATION_MINUTES} minutes",
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=self._deployment_config(rollout) if rollout else None,
        )
        self.endpoint_name = endpoint_name
        self.alarms = [self.errors_alarm, self.latency_alarm]

    def _alarm(
        self,
        construct_id: str,
        endpoint_name: str,
        *,
        metric: str,
        statistic: str,
        threshold: float,
        minutes: int,
        description: str,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=metric,
                dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT_NAME},
                statistic=statistic,
                period=Duration.minutes(1),
            ),
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=minutes,
            datapoints_to_alarm=minutes,
            # No traffic is not a failure.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )

    def _deployment_config(self, rollout: Rollout) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type="CANARY",
                    canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                        type="CAPACITY_PERCENT", value=rollout.canary_percent
                    ),
                    wait_interval_in_seconds=rollout.bake_seconds,
                ),
                # The old fleet stays until the new one has baked with all traffic: rollback stays instant.
                termination_wait_in_seconds=rollout.bake_seconds,
                maximum_execution_timeout_in_seconds=_execution_timeout(rollout),
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                    for alarm in (self.errors_alarm, self.latency_alarm)
                ]
            ),
        )


def _execution_timeout(rollout: Rollout) -> int:
    """Two baking steps and the termination wait, plus 30 minutes to provision the new fleet.

    Within the API's 600..14400 seconds for every bake the API accepts (0..3600)."""
    return 3 * rollout.bake_seconds + 1800
