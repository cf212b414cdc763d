"""Start the training pipeline once per dataset when the dataset's marker object lands in the landing bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_defs.trigger_rules import FUNCTION_DIR, trigger_rules
from platform_constructs.async_function import (
    FUNCTION_MAX_EVENT_AGE,
    FUNCTION_RETRY_ATTEMPTS,
    RULE_MAX_EVENT_AGE,
    RULE_RETRY_ATTEMPTS,
    answer_function_findings,
    function_log_group,
)
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

        self.function = lambda_.Function(
            self,
            "StartPipelineFunction",
            description=f"Starts {pipeline_name} once per dataset marker in the landing bucket",
            code=lambda_.Code.from_asset(str(FUNCTION_DIR), exclude=["__pycache__", "*.pyc"]),
            handler="handler.handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            timeout=FUNCTION_TIMEOUT,
            memory_size=FUNCTION_MEMORY_MB,
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                "PIPELINE_NAME": pipeline_name,
                "LANDING_BUCKET": landing_bucket.bucket_name,
                "DATASET_PREFIX": dataset_prefix,
                "MARKER_NAME": marker_name,
            },
            role=role,
            log_group=self.log_group,
            # The handler writes one JSON object per line; JSON makes Lambda's own START/REPORT lines match.
            logging_format=lambda_.LoggingFormat.JSON,
            retry_attempts=FUNCTION_RETRY_ATTEMPTS,
            max_event_age=FUNCTION_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        answer_function_findings(self.function, calls="the SageMaker API", variables="The four variables")

        self.rule = events.Rule(
            self,
            "DatasetMarkerRule",
            description=f"A dataset marker ({dataset_prefix}<dataset-id>/{marker_name}) landed: start training",
            event_pattern=events.EventPattern(**{key.replace("-", "_"): value for key, value in pattern.items()}),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                retry_attempts=RULE_RETRY_ATTEMPTS,
                max_event_age=RULE_MAX_EVENT_AGE,
                dead_letter_queue=self.dead_letter_queue,
            )
        )
