"""A SageMaker pipeline owned by CloudFormation: its definition is visible in `cdk diff` and rolled back on failure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from aws_cdk import Acknowledgment, CfnResource, Fn, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from platform_constructs.compliance import cfn_resource, ignore_cfn_lint, skip_checkov

# Inline definitions travel in the template. CloudFormation templates may reach 1 MB (CDK uploads large ones
# to S3), and SageMaker accepts definitions up to 1 MB: switching at 200 KB keeps a wide margin to both.
INLINE_DEFINITION_LIMIT_BYTES = 200_000


class SageMakerPipeline(Construct):
    """A `CfnPipeline` whose definition JSON carries placeholders that become CloudFormation values.

    `substitutions` = {variable: (placeholder, token)}: each placeholder string in `definition` becomes
    `${variable}` of an `Fn::Sub` whose value is the token (role ARN, bucket name, key ARN), so no value that
    CloudFormation generates at deploy time is fixed at synth. The variable names (see
    `pipeline_defs.definitions.PLACEHOLDERS`) tell readers and the local runner what each value is.
    A definition above `inline_limit_bytes` is written to `definitions_bucket`
    (imported by the export name of its ARN) at deploy time by CDK's BucketDeployment, which resolves the
    same tokens there, and referenced as an S3 location instead.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        description: str,
        definition: str,
        substitutions: Mapping[str, tuple[str, str]],
        role: iam.IRole,
        definitions_bucket: s3.IBucket,
        definitions_bucket_export: str,
        assets_bucket_name: str,
        inline_limit_bytes: int = INLINE_DEFINITION_LIMIT_BYTES,
    ) -> None:
        super().__init__(scope, construct_id)
        if "${" in definition:
            raise ValueError(f"the definition of {pipeline_name} contains '${{', which Fn::Sub would misread")
        template = definition
        variables = {}
        for variable, (placeholder, value) in sorted(substitutions.items()):
            if placeholder not in definition:
                raise ValueError(f"placeholder {placeholder!r} does not occur in the definition of {pipeline_name}")
            template = template.replace(placeholder, "${" + variable + "}")
            variables[str(variable)] = value
        body = Fn.sub(template, variables)
        self.definition = definition
        self.inline = len(definition.encode()) <= inline_limit_bytes
        # `pipeline_definition` is untyped in CDK: a PipelineDefinitionProperty would be rendered with camelCase
        # keys that CloudFormation rejects, so both variants are written as raw CloudFormation.
        if self.inline:
            pipeline_definition: dict[str, object] = {"PipelineDefinitionBody": body}
        else:
            # Content-addressed key: a changed definition is a new object, so CloudFormation updates the pipeline.
            key = f"pipeline-definitions/{pipeline_name}/{hashlib.sha256(definition.encode()).hexdigest()}.json"
            deployment = s3_deployment.BucketDeployment(
                self,
                "Definition",
                sources=[s3_deployment.Source.data(key, body)],
                destination_bucket=definitions_bucket,
                prune=False,
                retain_on_delete=True,
            )
            _acknowledge_bucket_deployment(Stack.of(self), definitions_bucket_export, assets_bucket_name)
            pipeline_definition = {
                "PipelineDefinitionS3Location": {"Bucket": deployment.deployed_bucket.bucket_name, "Key": key}
            }
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=description,
            pipeline_definition=pipeline_definition,
            role_arn=role.role_arn,
        )
        self.pipeline_name = pipeline_name


def _acknowledge_bucket_deployment(stack: Stack, bucket_export: str, assets_bucket_name: str) -> None:
    """Reasons for the findings on CDK's BucketDeployment handler (one per stack, only for large definitions)."""
    partition = RegionInfo.get(stack.region).partition or stack.partition
    handler = next(c for c in stack.node.children if c.node.id.startswith("Custom::CDKBucketDeployment"))
    cdk_managed = "CDK's BucketDeployment handler, used only to write a pipeline definition too large to inline"
    basic_execution_policy = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    reasons = {
        f"AwsSolutions-IAM4[Policy::{basic_execution_policy}]": f"{cdk_managed}: CDK attaches it for its logs.",
        "AwsSolutions-L1": f"{cdk_managed}: CDK pins the runtime its bundled handler is tested with.",
    } | {
        f"AwsSolutions-IAM5[{finding}]": f"{cdk_managed}: CDK's read grant on the asset and write grant on the target."
        for finding in (
            "Action::s3:GetObject*",
            "Action::s3:GetBucket*",
            "Action::s3:List*",
            "Action::s3:DeleteObject*",
            "Action::s3:Abort*",
            f"Resource::arn:{partition}:s3:::{assets_bucket_name}/*",
            f"Resource::{bucket_export}/*",
        )
    }
    Validations.of(handler).acknowledge(*(Acknowledgment(id=i, reason=r) for i, r in reasons.items()))
    function = cfn_resource(handler.node.default_child, CfnResource)
    skip_checkov(
        function,
        CKV_AWS_115=f"{cdk_managed}; runs once per deployment.",
        CKV_AWS_116=f"{cdk_managed}; CloudFormation reports its failure on the stack.",
        CKV_AWS_117=f"{cdk_managed}; it only calls S3.",
        CKV_AWS_173=f"{cdk_managed}; its environment holds no secrets.",
    )
    ignore_cfn_lint(function, "W3005", f"{cdk_managed}; CDK emits DependsOn and GetAtt on its role, redundant.")
    for log_group in (c for c in handler.node.find_all() if isinstance(c, logs.CfnLogGroup)):
        skip_checkov(log_group, CKV_AWS_158=f"{cdk_managed}; its log holds object keys, not data.")
