"""Start the training pipeline once per dataset when the dataset's marker object lands in the landing bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_defs.trigger_rules import FUNCTION_DIR, trigger_rules
from platform_constructs.async_function import async_function, function_log_group, rule_target
from platform_constructs.dead_letter_queue import DeadLetterQueue

# The handler's boto client makes up to 4 attempts of (5 s connect + 20 s read) plus backoff, after a paginated
# ListPipelineExecutions: 120 s lets it finish its own retries before Lambda cuts it off.
FUNCTION_TIMEOUT = Duration.seconds(120)
FUNCTION_MEMORY_MB = 256


class TrainingTrigger(Construct):
    """EventBridge rule -> Lambda -> StartPipelineExecution, with every failure kept in a dead-letter queue.

    The rule matches only `Object Created` events of `<dataset_prefix><dataset-id>/<marker_name>` in the
    landing bucket (the pattern shared with the handler, lambda/start_pipeline/event_pattern.py), so the data
    files of a dataset never invoke the function. The function may start and list executions of one pipeline.
    Events the rule cannot deliver and invocations that fail after Lambda's retries land in `dead_letter_queue`;
    `mlops dlq replay` sends them to the function again.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        landing_bucket: s3.IBucket,
        pipeline_name: str,
        dataset_prefix: str,
        marker_name: str,
        reserved_concurrency: int,
        log_retention_days: int,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        pattern = trigger_rules().marker_event_pattern(landing_bucket.bucket_name, dataset_prefix, marker_name)
        self.pipeline_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline_name
        )
        self.dead_letter_queue = DeadLetterQueue(self, "DeadLetterQueue").queue

        self.log_group = function_log_group(
            self,
            "LogGroup",
            retention_days=log_retention_days,
            removal_policy=log_removal_policy,
            holds="bucket, key, dataset id and execution ARN",
        )

        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Starts executions of the SageMaker pipeline {pipeline_name} for new datasets",
            inline_policies={
                "StartTrainingPipeline": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
                            resources=[self.pipeline_arn],
                        )
                    ]
                )
            },
        )
        # Instead of AWSLambdaBasicExecutionRole (every log group of the account): its own group only.
        self.log_group.grant_write(role)

        self.function = async_function(
            self,
            "StartPipelineFunction",
            folder=FUNCTION_DIR,
            description=f"Starts {pipeline_name} once per dataset marker in the landing bucket",
            timeout=FUNCTION_TIMEOUT,
            memory_mb=FUNCTION_MEMORY_MB,
            reserved_concurrency=reserved_concurrency,
            environment={
                "PIPELINE_NAME": pipeline_name,
                "LANDING_BUCKET": landing_bucket.bucket_name,
                "DATASET_PREFIX": dataset_prefix,
                "MARKER_NAME": marker_name,
            },
            role=role,
            log_group=self.log_group,
            dead_letter_queue=self.dead_letter_queue,
            calls="the SageMaker API",
        )

        self.rule = events.Rule(
            self,
            "DatasetMarkerRule",
            description=f"A dataset marker ({dataset_prefix}<dataset-id>/{marker_name}) landed: start training",
            event_pattern=events.EventPattern(**{key.replace("-", "_"): value for key, value in pattern.items()}),
        )
        self.rule.add_target(rule_target(self.function, self.dead_letter_queue))
