"""A SageMaker pipeline owned by CloudFormation: its definition is visible in `cdk diff` and rolled back on failure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from aws_cdk import Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

# Inline definitions travel in the template. CloudFormation templates may reach 1 MB (CDK uploads large ones
# to S3), and SageMaker accepts definitions up to 1 MB: switching at 200 KB keeps a wide margin to both.
INLINE_DEFINITION_LIMIT_BYTES = 200_000


class SageMakerPipeline(Construct):
    """A `CfnPipeline` whose definition JSON carries placeholders that become CloudFormation values.

    `substitutions` maps each placeholder string in `definition` to a token (role ARN, bucket name, key
    ARN); the definition is deployed as `Fn::Sub`, so no value is fixed at synth that CloudFormation
    generates at deploy time. A definition above `inline_limit_bytes` is written to the artifacts bucket
    at deploy time (tokens resolved there too) and referenced as an S3 location instead.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        description: str,
        definition: str,
        substitutions: Mapping[str, str],
        role: iam.IRole,
        definitions_bucket: s3.IBucket,
        inline_limit_bytes: int = INLINE_DEFINITION_LIMIT_BYTES,
    ) -> None:
        super().__init__(scope, construct_id)
        if "${" in definition:
            raise ValueError(f"the definition of {pipeline_name} contains '${{', which Fn::Sub would misread")
        template = definition
        variables = {}
        for index, (placeholder, value) in enumerate(sorted(substitutions.items())):
            if placeholder not in definition:
                raise ValueError(f"placeholder {placeholder!r} does not occur in the definition of {pipeline_name}")
            variable = f"Value{index}"
            template = template.replace(placeholder, "${" + variable + "}")
            variables[variable] = value
        body = Fn.sub(template, variables)
        self.definition = definition
        self.inline = len(definition.encode()) <= inline_limit_bytes
        # `pipeline_definition` is untyped in CDK: a PipelineDefinitionProperty would be rendered with camelCase
        # keys that CloudFormation rejects, so both variants are written as raw CloudFormation.
        if self.inline:
            pipeline_definition: dict = {"PipelineDefinitionBody": body}
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
