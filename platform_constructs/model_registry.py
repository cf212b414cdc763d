"""The SageMaker Model Registry group that holds every trained model version and its approval state."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    """A model package group with a stable, human-facing name.

    No resource policy: only roles of this account register and read packages, which IAM already governs.
    Approval is the group's workflow: packages arrive PendingManualApproval (or as the pipeline parameter
    says) and a human or CI flips them to Approved, which makes them the incumbent of the next run.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group_name: str,
        description: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=group_name,
            model_package_group_description=description,
        )
        self.group.apply_removal_policy(removal_policy)
        self.group_name = group_name
        self.group_arn = self.group.attr_model_package_group_arn
