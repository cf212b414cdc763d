"""The role SageMaker Pipelines runs the pipelines and their jobs with, scoped to exactly what the steps touch."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Acknowledgment, Fn, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.region_info import RegionInfo
from constructs import Construct


class PipelineExecutionRole(Construct):
    """No `sagemaker:*`, no managed policies: each statement names its actions and resources.

    The few wildcards are inherent (job names are generated per execution, object keys per run, and some
    APIs have no resource-level permissions); each is acknowledged for cdk-nag with its reason.

    `job_name_prefix` is the prefix SageMaker Pipelines gives the jobs it creates (`pipelines-<execution id>-...`);
    `artifacts_prefix` is where the steps read and write in the artifacts bucket, `captured_prefixes` what they only
    read there (the endpoint's data capture, for the eval-only pipeline); `image_uri` is the framework
    image the jobs run (`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`), pullable from its
    repository only.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_group_name: str,
        data_key: kms.IKey,
        artifacts_bucket_arn_export: str,
        training_data_bucket_arn_export: str,
        read_prefixes: Sequence[str],
        code_objects: Sequence[tuple[str, str]],
        image_uri: str,
        job_name_prefix: str,
        artifacts_prefix: str,
        captured_prefixes: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # A concrete partition keeps ARNs plain strings, so each acknowledged finding can be named exactly
        # (an environment-agnostic stack gets the AWS::Partition pseudo parameter instead).
        partition = RegionInfo.get(stack.region).partition or stack.partition
        self._wildcards: dict[str, str] = {}
        self.role = sagemaker_role(
            self, "Role", "Runs the SageMaker pipelines of this unit and their processing and training jobs"
        )

        def sagemaker_arn(resource: str, name: str) -> str:
            return f"arn:{partition}:sagemaker:{stack.region}:{stack.account}:{resource}/{name}"

        def objects(bucket_arn_export: str, prefix: str, reason: str) -> str:
            """`<bucket arn>/<prefix>*` for a bucket of the storage stack, imported by its export name."""
            # cdk-nag names an imported value by its export name in the finding.
            self._wildcards[f"{bucket_arn_export}/{prefix}*"] = reason
            return Fn.join("", [Fn.import_value(bucket_arn_export), f"/{prefix}*"])

        def wildcard(resource: str, reason: str) -> str:
            self._wildcards[resource] = reason
            return resource

        allow = functools.partial(grant, self.role)

        generated_job_names = (
            f"SageMaker Pipelines names each job {job_name_prefix}<execution id>-<step>-<suffix> at run time."
        )
        processing_jobs = wildcard(sagemaker_arn("processing-job", f"{job_name_prefix}*"), generated_job_names)
        training_jobs = wildcard(sagemaker_arn("training-job", f"{job_name_prefix}*"), generated_job_names)
        transform_jobs = wildcard(sagemaker_arn("transform-job", f"{job_name_prefix}*"), generated_job_names)
        allow(
            "RunPipelineJobs",
            [
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
            ],
            [processing_jobs, training_jobs, transform_jobs],
        )
        # The scoring pipeline's CreateModel step: a model of a registered package, named by Pipelines at run time
        # (the name's form is not documented; confirmed only in a real account - README, "Scoring the customer base").
        allow(
            "CreateScoringModels",
            ["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"],
            [wildcard(sagemaker_arn("model", "*"), "Pipelines names the model a Model step creates at run time.")],
        )
        group_arn = sagemaker_arn("model-package-group", model_package_group_name)
        packages_arn = wildcard(
            sagemaker_arn("model-package", f"{model_package_group_name}/*"),
            "Versions of this unit's own model package group only; version numbers are assigned at registration.",
        )
        allow(
            "RegisterAndReadModels",
            [
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:AddTags",
            ],
            [group_arn, packages_arn],
        )
        allow("ListModelPackages", ["sagemaker:ListModelPackages"], ["*"])
        allow(
            "ReadLandedData",
            ["s3:GetObject"],
            [
                objects(training_data_bucket_arn_export, prefix, "Datasets arrive under new ids at run time.")
                for prefix in read_prefixes
            ],
        )
        allow(
            "ListLandedData",
            ["s3:ListBucket"],
            [Fn.import_value(training_data_bucket_arn_export)],
            {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in read_prefixes]}},
        )
        allow(
            "ReadWritePipelineArtifacts",
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            [objects(artifacts_bucket_arn_export, artifacts_prefix, "Each execution writes under its own id.")],
        )
        if captured_prefixes:
            allow(
                "ReadCapturedTraffic",
                ["s3:GetObject"],
                [
                    objects(artifacts_bucket_arn_export, prefix, "The endpoint writes a capture file per hour.")
                    for prefix in captured_prefixes
                ],
            )
        allow(
            "ListPipelineArtifacts",
            ["s3:ListBucket"],
            [Fn.import_value(artifacts_bucket_arn_export)],
            {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in (artifacts_prefix, *captured_prefixes)]}},
        )
        # Step code: exactly the content-addressed objects this unit's definitions reference.
        code_buckets = sorted({bucket for bucket, _ in code_objects})
        allow("ReadStepCode", ["s3:GetObject"], [f"arn:{partition}:s3:::{b}/{k}" for b, k in code_objects])
        allow(
            "ListStepCode",
            ["s3:ListBucket"],
            [f"arn:{partition}:s3:::{b}" for b in code_buckets],
            {"StringEquals": {"s3:prefix": sorted(key for _, key in code_objects)}},
        )
        data_key.grant_encrypt_decrypt(self.role)
        allow(
            "EncryptJobVolumes",
            ["kms:CreateGrant"],
            [data_key.key_arn],
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
        allow("PullFrameworkImageToken", ["ecr:GetAuthorizationToken"], ["*"])
        allow(
            "PullFrameworkImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [repository_arn(image_uri, partition)],
        )
        log_groups = [
            wildcard(
                f"arn:{partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/{kind}:*",
                "SageMaker writes every job's log stream into this fixed, service-named log group.",
            )
            for kind in ("ProcessingJobs", "TrainingJobs", "TransformJobs")
        ]
        allow(
            "WriteJobLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            log_groups,
        )
        allow(
            "PublishJobMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
        allow(
            "PassSelfToJobs",
            ["iam:PassRole"],
            [self.role.role_arn],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        self._acknowledge_inherent_wildcards()

    def _acknowledge_inherent_wildcards(self) -> None:
        reasons = {
            "Resource::*": "ListModelPackages, ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no "
            "resource-level permissions (PutMetricData is limited to the /aws/sagemaker/* namespace).",
            "Action::kms:GenerateDataKey*": "CDK's encrypt/decrypt grant on the unit's own data key only.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the unit's own data key only.",
        } | {f"Resource::{resource}": reason for resource, reason in self._wildcards.items()}
        Validations.of(self.role).acknowledge(
            *(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items())
        )


def repository_arn(image_uri: str, partition: str) -> str:
    """The ECR repository ARN of `<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:<tag>|@<digest>]`."""
    registry, _, path = image_uri.partition("/")
    repository = path.split("@")[0].split(":")[0]
    account, dkr, ecr, region = ([*registry.split("."), "", "", "", ""])[:4]
    if not (account.isdigit() and (dkr, ecr) == ("dkr", "ecr") and region and repository):
        raise ValueError(
            f"{image_uri!r} is not an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"
        )
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"


def sagemaker_role(scope: Construct, construct_id: str, description: str) -> iam.Role:
    """A role only SageMaker, acting for this account, may assume (no managed policies: add statements to it)."""
    account = Stack.of(scope).account
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(
            "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": account}}
        ),
        description=description,
    )


def grant(
    role: iam.Role, sid: str, actions: list[str], resources: list[str], conditions: Mapping[str, Any] | None = None
) -> None:
    """One named statement on `role`'s default policy."""
    role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions))
