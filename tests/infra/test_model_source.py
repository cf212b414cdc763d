"""Build once, promote everywhere: with staging and prod on `model_source: dev`, dev's Storage shares its group, bucket
and key with exactly their model and monitoring roles, and prod's Serving and Monitoring read dev's version.

Both units are synthesized with cdk-nag (a finding fails the synth) and go through cfn-lint and checkov here, as
every committed unit does in test_gates.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.cx_api import CloudAssembly
from cfnlint.api import ManualArgs, lint_by_config

from config import ConfigError, load_config
from tests.helpers import build_app
from tests.infra.conftest import stack_templates
from tests.infra.test_gates import checkov_failures
from tests.infra.test_serving_stack import one
from tests.model_source import registered_with_this_checkout, serve_from, source_pin

pytestmark = pytest.mark.heavy(seconds=15)

DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"
TARGET_ROLES = [
    f"arn:aws:iam::{STAGING}:role/churn-staging/serving/*",
    f"arn:aws:iam::{STAGING}:role/churn-staging/monitoring/*",
    f"arn:aws:iam::{PROD}:role/churn-prod/serving/*",
    f"arn:aws:iam::{PROD}:role/churn-prod/monitoring/*",
]
DEPLOY_ROLES = [f"arn:aws:iam::{account}:role/cdk-*-cfn-exec-role-{account}-eu-west-1" for account in (STAGING, PROD)]


def served_pin():
    return registered_with_this_checkout(source_pin(load_config("dev")))


@pytest.fixture(scope="module")
def synthesized_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CloudAssembly]:
    """{unit: its cloud assembly} of dev (the source) and prod (a target serving dev's version 3)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        serve_from(monkeypatch, "dev", "staging", "prod")
        pins = tmp_path_factory.mktemp("pins") / "deployments.json"
        pins.write_text(json.dumps({"prod": served_pin().as_json()}))
        assemblies = {}
        for name in ("dev", "prod"):
            app, stage = build_app(load_config(name), tmp_path_factory.mktemp(name), pins)
            app.synth()  # cdk-nag: any unacknowledged finding raises here
            assemblies[name] = stage.synth()
        return assemblies


@pytest.fixture(scope="module")
def units(synthesized_pair: dict[str, CloudAssembly]) -> dict[str, dict[str, dict[str, Any]]]:
    """{unit: {stack id: template}}."""
    return {name: stack_templates(assembly) for name, assembly in synthesized_pair.items()}


def statements(document: dict[str, Any], sid: str) -> dict[str, Any]:
    [statement] = [s for s in document["Statement"] if s.get("Sid") == sid]
    return statement


def test_the_source_group_lets_the_target_roles_read_its_versions(units) -> None:
    group = one(units["dev"]["Storage"], "AWS::SageMaker::ModelPackageGroup")["Properties"]
    statement = statements(group["ModelPackageGroupPolicy"], "TargetUnitsReadVersions")
    assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{STAGING}:root", f"arn:aws:iam::{PROD}:root"]}
    assert statement["Action"] == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
    ]
    assert statement["Resource"] == [
        f"arn:aws:sagemaker:eu-west-1:{DEV}:model-package-group/churn-dev-models",
        f"arn:aws:sagemaker:eu-west-1:{DEV}:model-package/churn-dev-models/*",
    ]
    # CreateModel in the target describes the package as the deploying CloudFormation role.
    assert sorted(statement["Condition"]["ArnLike"]["aws:PrincipalArn"]) == sorted(TARGET_ROLES + DEPLOY_ROLES)


def test_the_source_bucket_and_key_let_only_the_target_roles_read(units) -> None:
    storage = units["dev"]["Storage"]
    bucket_policies = [
        r["Properties"]["PolicyDocument"]
        for r in storage["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and "Artifacts" in json.dumps(r["Properties"]["Bucket"])
    ]
    [bucket_read] = [statements(p, "TargetUnitsReadModelsAndBaselines") for p in bucket_policies]
    [key] = [r["Properties"]["KeyPolicy"] for r in storage["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    key_read = statements(key, "TargetUnitsDecryptModelsAndBaselines")
    for statement in (bucket_read, key_read):
        assert statement["Effect"] == "Allow"
        assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": TARGET_ROLES}}
        principals = json.dumps(statement["Principal"])
        assert STAGING in principals and PROD in principals and DEV not in principals
    assert bucket_read["Action"] == "s3:GetObject"
    # Only what the training pipeline registers: no data capture, no monitoring reports.
    assert bucket_read["Resource"]["Fn::Join"][1][1] == "/pipelines/churn-dev-training/*"
    assert key_read["Action"] == ["kms:Decrypt", "kms:DescribeKey"]


def roles_by_path(templates: dict[str, dict[str, Any]], stack: str) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"].get("Path", "/"): r
        for r in templates[stack]["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    }


def policy_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        s["Sid"]: s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if "Sid" in s
    }


@pytest.mark.parametrize(
    ("stack", "path"), [("Serving", "/churn-prod/serving/"), ("Monitoring", "/churn-prod/monitoring/")]
)
def test_the_target_roles_carry_the_admitted_path_and_read_the_source_key(units, stack: str, path: str) -> None:
    assert path in roles_by_path(units["prod"], stack)
    decrypt = policy_statements(units["prod"][stack])["DecryptSourceModels"]
    assert decrypt["Resource"] == f"arn:aws:kms:eu-west-1:{DEV}:key/*"
    assert decrypt["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/churn-dev-data"}}


def test_the_target_serves_the_source_version_and_reads_its_objects(units) -> None:
    pin = served_pin()
    serving = units["prod"]["Serving"]
    model = one(serving, "AWS::SageMaker::Model")["Properties"]
    # The serving code: the same bytes (same content-hash key) from prod's own assets bucket, which its role can read;
    # the source's copy is under the source account's AWS-managed S3 key.
    code_key = pin.inference_code_url.rsplit("/", 1)[1]
    local_code = f"cdk-hnb659fds-assets-{PROD}-eu-west-1/{code_key}"
    assert model["Containers"] == [
        {"ModelPackageName": pin.model_package_arn, "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{local_code}"}}
    ]
    granted = policy_statements(serving)
    assert granted["DescribeSourceVersion"]["Resource"] == pin.model_package_arn
    model_objects = granted["ReadModelAndCode"]["Resource"]
    assert sorted(model_objects) == sorted(
        [f"arn:aws:s3:::{pin.model_data_url.removeprefix('s3://')}", f"arn:aws:s3:::{local_code}"]
    )
    assert serving["Outputs"]["ModelSourceUnit"]["Value"] == "dev"
    baselines = json.dumps(policy_statements(units["prod"]["Monitoring"])["ReadBaselines"]["Resource"])
    assert pin.data_quality_constraints_uri.removeprefix("s3://") in baselines


def test_cfn_lint_and_checkov_find_nothing_in_either_unit(synthesized_pair) -> None:
    templates = [stack.template_full_path for assembly in synthesized_pair.values() for stack in assembly.stacks]
    assert [str(match) for match in lint_by_config(ManualArgs(templates=templates, regions=["eu-west-1"]))] == []
    assert checkov_failures([Path(path) for path in templates]) == []


def test_a_target_whose_checkout_builds_other_serving_code_is_refused(tmp_path: Path) -> None:
    """The version was registered with other serving code (the fixture's placeholder hash): synth refuses in one line
    rather than serve the version with this checkout's code."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        serve_from(monkeypatch, "dev", "prod")
        pins = tmp_path / "deployments.json"
        pins.write_text(json.dumps({"prod": source_pin(load_config("dev")).as_json()}))
        with pytest.raises(
            ConfigError,
            match=r"field 'deployments.json': version 3 of dev was registered with serving "
            r"code e{64}\.gz, this checkout builds [0-9a-f]{64}\.gz .*Fix: deploy from the commit",
        ):
            build_app(load_config("prod"), tmp_path / "out", pins)
