"""Build once, promote everywhere: one unit's model versions served by units in other accounts (model_source).

Cross-account access needs both sides. The SOURCE unit (which trains and registers) shares, by resource policies, its
model package group (describe and list), its artifacts bucket (read objects) and its data key (decrypt); the TARGET
units' roles get the matching identity permissions on the source's package, objects and key.

The source's policies name the target roles by an ARN pattern of their IAM path, `/<target prefix>/<purpose>/`: the
roles keep their generated names (a fixed name would make every replacement of a role fail on the name still being
taken, and needs CAPABILITY_NAMED_IAM), while the path is fixed and set only on those roles. Creating another role with
such a path takes iam:CreateRole in the target account, which already is that account's own trust boundary.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.region_info import RegionInfo

from config import EnvironmentConfig
from pipeline_defs.contract import ARTIFACTS_PREFIX
from platform_constructs.compliance import cfn_resource
from platform_constructs.model_registry import ModelRegistry

# The target roles that read the source's versions: the endpoint's model role and the Model Monitor role.
SERVING_ROLE, MONITORING_ROLE = "serving", "monitoring"
READ_PACKAGE_ACTIONS = [
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListModelPackages",
]
READ_KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey"]


def partition_of(config: EnvironmentConfig) -> str:
    return RegionInfo.get(config.region).partition or "aws"


def role_path(target: EnvironmentConfig, purpose: str) -> str:
    """The IAM path of a target unit's role that reads the source's versions, e.g. /churn-prod/serving/."""
    return f"/{target.name_prefix}/{purpose}/"


def reader_role_patterns(target: EnvironmentConfig) -> list[str]:
    """ARN patterns of the target's model and monitoring roles (the only principals the source's policies admit)."""
    return [
        f"arn:{partition_of(target)}:iam::{target.account}:role{role_path(target, purpose)}*"
        for purpose in (SERVING_ROLE, MONITORING_ROLE)
    ]


def deploy_role_pattern(target: EnvironmentConfig) -> str:
    """The CDK bootstrap's CloudFormation execution role of the target: it calls CreateModel, which describes the
    package with the caller's permissions (any bootstrap qualifier)."""
    partition = partition_of(target)
    return f"arn:{partition}:iam::{target.account}:role/cdk-*-cfn-exec-role-{target.account}-{target.region}"


def _admitted(
    targets: tuple[EnvironmentConfig, ...], *, deploy_roles: bool = False
) -> tuple[list[str], dict[str, Any]]:
    """(principal accounts, the condition admitting only the target roles) of a resource policy statement."""
    patterns = [pattern for target in targets for pattern in reader_role_patterns(target)]
    patterns += [deploy_role_pattern(target) for target in targets] if deploy_roles else []
    accounts = sorted({target.account for target in targets})
    return accounts, {"ArnLike": {"aws:PrincipalArn": patterns}}


def share_models(
    source: EnvironmentConfig,
    targets: tuple[EnvironmentConfig, ...],
    *,
    registry: ModelRegistry,
    artifacts_bucket: s3.IBucket,
    data_key: kms.Key,
) -> None:
    """In the source unit: let the target units' model and monitoring roles read its versions, objects and key."""
    if not targets:
        return
    partition = partition_of(source)
    accounts, condition = _admitted(targets, deploy_roles=True)
    where = f"arn:{partition}:sagemaker:{source.region}:{source.account}"
    group = source.model_package_group_name
    registry.group.model_package_group_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TargetUnitsReadVersions",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:{partition}:iam::{account}:root" for account in accounts]},
                "Action": READ_PACKAGE_ACTIONS,
                "Resource": [f"{where}:model-package-group/{group}", f"{where}:model-package/{group}/*"],
                "Condition": condition,
            }
        ],
    }
    accounts, condition = _admitted(targets)
    principals: list[iam.IPrincipal] = [iam.AccountPrincipal(account) for account in accounts]
    artifacts_bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="TargetUnitsReadModelsAndBaselines",
            principals=principals,
            actions=["s3:GetObject"],
            # What the training pipeline registers (model artifact, baselines, metrics), not capture or reports.
            resources=[artifacts_bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}{source.training_pipeline_name}/*")],
            conditions=condition,
        )
    )
    data_key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="TargetUnitsDecryptModelsAndBaselines",
            principals=principals,
            actions=READ_KEY_ACTIONS,
            resources=["*"],  # in a key policy: this key
            conditions=condition,
        )
    )


def read_source_models(
    role: iam.Role,
    purpose: str,
    target: EnvironmentConfig,
    source: EnvironmentConfig,
    package_arn: str | None = None,
) -> None:
    """In a target unit: give `role` the path the source's policies admit, and its side of reading the source's key
    (and, with `package_arn`, of describing that one version).

    The objects themselves are granted exactly by the role's own statements (the pinned URIs name the source bucket).
    The key is named by its alias: its id is generated in the source account."""
    cfn_resource(role.node.default_child, iam.CfnRole).path = role_path(target, purpose)
    if package_arn is not None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeSourceVersion", actions=["sagemaker:DescribeModelPackage"], resources=[package_arn]
            )
        )
    key_arns = f"arn:{partition_of(source)}:kms:{source.region}:{source.account}:key/*"
    role.add_to_policy(
        iam.PolicyStatement(
            sid="DecryptSourceModels",
            actions=READ_KEY_ACTIONS,
            resources=[key_arns],
            conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": source.data_key_alias}},
        )
    )
    Validations.of(role).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{key_arns}]",
            reason=f"The source's key id is generated in its account: it is named by its alias {source.data_key_alias}"
            " (kms:ResourceAliases).",
        )
    )
