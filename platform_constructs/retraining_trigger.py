"""Retraining that starts itself only when it can help: lambda/retrain on drift alarms and on runs failed by drift."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from platform_constructs.dead_letter_queue import DeadLetterQueue
from platform_constructs.notification_topic import NotificationTopic
from platform_constructs.training_trigger import RULE_MAX_EVENT_AGE, RULE_RETRY_ATTEMPTS, logged_function

FUNCTION_DIR = Path(__file__).resolve().parents[1] / "lambda" / "retrain"
# The namespaces of the alarms that call it (the handler checks them again): Model Monitor's drift and quality metrics.
MONITORED_NAMESPACES = ("aws/sagemaker/Endpoints/data-metrics", "aws/sagemaker/Endpoints/model-metrics")


class RetrainingTrigger(Construct):
    """EventBridge rules -> lambda/retrain: alarms of `alarm_name_prefix` entering ALARM on a monitored metric, and
    failed executions of `drift_pipelines`. The function may list the landing bucket's dataset markers, read the model
    package group, start and list `training_pipeline`, describe the drift pipelines' executions and publish to the
    topic; events it cannot take end in its dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        landing_bucket: s3.IBucket,
        dataset_prefix: str,
        marker_name: str,
        training_pipeline: str,
        drift_pipelines: Sequence[str],
        model_package_group: str,
        alarm_name_prefix: str,
        topic: NotificationTopic,
        log_retention_days: int,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        def sagemaker_arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        self.dead_letter_queue = DeadLetterQueue(self, "DeadLetterQueue").queue
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Starts {training_pipeline} on drift when a newer dataset exists, else notifies",
        )
        statements = [
            (["s3:ListBucket"], [landing_bucket.bucket_arn], {"StringLike": {"s3:prefix": [f"{dataset_prefix}*"]}}),
            (["sagemaker:ListModelPackages"], ["*"], None),
            (["sagemaker:DescribeModelPackage"], [sagemaker_arn("model-package", f"{model_package_group}/*")], None),
            (
                ["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
                [sagemaker_arn("pipeline", training_pipeline)],
                None,
            ),
            (
                ["sagemaker:DescribePipelineExecution"],
                [sagemaker_arn("pipeline", f"{name}/execution/*") for name in drift_pipelines],
                None,
            ),
        ]
        for actions, resources, conditions in statements:
            role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))
        topic.topic.grant_publish(role)
        self.function, self.log_group = logged_function(
            self,
            "RetrainFunction",
            code_dir=FUNCTION_DIR,
            description=f"Starts {training_pipeline} on drift when a newer dataset exists, else notifies",
            environment={
                "TRAINING_PIPELINE": training_pipeline,
                "LANDING_BUCKET": landing_bucket.bucket_name,
                "DATASET_PREFIX": dataset_prefix,
                "MARKER_NAME": marker_name,
                "MODEL_PACKAGE_GROUP": model_package_group,
                "TOPIC_ARN": topic.topic.topic_arn,
            },
            role=role,
            reserved_concurrency=1,  # one decision at a time: two alarms at once must not both start a run
            log_retention_days=log_retention_days,
            log_removal_policy=log_removal_policy,
            dead_letter_queue=self.dead_letter_queue,
            logged="the event's alarm or execution and the datasets compared",
            calls="the S3, SageMaker and SNS APIs",
        )
        patterns = {
            "DriftAlarmRule": events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "alarmName": [{"prefix": alarm_name_prefix}],
                    "state": {"value": ["ALARM"]},
                    "configuration": {"metrics": {"metricStat": {"metric": {"namespace": list(MONITORED_NAMESPACES)}}}},
                },
            ),
            "DriftFailureRule": events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                detail={
                    "pipelineArn": [sagemaker_arn("pipeline", name) for name in drift_pipelines],
                    "currentPipelineExecutionStatus": ["Failed"],
                },
            ),
        }
        for rule_id, pattern in patterns.items():
            events.Rule(self, rule_id, event_pattern=pattern).add_target(
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    max_event_age=RULE_MAX_EVENT_AGE,
                    dead_letter_queue=self.dead_letter_queue,
                )
            )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ListModelPackages has no resource-level permissions.",
            ),
            *(
                Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
                for resource, reason in self._wildcards(stack, model_package_group, drift_pipelines).items()
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                reason="CDK's publish grant on the notifications topic's own key only.",
            ),
        )

    @staticmethod
    def _wildcards(stack: Stack, group: str, pipelines: Sequence[str]) -> dict[str, str]:
        arn = f"arn:aws:sagemaker:{stack.region}:{stack.account}"
        found = {f"{arn}:model-package/{group}/*": "Versions of the unit's own group; numbered at registration."}
        for name in pipelines:
            found[f"{arn}:pipeline/{name}/execution/*"] = "Executions are created at run time."
        return found
