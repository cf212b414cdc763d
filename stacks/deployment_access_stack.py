"""How CI gets into one account: deployed once by an administrator (README, "Delivery"), then by CI with the unit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from config import EnvironmentConfig
from platform_constructs.deployment_access import DeploymentAccess, DeployTarget


class DeploymentAccessStack(Stack):
    """GitHub's OIDC provider and the deploy role of each environment in `configs` (all of one account)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, configs: Sequence[EnvironmentConfig], **kwargs: Any
    ) -> None:
        # Deleting it locks CI out of the account: protected like prod's stacks wherever one of its units is.
        protected = any(config.termination_protection for config in configs)
        super().__init__(scope, construct_id, termination_protection=protected, **kwargs)
        targets = [
            DeployTarget(
                github_repository=config.github_repository,
                github_environment=config.github_environment,
                role_name=config.deploy_role_name,
                region=config.region,
            )
            for config in configs
            if config.github_repository is not None
        ]
        self.access = DeploymentAccess(self, "DeploymentAccess", targets=targets)
        # The value of AWS_DEPLOY_ROLE_ARN in each GitHub environment (README, "Delivery", step 4).
        for target in targets:
            CfnOutput(
                self,
                f"DeployRoleArn-{target.github_environment}",
                value=self.access.roles[target.github_environment].role_arn,
                description=f"AWS_DEPLOY_ROLE_ARN of the GitHub environment '{target.github_environment}'",
            )
