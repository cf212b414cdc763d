"""The role Model Monitor's jobs run with: read one endpoint's capture, its baselines and labels; write its reports."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aws_cdk import Acknowledgment, Fn, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from platform_constructs.model_execution_role import object_arn
from platform_constructs.pipeline_execution_role import grant, repository_arn, sagemaker_role


class MonitoringRole(Construct):
    """Least privilege for the monitors of one endpoint.

    `baseline_objects` are the pinned baselines (S3 object URIs), readable exactly; `capture_prefix` (artifacts
    bucket) is where the endpoint writes its data capture, `ground_truth_prefix` (landing bucket) where producers put
    labels, `reports_prefix` (artifacts bucket) where the jobs write their reports and the model-quality merge its
    merged data. Buckets are imported by the export names of their ARNs, so each acknowledged wildcard is named.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        image_uri: str,
        baseline_objects: Sequence[str],
        data_key: kms.IKey,
        artifacts_bucket_arn_export: str,
        landing_bucket_arn_export: str,
        capture_prefix: str,
        ground_truth_prefix: str,
        reports_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        partition = RegionInfo.get(stack.region).partition or stack.partition
        self._wildcards: dict[str, str] = {}
        self.role = sagemaker_role(self, "Role", f"Runs the Model Monitor jobs of the endpoint {endpoint_name}")
        allow = functools.partial(grant, self.role)

        def objects(bucket_arn_export: str, prefix: str, reason: str) -> str:
            self._wildcards[f"{bucket_arn_export}/{prefix}*"] = reason
            return Fn.join("", [Fn.import_value(bucket_arn_export), f"/{prefix}*"])

        allow(
            "ReadDataCapture",
            ["s3:GetObject"],
            [objects(artifacts_bucket_arn_export, capture_prefix, "SageMaker names each capture file by hour.")],
        )
        allow("ReadBaselines", ["s3:GetObject"], [object_arn(uri, partition) for uri in baseline_objects])
        allow(
            "ReadGroundTruth",
            ["s3:GetObject"],
            [objects(landing_bucket_arn_export, ground_truth_prefix, "Producers add label files by hour.")],
        )
        allow(
            "WriteReports",
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            [
                objects(
                    artifacts_bucket_arn_export, reports_prefix, "Each execution writes under its schedule and hour."
                )
            ],
        )
        allow(
            "ListMonitoredData",
            ["s3:ListBucket"],
            [Fn.import_value(artifacts_bucket_arn_export)],
            {"StringLike": {"s3:prefix": [f"{capture_prefix}*", f"{reports_prefix}*"]}},
        )
        allow(
            "ListGroundTruth",
            ["s3:ListBucket"],
            [Fn.import_value(landing_bucket_arn_export)],
            {"StringLike": {"s3:prefix": [f"{ground_truth_prefix}*"]}},
        )
        # Capture, baselines and labels are SSE-KMS with the unit's key; reports are written with it too.
        allow("UseDataKey", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [data_key.key_arn])
        allow(
            "EncryptJobVolumes",
            ["kms:CreateGrant"],
            [data_key.key_arn],
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
        allow("PullAnalyzerImageToken", ["ecr:GetAuthorizationToken"], ["*"])
        allow(
            "PullAnalyzerImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [repository_arn(image_uri, partition)],
        )
        # Monitoring executions are processing jobs: SageMaker logs them into this service-named group.
        log_group = f"arn:{partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/ProcessingJobs:*"
        self._wildcards[log_group] = "SageMaker writes one log stream per monitoring job into this fixed log group."
        allow(
            "WriteJobLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [log_group],
        )
        allow(
            "PublishMonitorMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            # The analyzer's namespaces are spelled with and without the leading slash in AWS's own docs.
            {"StringLike": {"cloudwatch:namespace": ["aws/sagemaker/*", "/aws/sagemaker/*"]}},
        )
        reasons = {
            "Resource::*": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions (PutMetricData is limited to the SageMaker namespaces).",
        } | {f"Resource::{resource}": reason for resource, reason in self._wildcards.items()}
        Validations.of(self.role).acknowledge(
            *(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items())
        )
        # What must exist before SageMaker validates the role at CreateMonitoringSchedule / CreateJobDefinition.
        self.policy = self.role.node.find_child("DefaultPolicy")
