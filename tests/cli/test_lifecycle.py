"""What the registry records beside a version, locally as in SageMaker: its ModelLifeCycle mirroring the pin
(`mlops promote`, `mlops lifecycle sync`) and its model card (`mlops registry approve`); `registry show` prints both."""

from __future__ import annotations

import json
from pathlib import Path

from mlops import model_card
from mlops.cli import main
from pipeline_defs.local import LocalModelRegistry
from tests.cli.conftest import cli
from tests.cli.test_monitor import register_version


def show(capsys, state: Path) -> dict:
    code, out, _ = cli(capsys, "registry", "show", "1", "--local", "--state-dir", str(state), "--json")
    assert code == 0
    return json.loads(out)["lifecycle"]


def test_promote_marks_the_version_pending_and_sync_after_deploy_marks_it_deployed(
    tmp_path, dev_config, capsys
) -> None:
    state = tmp_path / "state"
    register_version(state, dev_config.region)
    assert show(capsys, state) == {}

    assert main(["promote", "--local", "--version", "1", "--state-dir", str(state)]) == 0
    capsys.readouterr()
    pending = show(capsys, state)
    assert (pending["Stage"], pending["StageStatus"]) == ("dev", "PendingDeployment")

    code, out, err = cli(capsys, "lifecycle", "sync", "--local", "--state-dir", str(state))
    assert (code, err) == (0, "")
    assert out.strip().endswith("model-package/churn-dev-models/1: Stage dev, StageStatus Deployed")
    assert show(capsys, state) == {
        "Stage": "dev",
        "StageStatus": "Deployed",
        "StageDescription": "Deployed in dev (mlops lifecycle sync)",
    }


def test_sync_with_nothing_pinned_records_nothing(tmp_path, capsys) -> None:
    state = tmp_path / "state"
    state.mkdir()
    code, out, _ = cli(capsys, "lifecycle", "sync", "--local", "--state-dir", str(state))
    assert code == 0 and out.startswith("dev pins no version in ")


def test_approving_locally_writes_the_model_card_that_registry_show_prints(tmp_path, dev_config, capsys) -> None:
    state = tmp_path / "state"
    version = register_version(state, dev_config.region)
    registry = LocalModelRegistry(state / "registry", dev_config.region)
    registry.set_approval(dev_config.model_package_group_name, version, "PendingManualApproval")

    code, _, err = cli(capsys, "registry", "approve", "--local", "--state-dir", str(state), "--reason", "ok")
    assert (code, err) == (0, "")

    package = registry.describe(dev_config.model_package_group_name, version)
    assert package["ModelCard"]["ModelCardStatus"] == "Approved"
    content = json.loads(package["ModelCard"]["ModelCardContent"])
    assert model_card.problems(content) == []
    team = model_card.statements()
    code, out, _ = cli(capsys, "registry", "show", str(version), "--local", "--state-dir", str(state), "--json")
    shown = json.loads(out)["model_card"]
    assert (shown["status"], shown["owner"], shown["risk_rating"]) == ("Approved", team["owner"], "Medium")
    metrics = content["evaluation_details"][0]["metric_groups"][0]["metric_data"]
    assert {metric["name"] for metric in metrics} >= {"auc", "f1"}
