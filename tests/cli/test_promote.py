"""`mlops promote` against SageMaker and S3 (botocore Stubber: exact requests): the pin it writes and its refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from config import load_config
from config.deployments import pin_for
from mlops import promote
from tests.cli.conftest import cli, expect_describe, expect_json_object, stubbed_clients
from tests.model_source import serve_from

CONFIG = load_config("dev")
GROUP = CONFIG.model_package_group_name
ARN = f"arn:aws:sagemaker:eu-west-1:{CONFIG.account}:model-package/{GROUP}/4"
RUN = "s3://churn-dev-storage-artifactsbucket1a2b3c/pipelines/churn-dev-training/exp-7/abc123"
CODE_BUCKET = f"s3://cdk-hnb659fds-assets-{CONFIG.account}-eu-west-1"
METRICS = {
    "binary_classification_metrics": {"auc": {"value": 0.86123, "standard_deviation": 0.01}, "f1": {"value": 0.7}}
}


def package(**changes: Any) -> dict[str, Any]:
    """What DescribeModelPackage returns for a version the training pipeline registered."""
    described: dict[str, Any] = {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 4,
        "ModelPackageArn": ARN,
        "ModelPackageName": GROUP,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        "CreationTime": "2026-11-20T10:00:00Z",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
                    "ModelDataUrl": f"{RUN}/Train/model/output/model.tar.gz",
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": f"{CODE_BUCKET}/{'e' * 64}.gz",
                    },
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large", "ml.m5.xlarge"],
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"{RUN}/Evaluate/evaluation/model_quality.json",
                }
            }
        },
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{RUN}/Baseline/baseline/statistics.json"},
                "Constraints": {
                    "ContentType": "application/json",
                    "S3Uri": f"{RUN}/Baseline/baseline/constraints.json",
                },
            }
        },
    }
    described.update(changes)
    return described


@pytest.fixture
def aws(aws_env: None, monkeypatch: pytest.MonkeyPatch):
    """Stubbed sagemaker and s3 clients, handed to the command in place of real ones."""
    with stubbed_clients(monkeypatch, promote, "sagemaker", "s3") as stubbers:
        yield stubbers


def expect_metrics(aws: dict[str, Stubber], document: Any = METRICS, file_name: str = "model_quality.json") -> None:
    expect_json_object(aws["s3"], f"{RUN}/Evaluate/evaluation/{file_name}", document)


def with_quality_constraints() -> dict[str, Any]:
    """A package that also registered model-quality constraints (what evaluate.py writes with a tolerance)."""
    described = package()
    described["ModelMetrics"]["ModelQuality"]["Constraints"] = {
        "ContentType": "application/json",
        "S3Uri": f"{RUN}/Evaluate/evaluation/model_quality_constraints.json",
    }
    return described


def expect_lifecycle(aws: dict[str, Stubber], stage: str = "dev", arn: str = ARN) -> None:
    """The registry mirrors the new pin: UpdateModelPackage of the version's ModelLifeCycle only."""
    description = f"pinned for {stage} by mlops promote (see its promoted_at); served after cdk deploy"
    lifecycle = {"Stage": stage, "StageStatus": "PendingDeployment", "StageDescription": description}
    aws["sagemaker"].add_response(
        "update_model_package", {"ModelPackageArn": arn}, {"ModelPackageArn": arn, "ModelLifeCycle": lifecycle}
    )


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    return cli(capsys, "promote", *arguments)


def test_promote_a_version_writes_the_pin_and_says_what_to_run_next(aws, tmp_path: Path, capsys) -> None:
    deployments = tmp_path / "deployments.json"
    deployments.write_text(json.dumps({"prod": {"keep": "me"}}))
    expect_describe(aws, package())
    expect_metrics(aws)
    expect_lifecycle(aws)

    code, out, err = run(capsys, "--env", "dev", "--version", "4", "--deployments", str(deployments))

    assert (code, err) == (0, "")
    pin = pin_for(CONFIG, deployments)
    assert pin is not None and pin.version == 4 and pin.model_package_arn == ARN
    assert pin.data_quality_constraints_uri == f"{RUN}/Baseline/baseline/constraints.json"
    assert pin.model_quality_statistics_uri == f"{RUN}/Evaluate/evaluation/model_quality.json"
    assert pin.model_data_url == f"{RUN}/Train/model/output/model.tar.gz"
    assert pin.metrics == {"auc": 0.8612, "f1": 0.7}
    assert json.loads(deployments.read_text())["prod"] == {"keep": "me"}  # other units' pins are untouched
    assert "cdk diff -c env=dev 'churn-dev/*'" in out and "cdk deploy -c env=dev 'churn-dev/*'" in out
    assert "git revert" in out


def test_the_pin_records_the_thresholds_of_the_packages_model_quality_constraints(aws, tmp_path: Path, capsys) -> None:
    """The alarms use them, so an alarm fires exactly where the package's model-quality monitor reports a violation."""
    deployments = tmp_path / "deployments.json"
    constraints = {
        "version": 0.0,
        "binary_classification_constraints": {
            name: {"threshold": value, "comparison_operator": "LessThanThreshold"}
            for name, value in {"auc": 0.732046, "f1": 0.595, "precision": 0.51, "recall": 0.4}.items()
        },
    }
    expect_describe(aws, with_quality_constraints())
    expect_metrics(aws)
    expect_metrics(aws, constraints, "model_quality_constraints.json")
    expect_lifecycle(aws)

    code, _, err = run(capsys, "--env", "dev", "--version", "4", "--deployments", str(deployments))

    assert (code, err) == (0, "")
    pin = pin_for(CONFIG, deployments)
    assert pin is not None
    assert pin.model_quality_thresholds == {"auc": 0.732046, "f1": 0.595, "precision": 0.51, "recall": 0.4}


def test_refuses_model_quality_constraints_without_a_threshold(aws, tmp_path: Path, capsys) -> None:
    deployments = tmp_path / "deployments.json"
    expect_describe(aws, with_quality_constraints())
    expect_metrics(aws)
    expect_metrics(aws, {"version": 0.0, "regression_constraints": {}}, "model_quality_constraints.json")

    code, _, err = run(capsys, "--env", "dev", "--version", "4", "--deployments", str(deployments))

    assert (code, err.count("\n")) == (2, 1) and "holds no binary classification model-quality threshold" in err
    assert not deployments.exists()


def test_latest_approved_asks_the_registry_for_the_newest_approved_version(aws, tmp_path: Path, capsys) -> None:
    aws["sagemaker"].add_response(
        "list_model_packages",
        {
            "ModelPackageSummaryList": [
                {
                    "ModelPackageArn": ARN,
                    "ModelPackageGroupName": GROUP,
                    "ModelPackageVersion": 4,
                    "CreationTime": "2026-11-20T10:00:00Z",
                    "ModelPackageStatus": "Completed",
                    "ModelApprovalStatus": "Approved",
                }
            ]
        },
        {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 1,
        },
    )
    expect_describe(aws, package())
    expect_metrics(aws)
    deployments = tmp_path / "deployments.json"

    code, _, err = run(capsys, "--latest-approved", "--deployments", str(deployments), "--json")

    assert code == 0, err
    assert json.loads(deployments.read_text())["dev"]["version"] == 4


@pytest.mark.parametrize(
    ("described", "reason"),
    [
        (package(ModelApprovalStatus="PendingManualApproval"), "it is PendingManualApproval, not Approved"),
        (package(ModelApprovalStatus="Rejected"), "it is Rejected, not Approved"),
        (package(DriftCheckBaselines={}), "no data quality statistics baseline, no data quality constraints baseline"),
        (package(ModelMetrics={}), "no model quality statistics"),
    ],
    ids=["pending", "rejected", "no-baselines", "no-metrics"],
)
def test_refuses_an_unapproved_or_incomplete_version(aws, tmp_path: Path, capsys, described, reason) -> None:
    expect_describe(aws, described)
    deployments = tmp_path / "deployments.json"

    code, out, err = run(capsys, "--version", "4", "--deployments", str(deployments))

    assert code == 2 and out == ""
    assert err.startswith("error: refusing to promote churn-dev-models version 4: ") and reason in err
    assert err.count("\n") == 1
    assert not deployments.exists()


@pytest.mark.parametrize(
    ("arn", "reason"),
    [
        (f"arn:aws:sagemaker:eu-west-1:{CONFIG.account}:model-package/churn-prod-models/4", "group churn-prod-models"),
        (f"arn:aws:sagemaker:us-east-1:{CONFIG.account}:model-package/{GROUP}/4", "region us-east-1"),
        (f"arn:aws:sagemaker:eu-west-1:999999999999:model-package/{GROUP}/4", "account 999999999999"),
    ],
    ids=["group", "region", "account"],
)
def test_refuses_a_version_of_another_group_region_or_account(aws, tmp_path: Path, capsys, arn, reason) -> None:
    group = arn.split("/")[-2]
    if (
        "account" not in reason
    ):  # another account's version is refused before any AWS call (the model_source tests below)
        expect_describe(aws, package(ModelPackageArn=arn, ModelPackageGroupName=group), arn=arn)
    deployments = tmp_path / "deployments.json"

    code, _, err = run(capsys, "--arn", arn, "--deployments", str(deployments))

    assert code == 2
    assert "refusing to promote" in err and f"the package is from another {reason}" in err
    assert not deployments.exists()


def test_refuses_a_version_that_does_not_support_the_units_instance_type(aws, tmp_path: Path, capsys) -> None:
    spec = {**package()["InferenceSpecification"], "SupportedRealtimeInferenceInstanceTypes": ["ml.g5.xlarge"]}
    expect_describe(aws, package(InferenceSpecification=spec))

    code, _, err = run(capsys, "--version", "4", "--deployments", str(tmp_path / "d.json"))

    assert code == 2 and "not the unit's serving_instance_type ml.m5.large" in err


def test_an_unknown_version_is_bad_input(aws, tmp_path: Path, capsys) -> None:
    aws["sagemaker"].add_client_error(
        "describe_model_package",
        "ValidationException",
        "Model package does not exist",
        400,
        expected_params={"ModelPackageName": ARN.replace("/4", "/40")},
    )
    code, _, err = run(capsys, "--version", "40", "--deployments", str(tmp_path / "d.json"))
    assert code == 2 and err.startswith("error: no model package ") and "does not exist" in err


def test_promoting_the_pinned_version_again_changes_nothing(aws, tmp_path: Path, capsys) -> None:
    deployments = tmp_path / "deployments.json"
    for _ in range(2):
        expect_describe(aws, package())
        expect_metrics(aws)
    assert run(capsys, "--version", "4", "--deployments", str(deployments))[0] == 0
    before = deployments.read_text()

    code, out, _ = run(capsys, "--version", "4", "--deployments", str(deployments))

    assert code == 0 and "already serves version 4" in out and "nothing changed" in out
    assert deployments.read_text() == before  # promoted_at is not rewritten either


def test_exactly_one_selector_is_required(capsys) -> None:
    code, _, err = run(capsys, "--env", "dev")
    assert code == 2 and "exactly one of --version N, --latest-approved, --arn ARN" in err


# Build once, promote everywhere: prod on `model_source: dev` serves versions of dev's group (ARN is dev's version 4).
def test_promote_pins_a_version_of_the_source_unit_with_its_source(aws, monkeypatch, tmp_path: Path, capsys) -> None:
    serve_from(monkeypatch, "dev", "prod")
    deployments = tmp_path / "deployments.json"
    expect_describe(aws, package())  # exactly DescribeModelPackage(ModelPackageName=<dev's ARN>)
    expect_metrics(aws)
    expect_lifecycle(aws, "prod")  # on dev's version, with the source's credentials like the reads

    code, out, err = run(capsys, "--env", "prod", "--arn", ARN, "--deployments", str(deployments))

    assert code == 0, err
    pin = pin_for(load_config("prod"), deployments)  # what synth reads, validated against the source's group
    assert pin is not None and pin.model_package_arn == ARN and pin.source_unit == "dev"
    assert json.loads(deployments.read_text())["prod"]["source_unit"] == "dev"
    assert f"Pinned {GROUP} version 4 for prod" in out and f"registered by dev, in account {CONFIG.account}" in out
    assert "cdk diff -c env=prod 'churn-prod/*'" in out
    assert "Deploy the source first if it does not share with prod yet: cdk deploy -c env=dev 'churn-dev/*'" in out


def test_promote_by_version_reads_the_source_group(aws, monkeypatch, tmp_path: Path, capsys) -> None:
    serve_from(monkeypatch, "dev", "prod")
    expect_describe(aws, package())
    expect_metrics(aws)
    expect_lifecycle(aws, "prod")

    code, _, err = run(capsys, "--env", "prod", "--version", "4", "--deployments", str(tmp_path / "d.json"))

    assert code == 0, err


def test_promote_refuses_a_version_of_another_group_than_the_source(aws, monkeypatch, tmp_path: Path, capsys) -> None:
    serve_from(monkeypatch, "dev", "prod")
    staging = ARN.replace(GROUP, "churn-staging-models")
    expect_describe(aws, package(ModelPackageArn=staging, ModelPackageGroupName="churn-staging-models"), arn=staging)

    code, _, err = run(capsys, "--env", "prod", "--arn", staging, "--deployments", str(tmp_path / "d.json"))

    assert code == 2 and "the package is from another group churn-staging-models (dev's: churn-dev-models)" in err


def test_promote_refuses_another_units_version_in_own_mode(aws, tmp_path: Path, capsys) -> None:
    deployments = tmp_path / "deployments.json"

    code, out, err = run(capsys, "--env", "prod", "--arn", ARN, "--deployments", str(deployments))

    assert code == 2 and out == ""  # no AWS call: the Stubber holds no response
    assert err.count("\n") == 1 and err.startswith(f"error: refusing to promote {ARN} to prod: ")
    assert "serves its own versions (model_source: own); set model_source for prod in config/environments.py" in err
    assert not deployments.exists()


def test_a_lifecycle_that_cannot_be_recorded_warns_and_keeps_the_pin(aws, tmp_path: Path, capsys) -> None:
    deployments = tmp_path / "deployments.json"
    expect_describe(aws, package())
    expect_metrics(aws)
    aws["sagemaker"].add_client_error("update_model_package", "AccessDeniedException", "not allowed")

    code, _, err = run(capsys, "--env", "dev", "--version", "4", "--deployments", str(deployments))

    assert code == 0 and pin_for(CONFIG, deployments) is not None
    [line] = err.strip().splitlines()
    assert line.startswith("warning: the pin is written, but setting the lifecycle of ") and "AccessDenied" in line
    sync = f"mlops lifecycle sync --deployments {deployments} --status PendingDeployment"
    assert line.endswith(f"record it later: `{sync}`")
