"""What every platform function invoked asynchronously by an EventBridge rule shares: its retries, its own log group,
and the checker findings such a function answers the same way (the dataset trigger, the execution tracking)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from platform_constructs.compliance import cfn_resource, ignore_cfn_lint, skip_checkov

# Lambda's async retries (at most 2, spaced 1 and 2 minutes) for errors the handler raises; then the DLQ.
FUNCTION_RETRY_ATTEMPTS = 2
FUNCTION_MAX_EVENT_AGE = Duration.hours(6)
# EventBridge retries failed deliveries to Lambda (service errors) as long as it allows: an event must not be lost to a
# Lambda outage. Undeliverable events go to the same DLQ.
RULE_RETRY_ATTEMPTS = 185
RULE_MAX_EVENT_AGE = Duration.hours(24)


def function_log_group(
    scope: Construct, construct_id: str, *, retention_days: int, removal_policy: RemovalPolicy, holds: str
) -> logs.LogGroup:
    """The function's own log group (instead of AWSLambdaBasicExecutionRole's every group), kept `retention_days`.

    `holds` says what its lines contain: the reason a customer key would protect nothing more.
    """
    log_group = logs.LogGroup(scope, construct_id, removal_policy=removal_policy)
    # The L2 takes only the RetentionDays enum; the config holds a validated number of days.
    resource = cfn_resource(log_group.node.default_child, logs.CfnLogGroup)
    resource.retention_in_days = retention_days
    skip_checkov(
        resource,
        CKV_AWS_158=f"CloudWatch Logs encrypts every log group at rest; these lines hold {holds}, no data or secrets, "
        "so a customer key (and its logs key policy) protects nothing more.",
    )
    return log_group


def async_function(
    scope: Construct,
    construct_id: str,
    *,
    folder: Path,
    description: str,
    timeout: Duration,
    memory_mb: int,
    reserved_concurrency: int,
    environment: Mapping[str, str],
    role: iam.IRole,
    log_group: logs.ILogGroup,
    dead_letter_queue: sqs.IQueue,
    calls: str,
) -> lambda_.Function:
    """A Python function from a lambda/ asset folder (`handler.handler`), retried, its failures kept in the DLQ.

    `calls` names the APIs it calls, for the checker findings (see `answer_function_findings`).
    """
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        code=lambda_.Code.from_asset(str(folder), exclude=["__pycache__", "*.pyc"]),
        handler="handler.handler",
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
        timeout=timeout,
        memory_size=memory_mb,
        reserved_concurrent_executions=reserved_concurrency,
        environment=dict(environment),
        role=role,
        log_group=log_group,
        # The handlers write one JSON object per line; JSON makes Lambda's own START/REPORT lines match.
        logging_format=lambda_.LoggingFormat.JSON,
        retry_attempts=FUNCTION_RETRY_ATTEMPTS,
        max_event_age=FUNCTION_MAX_EVENT_AGE,
        on_failure=destinations.SqsDestination(dead_letter_queue),
    )
    answer_function_findings(function, calls=calls, variables=f"The {len(environment)} variables")
    return function


def rule_target(function: lambda_.IFunction, dead_letter_queue: sqs.IQueue) -> targets.LambdaFunction:
    """The function as a rule's target: delivery retried as long as EventBridge allows, then the DLQ."""
    return targets.LambdaFunction(
        function,
        retry_attempts=RULE_RETRY_ATTEMPTS,
        max_event_age=RULE_MAX_EVENT_AGE,
        dead_letter_queue=dead_letter_queue,
    )


def answer_function_findings(function: lambda_.Function, *, calls: str, variables: str) -> None:
    """checkov's DLQ, VPC and environment-encryption checks and cfn-lint's W3005, answered with their reasons.

    `calls` names the APIs the function calls (why a VPC protects nothing); `variables` describes its settings.
    """
    resource = cfn_resource(function.node.default_child, lambda_.CfnFunction)
    skip_checkov(
        resource,
        CKV_AWS_116="Failed async invocations go to the on-failure destination (EventInvokeConfig -> the DLQ), "
        "which keeps the error and request context; DeadLetterConfig would keep only the payload.",
        CKV_AWS_117=f"It calls {calls} only (TLS, IAM); a VPC would add a NAT gateway or interface endpoints per "
        "environment and protect nothing.",
        CKV_AWS_173=f"{variables} are non-secret settings that the template shows anyway; Lambda encrypts them at rest "
        "with its AWS managed key.",
    )
    ignore_cfn_lint(
        resource,
        "W3005",
        "CDK's Function adds DependsOn on its role (with the role's default policy, which it needs); the role "
        "part duplicates the GetAtt, harmless and not ours to change.",
    )
