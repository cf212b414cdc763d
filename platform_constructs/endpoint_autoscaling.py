"""Application Auto Scaling of an endpoint variant: target tracking on invocations per instance."""

from __future__ import annotations

from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_defs.contract import VARIANT_NAME

# Scale in slowly (a model loads for minutes) and out quickly (latency suffers at once).
_SCALE_IN_COOLDOWN_SECONDS = 600
_SCALE_OUT_COOLDOWN_SECONDS = 60


class EndpointAutoscaling(Construct):
    """Keeps the variant between `min_instances` and `max_instances`, aiming at `invocations_per_instance` a minute.

    Without a role ARN, Application Auto Scaling uses its service-linked role for SageMaker
    (AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint), created on first use: no role of ours to scope.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        min_instances: int,
        max_instances: int,
        invocations_per_instance: int,
    ) -> None:
        super().__init__(scope, construct_id)
        endpoint_name = endpoint.endpoint_name
        if endpoint_name is None:
            raise ValueError("the endpoint needs a fixed name: the scalable target names it")
        self.target = autoscaling.CfnScalableTarget(
            self,
            "Target",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_instances,
            max_capacity=max_instances,
        )
        # The resource id is the endpoint's name, not a reference: register only once the endpoint exists.
        self.target.add_resource_dependency(endpoint, "the resource id names the endpoint, not a reference to it")
        autoscaling.CfnScalingPolicy(
            self,
            "InvocationsPerInstance",
            policy_name=f"{endpoint_name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.target.ref,
            target_tracking_scaling_policy_configuration=autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=invocations_per_instance,
                predefined_metric_specification=autoscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_in_cooldown=_SCALE_IN_COOLDOWN_SECONDS,
                scale_out_cooldown=_SCALE_OUT_COOLDOWN_SECONDS,
            ),
        )
