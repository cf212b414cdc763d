"""Start a pipeline (training, scoring) once per dataset when the dataset's marker lands in the landing bucket."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_defs.trigger_rules import FUNCTION_DIR, trigger_rules
from platform_constructs.compliance import cfn_resource, ignore_cfn_lint, skip_checkov
from platform_constructs.dead_letter_queue import DeadLetterQueue

# The handler's boto client makes up to 4 attempts of (5 s connect + 20 s read) plus backoff, after a paginated
# ListPipelineExecutions: 120 s lets it finish its own retries before Lambda cuts it off.
FUNCTION_TIMEOUT = Duration.seconds(120)
FUNCTION_MEMORY_MB = 256
# Lambda's async retries (at most 2, spaced 1 and 2 minutes) for errors the handler raises; then the DLQ.
FUNCTION_RETRY_ATTEMPTS = 2
FUNCTION_MAX_EVENT_AGE = Duration.hours(6)
# EventBridge retries failed deliveries to Lambda (service errors) as long as it allows: a marker must not be
# lost to a Lambda outage. Undeliverable events go to the same DLQ.
RULE_RETRY_ATTEMPTS = 185
RULE_MAX_EVENT_AGE = Duration.hours(24)


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
        self.function, self.log_group = logged_function(
            self,
            "StartPipelineFunction",
            code_dir=FUNCTION_DIR,
            description=f"Starts {pipeline_name} once per dataset marker in the landing bucket",
            environment={
                "PIPELINE_NAME": pipeline_name,
                "LANDING_BUCKET": landing_bucket.bucket_name,
                "DATASET_PREFIX": dataset_prefix,
                "MARKER_NAME": marker_name,
            },
            role=role,
            reserved_concurrency=reserved_concurrency,
            log_retention_days=log_retention_days,
            log_removal_policy=log_removal_policy,
            dead_letter_queue=self.dead_letter_queue,
            logged="bucket, key, dataset id and execution ARN",
            calls="the SageMaker API",
        )

        self.rule = events.Rule(
            self,
            "DatasetMarkerRule",
            description=f"A dataset marker ({dataset_prefix}<dataset-id>/{marker_name}) landed: start {pipeline_name}",
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


def logged_function(
    scope: Construct,
    construct_id: str,
    *,
    code_dir: Path,
    description: str,
    environment: dict[str, str],
    role: iam.Role,
    reserved_concurrency: int,
    log_retention_days: int,
    log_removal_policy: RemovalPolicy,
    dead_letter_queue: sqs.IQueue,
    logged: str,
    calls: str,
    timeout: Duration = FUNCTION_TIMEOUT,
) -> tuple[lambda_.Function, logs.LogGroup]:
    """A platform function (`code_dir`'s handler.handler, Python on ARM) with its own log group (the config's
    retention; the role may write to it only) whose failed async invocations end in `dead_letter_queue`. `logged` and
    `calls` say what its log lines hold and which APIs it calls: the reasons of its checker exceptions."""
    log_group = logs.LogGroup(scope, "LogGroup", removal_policy=log_removal_policy)
    # The L2 takes only the RetentionDays enum; the config holds a validated number of days.
    log_group_resource = cfn_resource(log_group.node.default_child, logs.CfnLogGroup)
    log_group_resource.retention_in_days = log_retention_days
    skip_checkov(
        log_group_resource,
        CKV_AWS_158=f"CloudWatch Logs encrypts every log group at rest; these lines hold {logged}, no data or "
        "secrets, so a customer key (and its logs key policy) protects nothing more.",
    )
    # Instead of AWSLambdaBasicExecutionRole (every log group of the account): its own group only.
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc"]),
        handler="handler.handler",
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
        timeout=timeout,
        memory_size=FUNCTION_MEMORY_MB,
        reserved_concurrent_executions=reserved_concurrency,
        environment=environment,
        role=role,
        log_group=log_group,
        # The handler writes one JSON object per line; JSON makes Lambda's own START/REPORT lines match.
        logging_format=lambda_.LoggingFormat.JSON,
        retry_attempts=FUNCTION_RETRY_ATTEMPTS,
        max_event_age=FUNCTION_MAX_EVENT_AGE,
        on_failure=destinations.SqsDestination(dead_letter_queue),
    )
    function_resource = cfn_resource(function.node.default_child, lambda_.CfnFunction)
    skip_checkov(
        function_resource,
        CKV_AWS_116="Failed async invocations go to the on-failure destination (EventInvokeConfig -> the DLQ), "
        "which keeps the error and request context; DeadLetterConfig would keep only the payload.",
        CKV_AWS_117=f"It reads no data and calls only {calls} (TLS, IAM); a VPC would add a NAT gateway "
        "or an API endpoint per environment and protect nothing.",
        CKV_AWS_173=f"The {len(environment)} variables are non-secret settings that the template shows anyway; Lambda "
        "encrypts them at rest with its AWS managed key.",
    )
    ignore_cfn_lint(
        function_resource,
        "W3005",
        "CDK's Function adds DependsOn on its role (with the role's default policy, which it needs); the role "
        "part duplicates the GetAtt, harmless and not ours to change.",
    )
    return function, log_group
