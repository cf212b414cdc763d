"""How CI gets into an account: GitHub's OIDC provider and one deploy role per environment, no long-lived keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, DefaultStackSynthesizer, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk.region_info import RegionInfo
from constructs import Construct

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# The audience aws-actions/configure-aws-credentials requests its token for.
STS_AUDIENCE = "sts.amazonaws.com"
# Where a synthesizer's qualifier comes from when `cdk bootstrap --qualifier` chose another one.
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"


@dataclass(frozen=True)
class DeployTarget:
    """One environment CI deploys to: its GitHub environment, the role's name, and the bootstrap's region."""

    github_repository: str  # owner/name
    github_environment: str
    role_name: str
    region: str

    @property
    def subject(self) -> str:
        """The `sub` claim of a GitHub Actions token for a job of this repository in this environment."""
        return f"repo:{self.github_repository}:environment:{self.github_environment}"


class DeploymentAccess(Construct):
    """GitHub's OIDC provider of this stack's account and a deploy role per target, each trusted only for the tokens
    of its repository's jobs in its GitHub environment and allowed only to assume the CDK bootstrap roles of this
    account in its target's region (the roles `cdk deploy` uses: deploy, file and image publishing, lookup)."""

    def __init__(self, scope: Construct, construct_id: str, *, targets: Sequence[DeployTarget]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # A concrete partition keeps the ARNs plain strings, so the acknowledged finding names them exactly.
        partition = RegionInfo.get(stack.region).partition or stack.partition
        qualifier = self.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT) or DefaultStackSynthesizer.DEFAULT_QUALIFIER
        # The native AWS::IAM::OIDCProvider: no custom-resource Lambda. IAM verifies GitHub's certificate through its
        # own trusted CAs, so no thumbprint is pinned (a pinned one breaks when GitHub rotates its certificate).
        self.provider = iam.OidcProviderNative(
            self, "GitHubProvider", url=f"https://{GITHUB_OIDC_HOST}", client_ids=[STS_AUDIENCE]
        )
        self.roles: dict[str, iam.Role] = {}
        for target in targets:
            bootstrap_roles = (
                f"arn:{partition}:iam::{stack.account}:role/cdk-{qualifier}-*-{stack.account}-{target.region}"
            )
            role = iam.Role(
                self,
                f"DeployRole-{target.github_environment}",
                role_name=target.role_name,
                description=f"GitHub Actions deploys from {target.subject}: assumes the CDK bootstrap roles only",
                assumed_by=iam.WebIdentityPrincipal(
                    self.provider.oidc_provider_arn,
                    conditions={
                        "StringEquals": {
                            f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                            f"{GITHUB_OIDC_HOST}:sub": target.subject,
                        }
                    },
                ),
                max_session_duration=Duration.hours(1),
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AssumeCdkBootstrapRoles", actions=["sts:AssumeRole"], resources=[bootstrap_roles]
                )
            )
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{bootstrap_roles}]",
                    reason="The CDK bootstrap roles of this account and region (deploy, file and image publishing, "
                    "lookup), named by the bootstrap; no other role matches the pattern.",
                )
            )
            self.roles[target.github_environment] = role
