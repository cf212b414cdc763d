"""`mlops steps`: each step's code hash and how long its files stood unchanged in git; stable after N days."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops import steps as steps_command
from mlops.steps import GitHistory
from pipeline_defs.local import load_assembly
from tests.cli.conftest import cli

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def git(repository: Path, *arguments: str, days_ago: int = 0) -> None:
    when = (NOW - timedelta(days=days_ago)).isoformat()
    environment = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    subprocess.run(["git", "-C", str(repository), *arguments], check=True, capture_output=True, env=environment)


def commit(repository: Path, name: str, text: str, days_ago: int) -> Path:
    path = repository / name
    path.write_text(text)
    git(repository, "add", name)
    git(repository, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-m", name, days_ago=days_ago)
    return path


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    return tmp_path


def test_code_unchanged_for_the_configured_days_is_stable_and_recent_or_uncommitted_code_is_not(repository) -> None:
    old = commit(repository, "old.py", "a = 1\n", days_ago=40)
    recent = commit(repository, "recent.py", "b = 1\n", days_ago=3)
    edited = commit(repository, "edited.py", "c = 1\n", days_ago=40)
    edited.write_text("c = 2\n")
    history = GitHistory(repository)

    rows = {path.name: history.stability("p", path.name, {}, [path], NOW, 30) for path in (old, recent, edited)}

    assert history.caveat is None
    assert (rows["old.py"].unchanged_days, rows["old.py"].stable, rows["old.py"].last_changed) == (
        40,
        True,
        "2026-10-26",
    )
    assert (rows["recent.py"].unchanged_days, rows["recent.py"].stable) == (3, False)
    assert (rows["edited.py"].last_commit, rows["edited.py"].unchanged_days, rows["edited.py"].stable) == (
        None,
        0,
        False,
    )
    # A step built from several files changed when the newest of them did.
    assert history.stability("p", "both", {}, [old, recent], NOW, 30).unchanged_days == 3


def test_a_shallow_clone_or_no_git_checkout_says_so_and_calls_nothing_stable(repository, tmp_path_factory) -> None:
    commit(repository, "old.py", "a = 1\n", days_ago=40)
    commit(repository, "new.py", "b = 1\n", days_ago=1)
    clone = tmp_path_factory.mktemp("clone") / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repository}", str(clone)], check=True)

    shallow = GitHistory(clone)
    assert "shallow clone" in str(shallow.caveat)
    assert shallow.stability("p", "s", {}, [clone / "old.py"], NOW, 30).stable is False
    nowhere = GitHistory(tmp_path_factory.mktemp("plain"))
    assert "not a git checkout" in str(nowhere.caveat)


def test_the_table_lists_every_step_that_runs_code_with_the_hash_the_definition_runs(
    assembly_dir: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(steps_command, "EXPERIMENTS_DIR", assembly_dir / "no-notebooks")
    code, out, err = cli(capsys, "steps", "--assembly", str(assembly_dir), "--json")

    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["stable_after_days"] == 30
    rows = {(row["pipeline"], row["step"]): row for row in document["steps"]}
    assert ("churn-dev-training", "CandidateNotWorse") not in rows  # a condition runs no code of its own
    train = rows[("churn-dev-training", "Train")]
    assembly = load_assembly(assembly_dir, "eu-west-1")
    staged = assembly.named_assets["Code-train.tar.gz"].name.split(".")[1]
    assert train["code"]["train.tar.gz"] == staged[:12]
    assert set(rows[("churn-dev-evaluation", "CheckDrift")]["code"]) == {
        "data_quality.py",
        "feature_contract.json",
        "steplib.zip",
    }
