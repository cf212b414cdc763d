"""Deployment access: CI gets into an account only through GitHub's OIDC token, for this repository and environment."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from config import load_config
from config.environments import deployment_access_configs
from config.settings import GITHUB_ENVIRONMENTS
from platform_constructs.deployment_access import BOOTSTRAP_QUALIFIER_CONTEXT
from stacks.deployment_access_stack import DeploymentAccessStack
from tests.helpers import REPO_ROOT
from tests.infra.conftest import ALL_UNITS, stack_templates

OIDC = "token.actions.githubusercontent.com"


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: res for key, res in template["Resources"].items() if res["Type"] == resource_type}


def access_template(synthesized, unit: str) -> dict[str, Any]:
    return stack_templates(synthesized(unit)[1])["DeploymentAccess"]


@pytest.mark.parametrize("unit", ["dev", "staging", "prod"])
def test_the_deploy_role_trusts_only_this_repository_in_its_github_environment(synthesized, unit):
    config = ALL_UNITS[unit]
    template = access_template(synthesized, unit)
    [(provider_id, provider)] = of_type(template, "AWS::IAM::OIDCProvider").items()
    [role] = of_type(template, "AWS::IAM::Role").values()
    assert role["Properties"]["RoleName"] == f"churn-{unit}-github-deploy"
    assert role["Properties"]["MaxSessionDuration"] == 3600
    # Exactly one statement: web identity from this account's GitHub provider, with both conditions and no other.
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Effect": "Allow",
            "Principal": {"Federated": {"Ref": provider_id}},
            "Condition": {
                "StringEquals": {
                    f"{OIDC}:aud": "sts.amazonaws.com",
                    f"{OIDC}:sub": f"repo:{config.github_repository}:environment:{GITHUB_ENVIRONMENTS[unit]}",
                }
            },
        }
    ]
    assert provider["Properties"]["Url"] == f"https://{OIDC}"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]


@pytest.mark.parametrize("unit", ["dev", "staging", "prod"])
def test_the_deploy_role_may_only_assume_the_cdk_bootstrap_roles_of_its_account(synthesized, unit):
    config = ALL_UNITS[unit]
    template = access_template(synthesized, unit)
    [policy] = of_type(template, "AWS::IAM::Policy").values()
    [role_id] = of_type(template, "AWS::IAM::Role")
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
    bootstrap_roles = f"arn:aws:iam::{config.account}:role/cdk-hnb659fds-*-{config.account}-{config.region}"
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Sid": "AssumeCdkBootstrapRoles", "Action": "sts:AssumeRole", "Effect": "Allow", "Resource": bootstrap_roles}
    ]
    # The value each GitHub environment's AWS_DEPLOY_ROLE_ARN is set to, as a stack output.
    [output] = template["Outputs"].values()
    assert output["Value"] == {"Fn::GetAtt": [role_id, "Arn"]}
    # Native CloudFormation resources only: no custom-resource Lambda behind the provider.
    assert {res["Type"] for res in template["Resources"].values()} == {
        "AWS::IAM::OIDCProvider",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
    }


def test_a_sandbox_has_no_deployment_access(synthesized):
    assert "DeploymentAccess" not in stack_templates(synthesized("dev/sandbox=ci")[1])
    assert deployment_access_configs(ALL_UNITS["dev/sandbox=ci"]) == []


def test_no_template_of_any_unit_creates_a_user_or_an_access_key(all_assemblies):
    for unit, assembly in all_assemblies.items():
        for stack_id, template in stack_templates(assembly).items():
            types = {res["Type"] for res in template["Resources"].values()}
            assert not types & {"AWS::IAM::User", "AWS::IAM::AccessKey"}, (unit, stack_id)


@pytest.mark.heavy(seconds=4)  # synthesizes several units
def test_environments_sharing_an_account_get_one_provider_held_by_the_first(monkeypatch):
    """A provider URL is unique per account: dev's unit holds it and staging's role when both use one account."""
    dev = load_config("dev")
    staging_in_dev_account = dataclasses.replace(load_config("staging"), account=dev.account)
    real_load_config = load_config

    def load_with_shared_account(env=None, sandbox=None):
        return staging_in_dev_account if env == "staging" else real_load_config(env, sandbox)

    monkeypatch.setattr("config.environments.load_config", load_with_shared_account)
    held = deployment_access_configs(dev)
    assert [config.env_name for config in held] == ["dev", "staging"]
    assert deployment_access_configs(staging_in_dev_account) == []
    assert [config.env_name for config in deployment_access_configs(load_config("prod"))] == ["prod"]

    # The one stack of that account: one provider, a role per environment, each trusted for its own environment
    # and allowed the bootstrap roles of its own region; a custom bootstrap qualifier is followed.
    app = App(context={BOOTSTRAP_QUALIFIER_CONTEXT: "team1"})
    stack = DeploymentAccessStack(app, "Access", configs=held, env=Environment(account=dev.account, region=dev.region))
    template = Template.from_stack(stack).to_json()
    assert len(of_type(template, "AWS::IAM::OIDCProvider")) == 1
    subjects = {
        role["Properties"]["RoleName"]: role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"][
            "StringEquals"
        ][f"{OIDC}:sub"]
        for role in of_type(template, "AWS::IAM::Role").values()
    }
    assert subjects == {
        "churn-dev-github-deploy": "repo:example-org/churn-ml-platform:environment:dev",
        "churn-staging-github-deploy": "repo:example-org/churn-ml-platform:environment:staging",
    }
    resources = sorted(
        policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]
        for policy in of_type(template, "AWS::IAM::Policy").values()
    )
    assert resources == [f"arn:aws:iam::{dev.account}:role/cdk-team1-*-{dev.account}-{dev.region}"] * 2


def test_an_environment_without_a_repository_gets_no_role():
    dev = dataclasses.replace(load_config("dev"), github_repository=None)
    assert deployment_access_configs(dev) == []


def test_the_roles_are_for_the_github_environments_the_deploy_workflow_uses():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    deployed = {
        job["with"]["unit"]: job["with"]["environment"]
        for job in workflow["jobs"].values()
        if job.get("uses", "").endswith("deploy-unit.yml")
    }
    assert deployed == GITHUB_ENVIRONMENTS
