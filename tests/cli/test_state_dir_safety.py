"""What a user's state dir is protected from: a mistyped --state-dir silently created, a dataset put copying the state
into itself, and `mlops demo` deleting work added to its folder (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.demo_state import DEMO_MARKER, fresh_state_dir, record_demo_files
from tests.cli.conftest import one_error_line


def one_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == "", captured
    return one_error_line(captured.err)


# A mistyped --state-dir ------------------------------------------------------------------------------------------
READING_COMMANDS = [
    ["run", "training", "--local", "--param", "InputDataUri=s3://local-landing/datasets/d1/"],
    ["registry", "list", "--local"],
    ["promote", "--local", "--latest-approved"],
    ["serve", "--local", "--port", "0"],
    ["monitor", "--local"],
    ["cache", "clear"],
    ["executions", "prune", "--keep", "1"],
    ["report", "--latest", "--local", "--html", "page.html"],
    ["ground-truth", "put", "labels.csv", "--local"],
]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_a_command_that_reads_state_refuses_a_missing_state_dir_and_creates_nothing(
    command, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("labels.csv").write_text("inference_id,label\nreq-1,1\n")
    typo = tmp_path / ".local" / "dmeo"

    message = one_error(capsys, *command, "--state-dir", str(typo))

    assert message == (
        "error: --state-dir .local/dmeo does not exist: check the path (state is created by mlops demo, or by the "
        "first mlops dataset put ... --local)"
    )
    assert not typo.exists() and not typo.parent.exists()


def test_the_first_dataset_put_creates_the_state_dir(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.csv").write_text("a,churned\n1,0\n")
    state = tmp_path / "new-state"
    argv = ["dataset", "put", str(data), "--id", "d1", "--local", "--no-run", "--state-dir", str(state)]
    assert main(argv) == 0
    assert (state / "s3/local-landing/datasets/d1/_SUCCESS").is_file()


# dataset put of the state dir ------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [".", "s3/local-landing", ".."], ids=["the state dir", "inside it", "holding it"])
def test_dataset_put_refuses_to_copy_the_state_dir_into_itself(source, tmp_path, capsys) -> None:
    state = tmp_path / "state"
    landing = state / "s3" / "local-landing" / "datasets" / "d1"
    landing.mkdir(parents=True)
    (landing / "part-0.csv").write_text("a,churned\n1,0\n")
    (landing / "_SUCCESS").touch()
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))

    message = one_error(
        capsys, "dataset", "put", str(state / source), "--id", "d2", "--local", "--no-run", "--state-dir", str(state)
    )

    assert "copy the state into itself" in message
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before  # nothing copied


# mlops demo and what the README invites users to add to .local/demo ------------------------------------------------
def finished_demo(folder: Path) -> Path:
    """A demo folder as a finished demo leaves it: marker, its files, their digests recorded."""
    fresh_state_dir(folder)
    (folder / "registry").mkdir()
    (folder / "registry" / "1.json").write_text('{"ModelPackageVersion": 1}')
    (folder / "demo.json").write_text("{}")
    record_demo_files(folder)
    return folder


def test_the_demo_re_creates_a_folder_that_holds_only_its_own_work(tmp_path) -> None:
    demo = finished_demo(tmp_path / "demo")
    (demo / "registry" / "1.json").unlink()  # a file the demo wrote may go

    fresh_state_dir(demo)

    assert [path.name for path in demo.iterdir()] == [DEMO_MARKER]
    assert "files" not in json.loads((demo / DEMO_MARKER).read_text())  # this demo has not finished yet


@pytest.mark.parametrize("added", ["labels.csv", "evaluation.html", "registry/1.json"])
def test_the_demo_refuses_a_folder_holding_work_it_did_not_write_and_deletes_nothing(added, tmp_path, capsys) -> None:
    """Defect: the README adds labels, reports and runs to .local/demo; the next demo deleted them silently."""
    demo = finished_demo(tmp_path / "demo")
    (demo / added).write_text("the user's")  # registry/1.json: changed since the demo (an approval, say)
    before = {path: path.read_bytes() for path in demo.rglob("*") if path.is_file()}

    message = one_error(capsys, "demo", "--state-dir", str(demo))

    assert message.startswith(f"error: {demo} holds work the last demo did not write ({added}), so the demo will not")
    assert f"rm -r {demo}" in message
    assert {path: path.read_bytes() for path in demo.rglob("*") if path.is_file()} == before
