"""Tracking in AWS: the unit's managed MLflow and the function that records every finished execution in it."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import EnvironmentConfig
from platform_constructs.execution_tracking import ExecutionTracking


class TrackingStack(Stack):
    """Only where config.tracking_mlflow is on. The App holds the runs, so it is retained with the unit's data."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data_key: kms.IKey,
        artifacts_bucket_name: str,
        artifacts_bucket_arn_export: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        self.tracking = ExecutionTracking(
            self,
            "ExecutionTracking",
            app_name=config.mlflow_app_name,
            pipeline_names=list(config.pipeline_names().values()),
            artifacts_bucket_name=artifacts_bucket_name,
            artifacts_bucket_arn_export=artifacts_bucket_arn_export,
            data_key=data_key,
            log_retention_days=config.log_retention_days,
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        # The tracking URI for mlflow.set_tracking_uri (with the sagemaker-mlflow plugin) and the DLQ for mlops dlq.
        outputs = {
            "MlflowTrackingArn": self.tracking.app.attr_arn,
            "TrackingDeadLetterQueueUrl": self.tracking.dead_letter_queue.queue_url,
            "TrackExecutionFunctionName": self.tracking.function.function_name,
        }
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)
