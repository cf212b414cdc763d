"""The registry mirrors the pin (`mlops promote`, `mlops lifecycle sync`): ModelLifeCycle in the local registry as in
SageMaker, and `registry show` prints it."""

from __future__ import annotations

import json
from pathlib import Path

from mlops.cli import main
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
