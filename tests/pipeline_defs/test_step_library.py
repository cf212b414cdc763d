"""The step library (steplib/): one definition of what every step script shares, shipped as its own asset.

Each script imports it; none carries a copy. In a processing job it arrives as a zip beside the script's code folder,
in Train's source tarball as a steplib/ folder beside train.py. Every step answers bad input, an empty input folder
included, with one `error:` line and exit code 1.
"""

from __future__ import annotations

import argparse
import ast
import functools
import io
import json
import shutil
import subprocess
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

import steplib
from mlops.capture import record
from pipeline_defs.local.step_runtime import steps_python
from pipeline_defs.packaging import (
    FEATURE_CONTRACT,
    PROCESSING_SCRIPTS,
    STEP_LIBRARY_DIR,
    STEPS_DIR,
    archive_bytes,
    library_zip_bytes,
)
from steplib.capture_format import CaptureFormatError, capture_lines
from tests.helpers import load_module

pytestmark = pytest.mark.heavy(seconds=5)  # imports every step script (pandas, scikit-learn): tests/conftest.py

SHARED = {"StepError", "read_contract", "contract_file", "write_json", "load_json", "files_in", "run_step"}
SCRIPTS = sorted(path.name for path in STEPS_DIR.glob("*.py"))
SAMPLE = STEPS_DIR.parent / "sample_data"


def top_level_definitions(script: str) -> dict[str, ast.AST]:
    tree = ast.parse((STEPS_DIR / script).read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_step_script_carries_its_own_copy_of_the_library(script: str) -> None:
    definitions = top_level_definitions(script)
    assert not SHARED & definitions.keys(), f"{script} defines {sorted(SHARED & definitions.keys())}"
    main = definitions.get("main")
    if main is not None:  # the entry point is the library's: one statement, `return run_step(parse_args, run, argv)`
        assert isinstance(main, ast.FunctionDef) and len(main.body) == 1
        assert ast.unparse(main.body[0]) == "return run_step(parse_args, run, argv)"


def test_the_library_zip_is_deterministic_and_holds_the_package() -> None:
    assert library_zip_bytes() == library_zip_bytes()
    with zipfile.ZipFile(io.BytesIO(library_zip_bytes())) as archive:
        names = archive.namelist()
        assert names == sorted(f"steplib/{path.name}" for path in STEP_LIBRARY_DIR.glob("*.py"))
        assert {"steplib/__init__.py", "steplib/capture_format.py"} <= set(names)
        assert all(archive.read(name) == (STEP_LIBRARY_DIR / Path(name).name).read_bytes() for name in names)


def test_trains_tarball_carries_the_library_beside_the_script() -> None:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes()["train.tar.gz"])) as tar:
        assert {"train.py", "steplib/__init__.py"} <= set(tar.getnames())


def _container_layout(root: Path, script: str, with_library: bool) -> Path:
    """The files as a processing job lays them out: input/code/<hash>.py, input/steplib/<hash>.zip."""
    code = root / "input" / "code" / "0123abcd.py"
    code.parent.mkdir(parents=True)
    shutil.copyfile(STEPS_DIR / script, code)
    if with_library:
        (root / "input" / "steplib").mkdir()
        (root / "input" / "steplib" / "4567ef.zip").write_bytes(library_zip_bytes())
    return code


@pytest.mark.parametrize("with_library", [True, False])
def test_a_processing_script_imports_the_library_from_the_mounted_zip(tmp_path: Path, with_library: bool) -> None:
    # `python -S`: no site-packages, so not this checkout's installed steplib either (the merge step needs only the
    # standard library until it merges): the import can only come from the zip.
    code = _container_layout(tmp_path, "merge_capture.py", with_library)
    result = subprocess.run(
        [steps_python(), "-S", str(code), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if with_library:
        assert result.returncode == 0 and "--ground-truth-dir" in result.stdout, result.stderr
    else:
        assert "No module named 'steplib'" in result.stderr


def test_every_processing_script_is_one_that_imports_the_library() -> None:
    """The DSL mounts the zip on every processing step: true only while every processing script imports it."""
    for script in PROCESSING_SCRIPTS:
        imports = {
            node.module
            for node in ast.walk(ast.parse((STEPS_DIR / script).read_text()))
            if isinstance(node, ast.ImportFrom)
        }
        assert "steplib" in imports, script


# An empty input folder, in every step ------------------------------------------------------------------------------
def _step_arguments(step: str, empty: Path, output: Path, contract: Path) -> list[str]:
    return {
        "preprocess.py": ["--input-dir", empty, "--contract", contract, "--output-dir", output],
        "train.py": [
            *("--train", empty, "--validation", empty, "--contract", contract),
            *("--model-dir", output / "model", "--output-data-dir", output / "data"),
        ],
        "evaluate.py": [
            *("--model-dir", empty, "--incumbent-dir", empty, "--test-dir", empty, "--contract", contract),
            *("--output-dir", output),
        ],
        "data_quality.py baseline": ["baseline", "--data-dir", empty, "--contract", contract, "--output-dir", output],
        "data_quality.py check": [
            *("check", "--data-dir", empty, "--baseline-dir", empty, "--contract", contract),
            *("--output-dir", output),
        ],
        "merge_capture.py": [
            *("--data-dir", empty, "--ground-truth-dir", empty, "--contract", contract),
            *("--period-end", "2026-11-29T13:00:00Z", "--period-hours", "0", "--output-dir", output),
        ],
    }[step]


STEPS_WITH_INPUT_FOLDERS = [
    "preprocess.py",
    "train.py",
    "evaluate.py",
    "data_quality.py baseline",
    "data_quality.py check",
    "merge_capture.py",
]


@functools.cache
def _script(name: str) -> ModuleType:
    return load_module(f"library_test_{Path(name).stem}", STEPS_DIR / name)


def _run_step(step: str, arguments: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The script's entry point in this process (its command line is main(argv)): exit code and stderr. An exception
    the entry point lets through fails the test with its traceback, as it would print one in the container."""
    script, *_ = step.split()
    capsys.readouterr()
    code = _script(script).main([str(argument) for argument in arguments])
    return code, capsys.readouterr().err


def _assert_one_error_line(result: tuple[int, str], *fragments: str) -> None:
    code, stderr = result
    assert code == 1, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert all(fragment in stderr for fragment in fragments), stderr


@pytest.mark.parametrize("step", STEPS_WITH_INPUT_FOLDERS)
def test_every_input_folder_empty_is_one_error_line(
    tmp_path: Path, step: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The contract folder is empty too: three scripts took its files[0] and died with an IndexError."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run_step(step, _step_arguments(step, empty, tmp_path / "out", contract=empty), capsys)
    _assert_one_error_line(result, str(empty))


@pytest.mark.parametrize("step", STEPS_WITH_INPUT_FOLDERS)
def test_an_empty_data_folder_with_a_real_contract_is_one_error_line(
    tmp_path: Path, step: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    arguments = _step_arguments(step, empty, tmp_path / "out", contract=STEPS_DIR / FEATURE_CONTRACT)
    result = _run_step(step, arguments, capsys)
    _assert_one_error_line(result, str(empty))


def test_a_contract_that_is_not_json_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = tmp_path / "contract" / "broken.json"
    contract.parent.mkdir()
    contract.write_text("{not json")
    arguments = _step_arguments("data_quality.py baseline", SAMPLE, tmp_path, contract)
    result = _run_step("data_quality.py baseline", arguments, capsys)
    _assert_one_error_line(result, "feature contract", "is not JSON")


def test_run_step_turns_expected_failures_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def parse(argv: list[str] | None) -> argparse.Namespace:
        return argparse.Namespace(data=Path("/nonexistent/folder/x.csv"))

    def missing_file(*, data: Path) -> None:
        data.read_text()

    def bad_input(*, data: Path) -> None:
        raise steplib.StepError(f"the reason, and the fix ({data.name})")

    called = []
    assert steplib.run_step(parse, bad_input, []) == 1
    assert steplib.run_step(parse, missing_file, []) == 1
    assert steplib.run_step(parse, lambda *, data: called.append(data), []) == 0
    assert called == [Path("/nonexistent/folder/x.csv")]  # the parsed arguments, by their names
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "error: the reason, and the fix (x.csv)"
    assert lines[1].startswith("error: [Errno 2] No such file or directory") and len(lines) == 2


# The capture format: a record still being written ------------------------------------------------------------------
def _capture_file(root: Path) -> Path:
    folder = root / "churn-dev-endpoint" / "AllTraffic" / "2026" / "11" / "29" / "12"
    folder.mkdir(parents=True)
    return folder / "00-00-000-x.jsonl"


def _line(number: int) -> str:
    when = datetime(2026, 11, 29, 12, number, tzinfo=UTC)
    return json.dumps(record((b"1,2", "text/csv"), (b"0.5\n", "text/csv"), when, f"id-{number}"))


def test_a_last_line_still_being_written_is_left_for_the_next_read(tmp_path: Path) -> None:
    path = _capture_file(tmp_path)
    partial = _line(3)[:40]
    path.write_text(f"{_line(1)}\n{_line(2)}\n{partial}")
    assert [parsed.inference_id for _, _, parsed in capture_lines(tmp_path)] == ["id-1", "id-2"]
    path.write_text(f"{_line(1)}\n{_line(2)}\n{_line(3)}")  # complete, just without its newline: read
    assert [parsed.inference_id for _, _, parsed in capture_lines(tmp_path)] == ["id-1", "id-2", "id-3"]


def test_a_multibyte_character_cut_by_the_writer_is_still_being_written(tmp_path: Path) -> None:
    path = _capture_file(tmp_path)
    path.write_bytes(f"{_line(1)}\n".encode() + '{"captureData": "caf\u00e9'.encode()[:-1])
    assert len(list(capture_lines(tmp_path))) == 1


def test_a_broken_line_before_the_last_still_fails(tmp_path: Path) -> None:
    path = _capture_file(tmp_path)
    path.write_text(f"{_line(1)}\n{_line(2)[:40]}\n{_line(3)}\n")
    with pytest.raises(CaptureFormatError, match="line 2: not a JSON line"):
        list(capture_lines(tmp_path))
