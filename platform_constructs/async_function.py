"""What every platform function invoked asynchronously by an EventBridge rule shares: its retries, its own log group,
and the checker findings such a function answers the same way (the dataset trigger, the execution tracking)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
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
