"""The registry's record that a unit serves a version: its ModelLifeCycle set by the deployment itself.

`mlops promote` marks the pinned version PendingDeployment; this custom resource marks it Deployed (Stage = the unit)
once CloudFormation has the endpoint on it, and Undeployed when a later deployment replaces it (the resource's id
carries the version, so a promotion creates the new record before the old one is deleted). The call is
UpdateModelPackage with ModelLifeCycle only, allowed on that one package version.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from platform_constructs.compliance import cfn_resource, explain_cdk_provider_function, skip_checkov

DEPLOYED, UNDEPLOYED = "Deployed", "Undeployed"
# The construct id CDK gives the AwsCustomResource provider function (fixed: one function per stack).
PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"


class ServedLifecycle(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_arn: str,
        stage: str,
        endpoint_name: str,
        after: IConstruct,
        log_retention_days: int,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        def update(status: str, description: str) -> cr.AwsSdkCall:
            return cr.AwsSdkCall(
                service="SageMaker",
                action="updateModelPackage",
                parameters={
                    "ModelPackageArn": model_package_arn,
                    "ModelLifeCycle": {"Stage": stage, "StageStatus": status, "StageDescription": description},
                },
                physical_resource_id=cr.PhysicalResourceId.of(f"{model_package_arn}@{stage}"),
            )

        logs_group = logs.LogGroup(self, "Logs", removal_policy=log_removal_policy)
        log_group_resource = cfn_resource(logs_group.node.default_child, logs.CfnLogGroup)
        # The L2 takes only the RetentionDays enum; the config holds a validated number of days.
        log_group_resource.retention_in_days = log_retention_days
        skip_checkov(
            log_group_resource,
            CKV_AWS_158="CloudWatch Logs encrypts every log group at rest; these lines hold the package ARN and the "
            "call's outcome, no data or secrets, so a customer key (and its logs key policy) protects nothing more.",
        )
        deployed = update(DEPLOYED, f"served by {endpoint_name} (deployed by CloudFormation)")
        self.record = cr.AwsCustomResource(
            self,
            "Record",
            on_create=deployed,
            on_update=deployed,
            on_delete=update(UNDEPLOYED, f"no longer served by {endpoint_name}"),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["sagemaker:UpdateModelPackage"], resources=[model_package_arn])]
            ),
            # The runtime's bundled SDK: installing the latest at run time would fetch from npm during a deploy.
            install_latest_aws_sdk=False,
            log_group=logs_group,
        )
        self.record.node.add_dependency(after)
        # The provider is one Lambda per stack (CDK's singleton), created with the first AwsCustomResource.
        provider = Stack.of(self).node.find_child(PROVIDER_ID)
        explain_cdk_provider_function(
            cfn_resource(provider.node.default_child, lambda_.CfnFunction),
            runs="when a deployment changes the served version",
            calls="UpdateModelPackage on that version",
        )
        Validations.of(provider).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                reason="CDK's AwsCustomResource provider writes its own logs with the basic execution policy; its only "
                "other permission is UpdateModelPackage on the served version.",
            )
        )
