"""`mlops registry --env` against SageMaker and S3 (botocore Stubber): exact requests, pagination, refusals."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from config import load_config
from mlops import model_card
from mlops import registry as registry_command
from tests.cli.conftest import cli, expect_describe, expect_json_object, stubbed_clients
from tests.helpers import REPO_ROOT

CONFIG = load_config("dev")
GROUP = CONFIG.model_package_group_name
BUCKET = "churn-dev-artifacts"


def arn(version: int) -> str:
    return f"arn:aws:sagemaker:eu-west-1:{CONFIG.account}:model-package/{GROUP}/{version}"


def described(version: int, status: str = "PendingManualApproval", **metadata: str) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn(version),
        "ModelPackageName": GROUP,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": status,
        "CreationTime": f"2026-11-2{version}T10:00:00Z",
        "CustomerMetadataProperties": {"experiment-id": f"exp-{version}", **metadata},
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{BUCKET}/v{version}/model_quality.json",
                }
            }
        },
    }


def summary(version: int, status: str = "PendingManualApproval") -> dict[str, Any]:
    return {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn(version),
        "CreationTime": f"2026-11-2{version}T10:00:00Z",
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
    }


@pytest.fixture
def aws(aws_env: None, monkeypatch: pytest.MonkeyPatch):
    """Stubbed sagemaker and s3 clients, handed to the command in place of real ones."""
    with stubbed_clients(monkeypatch, registry_command, "sagemaker", "s3") as stubbers:
        yield stubbers


def expect_metrics(aws: dict[str, Stubber], version: int, auc: float) -> None:
    document = {"binary_classification_metrics": {"auc": {"value": auc}}}
    expect_json_object(aws["s3"], f"s3://{BUCKET}/v{version}/model_quality.json", document)


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    return cli(capsys, "registry", *arguments)


def test_list_follows_every_page_newest_first(aws, capsys) -> None:
    request = {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"}
    aws["sagemaker"].add_response(
        "list_model_packages", {"ModelPackageSummaryList": [summary(3)], "NextToken": "page-2"}, request
    )
    aws["sagemaker"].add_response(
        "list_model_packages", {"ModelPackageSummaryList": [summary(2, "Approved")]}, {**request, "NextToken": "page-2"}
    )
    for version, status, auc in ((3, "PendingManualApproval", 0.8512), (2, "Approved", 0.8401)):
        expect_describe(aws, described(version, status, dataset="s3://landing/datasets/d/"))
        expect_metrics(aws, version, auc)

    code, out, err = run(capsys, "list", "--env", "dev", "--json")

    assert code == 0, err
    rows = json.loads(out)["versions"]
    assert [(r["version"], r["status"], r["roc_auc"], r["experiment_id"]) for r in rows] == [
        (3, "PendingManualApproval", 0.8512, "exp-3"),
        (2, "Approved", 0.8401, "exp-2"),
    ]


def test_approve_records_the_reason_and_the_versions_model_card(aws, capsys) -> None:
    lineage = {
        "dataset": "s3://landing/datasets/d1/",
        "execution": f"arn:aws:sagemaker:eu-west-1:{CONFIG.account}:pipeline/churn-dev-training/execution/abc",
        "hp-max-depth": "3",
        "candidate-roc-auc": "0.86",
        "incumbent-roc-auc": "0.85",
        "incumbent-version": "2",
        "code-feature_contract.json": "f" * 64,
    }
    expect_describe(aws, described(3, **lineage))
    expect_metrics(aws, 3, 0.86)
    team = json.loads((REPO_ROOT / "config" / "model_card.json").read_text())
    card = {
        "model_overview": {"model_creator": team["owner"], "model_artifact": [""]},
        "intended_uses": team["intended_uses"],
        "business_details": team["business_details"],
        "additional_information": {
            **team["additional_information"],
            "custom_details": {"feature_contract_code": "f" * 64},
        },
        "training_details": {
            "training_observations": f"Registered by {lineage['execution']}.",
            "training_job_details": {
                "training_datasets": ["s3://landing/datasets/d1/"],
                "hyper_parameters": [{"name": "max-depth", "value": "3"}],
                "training_environment": {"container_image": [""]},
            },
        },
        "evaluation_details": [
            {
                "name": "evaluation slice",
                "evaluation_observation": "ROC AUC 0.86 against the approved version 2 (ROC AUC 0.85) on the same "
                "rows; registered only if the paired DeLong lower bound of the difference was above -MaxRegression.",
                "datasets": ["s3://landing/datasets/d1/"],
                "metric_groups": [
                    {
                        "name": "binary classification (evaluation slice)",
                        "metric_data": [{"name": "auc", "type": "number", "value": 0.86}],
                    }
                ],
            }
        ],
    }
    sent: dict[str, Any] = {}
    aws["sagemaker"].add_response(
        "update_model_package",
        {"ModelPackageArn": arn(3)},
        {
            "ModelPackageArn": arn(3),
            "ModelApprovalStatus": "Approved",
            "ApprovalDescription": "beats v2 on fresh data",
            "ModelCard": {"ModelCardContent": ANY, "ModelCardStatus": "Approved"},
        },
    )
    capture_card(aws, sent)

    code, out, err = run(capsys, "approve", "3", "--reason", "beats v2 on fresh data")

    assert code == 0, err
    assert out == f"{GROUP} version 3: PendingManualApproval -> Approved ({arn(3)})\n"
    assert json.loads(sent["ModelCard"]["ModelCardContent"]) == card
    assert model_card.problems(card) == []


def capture_card(aws: dict[str, Stubber], sent: dict[str, Any]) -> None:
    """Keep the UpdateModelPackage parameters as sent (the card's JSON text is compared parsed, not as text)."""
    events = aws["sagemaker"].client.meta.events
    events.register("provide-client-params.sagemaker.UpdateModelPackage", lambda params, **_: sent.update(params))


def test_reject_sends_no_model_card(aws, capsys) -> None:
    expect_describe(aws, described(3))
    request = {"ModelPackageArn": arn(3), "ModelApprovalStatus": "Rejected", "ApprovalDescription": "worse on d2"}
    aws["sagemaker"].add_response("update_model_package", {"ModelPackageArn": arn(3)}, request)

    code, _, err = run(capsys, "reject", "3", "--reason", "worse on d2")

    assert code == 0, err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["approve", "3"], 'say why with --reason "..."'),
        (["reject", "3", "--reason", "x"], f"{GROUP} version 3 is already Rejected: nothing to do"),
    ],
    ids=["no-reason", "already"],
)
def test_refusals_are_one_line_and_change_nothing(aws, capsys, arguments: list[str], message: str) -> None:
    if "--reason" in arguments:
        expect_describe(aws, described(3, "Rejected"))

    code, out, err = run(capsys, *arguments)

    assert (code, out) == (2, "")
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_an_unknown_version_is_bad_input(aws, capsys) -> None:
    aws["sagemaker"].add_client_error(
        "describe_model_package",
        "ValidationException",
        f"ModelPackage {arn(9)} does not exist.",
        400,
        expected_params={"ModelPackageName": arn(9)},
    )
    assert run(capsys, "show", "9") == (2, "", f"error: ModelPackage {arn(9)} does not exist.\n")


def test_show_prints_the_lineage_and_which_units_pin_it(aws, capsys, monkeypatch, tmp_path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "cdk.json").write_text("{}")
    (tmp_path / "config" / "deployments.json").write_text(json.dumps({"dev": {"model_package_arn": arn(2)}}))
    monkeypatch.chdir(tmp_path)
    expect_describe(aws, described(2, "Approved", dataset="s3://landing/datasets/d-1/"))
    expect_metrics(aws, 2, 0.84012)

    code, out, err = run(capsys, "show", "2", "--json")

    assert code == 0, err
    shown = json.loads(out)
    assert shown["pinned_by"] == ["dev"] and shown["metrics"] == {"auc": 0.8401}
    assert shown["metadata"] == {"experiment-id": "exp-2", "dataset": "s3://landing/datasets/d-1/"}


def test_diff_names_what_changed_between_two_versions(aws, capsys) -> None:
    expect_describe(aws, described(2, "Approved", dataset="s3://landing/datasets/d-1/"))
    expect_metrics(aws, 2, 0.84)
    expect_describe(aws, described(3, dataset="s3://landing/datasets/d-2/"))
    expect_metrics(aws, 3, 0.85)

    code, out, err = run(capsys, "diff", "2", "3")

    assert code == 0, err
    assert out.splitlines() == [
        f"{GROUP} version 2 -> 3: 4 change(s)",
        "  metadata.dataset: s3://landing/datasets/d-1/ -> s3://landing/datasets/d-2/",
        "  metadata.experiment-id: exp-2 -> exp-3",
        "  metrics.auc: 0.84 -> 0.85",
        "  status: Approved -> PendingManualApproval",
    ]


def test_no_credentials_is_one_line_pointing_at_local(aws_env: None, monkeypatch, capsys) -> None:
    """A real client, no credentials anywhere (metadata lookup off): botocore fails before any request is sent."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials an earlier test resolved
    assert run(capsys, "list") == (
        1,
        "",
        "error: no AWS credentials: configure them, or pass --local for the local registry\n",
    )
