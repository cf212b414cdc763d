"""The role a served model runs with: pull its image, read its own model and code, write its data capture."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Fn, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from platform_constructs.pipeline_execution_role import repository_arn


class ModelExecutionRole(Construct):
    """Least privilege for one pinned model version: its objects are named exactly, not by prefix.

    `model_objects` are the S3 URIs the container reads (the model artifact and the inference code tarball);
    `capture_prefix` is where the endpoint writes its data capture in the artifacts bucket (imported by the
    export name of its ARN, so the acknowledged wildcard can be named exactly).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        image_uri: str,
        model_objects: list[str],
        data_key: kms.IKey,
        artifacts_bucket_arn_export: str,
        capture_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        partition = RegionInfo.get(stack.region).partition or stack.partition
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"Runs the model behind the endpoint {endpoint_name} and writes its data capture",
        )

        def allow(
            sid: str, actions: list[str], resources: list[str], conditions: dict[str, object] | None = None
        ) -> None:
            self.role.add_to_policy(
                iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions)
            )

        allow("PullInferenceImageToken", ["ecr:GetAuthorizationToken"], ["*"])
        allow(
            "PullInferenceImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [repository_arn(image_uri, partition)],
        )
        allow("ReadModelAndCode", ["s3:GetObject"], [_object_arn(uri, partition) for uri in model_objects])
        capture_objects = f"{artifacts_bucket_arn_export}/{capture_prefix}*"
        allow(
            "WriteDataCapture",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [Fn.join("", [Fn.import_value(artifacts_bucket_arn_export), f"/{capture_prefix}*"])],
        )
        # Decrypt the model (SSE-KMS in the artifacts bucket); encrypt the capture files with the same key.
        allow("UseDataKey", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [data_key.key_arn])
        log_group = (
            f"arn:{partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}:*"
        )
        allow(
            "WriteEndpointLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [log_group],
        )
        allow(
            "PublishEndpointMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
        reasons = {
            "Resource::*": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions (PutMetricData is limited to the /aws/sagemaker/* namespace).",
            f"Resource::{capture_objects}": "SageMaker names each capture file by endpoint, variant and hour.",
            f"Resource::{log_group}": "SageMaker writes one log stream per instance into the endpoint's log group.",
        }
        # What must exist before CreateModel, which checks the role can do its work (the role itself is referenced).
        self.policy = self.role.node.find_child("DefaultPolicy")
        Validations.of(self.role).acknowledge(
            *(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items())
        )


def _object_arn(uri: str, partition: str) -> str:
    """arn:<partition>:s3:::<bucket>/<key> of s3://<bucket>/<key>."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError(f"{uri!r} is not an s3://<bucket>/<key> object URI")
    return f"arn:{partition}:s3:::{bucket}/{key}"
