"""`mlops` on local state: stopping a run, the cache commands, pruning executions, the demo's folder, stale or damaged
assemblies, run summaries. Most tests run a tiny hand-written definition through a minimal cloud assembly (a
manifest and one template, as `cdk synth` lays them out), so each run takes a fraction of a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from config import load_config
from mlops import start as start_command
from mlops.cli import COMMANDS
from mlops.demo_state import DEMO_MARKER, fresh_state_dir
from mlops.local import CODE_ASSET_PREFIX
from pipeline_defs.local import STATE_MARKER, executions_in_use, load_assembly
from pipeline_defs.packaging import code_bytes
from tests.cli.conftest import cli
from tests.local.builders import CODE_URI, REPORT_SCRIPT, alive, pipeline, processing, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = "churn-dev-training"  # the name `mlops run training` looks for in the dev unit


def minimal_assembly(folder: Path, definition: dict, name: str = PIPELINE) -> Path:
    """A cloud assembly holding one stack whose template has the pipeline `name` (the training pipeline) with
    `definition`."""
    folder.mkdir(parents=True)
    artifact = {"type": "aws:cloudformation:stack", "displayName": "Fake", "properties": {"templateFile": "f.json"}}
    (folder / "manifest.json").write_text(json.dumps({"version": "41.0.0", "artifacts": {"Fake": artifact}}))
    pipeline_resource = {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {
            "PipelineName": name,
            "PipelineDefinition": {"PipelineDefinitionBody": json.dumps(definition)},
        },
    }
    (folder / "f.json").write_text(json.dumps({"Resources": {"Pipeline": pipeline_resource}}))
    return folder


def state_with_code(state: Path, script: str = REPORT_SCRIPT) -> Path:
    code = state / "s3" / "local-artifacts" / CODE_URI.removeprefix("s3://local-artifacts/")
    code.parent.mkdir(parents=True)
    code.write_text(script)
    return state


@pytest.fixture
def local(tmp_path: Path) -> tuple[list[str], Path]:
    """(`--assembly A --state-dir S` for a one-step cached pipeline, the state dir)."""
    state = state_with_code(tmp_path / "state")
    assembly = minimal_assembly(tmp_path / "cdk.out", pipeline(processing("Score", "--score", "0.8125")))
    return ["--assembly", str(assembly), "--state-dir", str(state)], state


# Stopping a run --------------------------------------------------------------------------------------------------
SLOW_STEP = """
import os, pathlib, subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
# Whole or not at all (the test waits for the file to exist, then reads it): written beside it, then renamed.
pathlib.Path(os.environ["PIDS_FILE"] + ".tmp").write_text(f"{os.getpid()} {helper.pid}")
os.replace(os.environ["PIDS_FILE"] + ".tmp", os.environ["PIDS_FILE"])
time.sleep(120)
"""


@pytest.mark.heavy(seconds=2)  # a run, stopped after its grace period
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_step_and_everything_it_started_and_records_the_run_as_stopped(tmp_path, number) -> None:
    pids_file = tmp_path / "pids"
    state = state_with_code(tmp_path / "state", SLOW_STEP)
    slow = processing("Slow", environment={"PIDS_FILE": str(pids_file)})
    # After needs Slow: stopping Slow must keep After from ever starting (independent steps would run beside it).
    assembly = minimal_assembly(tmp_path / "cdk.out", pipeline(slow, processing("After", DependsOn=["Slow"])))
    command = [sys.executable, "-m", "mlops.cli", "run", "training", "--local", "--assembly", str(assembly)]
    process = subprocess.Popen(
        [*command, "--state-dir", str(state)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    pids: list[int] = []
    try:
        assert wait_for(pids_file.exists, 60), process.communicate(timeout=5)
        pids = [int(pid) for pid in pids_file.read_text().split()]
        step_pid, helper_pid = pids
        process.send_signal(number)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        if process.returncode is None or process.returncode < 0:  # the run never stopped its step: nothing outlives
            for pid in pids:  # the test (a run that did stop them has reaped them, and their pids may be reused)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    assert process.returncode == 1
    assert "Traceback" not in err
    stopped_by = f"stopped by {number.name}"
    assert err.splitlines()[-1].startswith(f"error: {stopped_by}: execution ")
    assert wait_for(lambda: not alive(step_pid) and not alive(helper_pid), 10)  # the whole process group is gone
    (execution,) = (state / "executions" / PIPELINE).iterdir()
    recorded = json.loads((execution / "execution.json").read_text())
    assert (recorded["status"], recorded["failure_reason"]) == ("Stopped", stopped_by)
    assert [(step["name"], step["status"]) for step in recorded["steps"]] == [("Slow", "Stopped")]  # After never ran
    assert f"Stopped: {stopped_by}" in out


def test_ctrl_c_outside_a_run_is_one_line(monkeypatch, capsys) -> None:
    def interrupted(args, config):
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, "graph", interrupted)
    assert cli(capsys, "graph", "training") == (1, "", "error: interrupted\n")


# The cache -------------------------------------------------------------------------------------------------------
def test_a_damaged_cache_index_is_one_line_with_the_fix_and_cache_clear_is_that_fix(local, capsys) -> None:
    options, state = local
    assert cli(capsys, "run", "training", "--local", *options)[0] == 0
    index = state / "cache" / f"{PIPELINE}.json"
    index.write_bytes(index.read_bytes()[:40])  # cut short, as by a crash in the middle of a write

    code, out, err = cli(capsys, "run", "training", "--local", *options)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: the cache index {index} is corrupt (") and err.count("\n") == 1
    # Defect 9: it printed `--pipeline churn-dev-training`, which argparse refuses (tests/cli/test_printed_fixes.py).
    assert err.endswith(
        f"run `mlops cache clear --pipeline training --state-dir {state}` (the next run re-runs its steps)\n"
    )

    assert cli(capsys, "cache", "clear", "--pipeline", "training", "--state-dir", str(state))[1] == (
        f"{PIPELINE}: forgot a damaged cache index ({index})\n"
    )
    code, out, _ = cli(capsys, "run", "training", "--local", *options, "--json")
    assert code == 0 and json.loads(out)["steps"][0]["cache_hit"] is False


def test_no_cache_reruns_every_step_and_cache_clear_forgets_the_entries(local, capsys) -> None:
    options, state = local

    def score_step(*extra: str) -> dict:
        code, out, err = cli(capsys, "run", "training", "--local", *options, "--json", *extra)
        assert code == 0, err
        return json.loads(out)["steps"][0]

    first = score_step()
    assert score_step()["cache_hit"] is True
    assert score_step("--no-cache")["cache_hit"] is False
    assert cli(capsys, "cache", "clear", "--state-dir", str(state), "--json")[1] == (
        # one entry: the --no-cache run's result replaced the first run's (same step and key)
        json.dumps({"cleared": {PIPELINE: 1, "churn-dev-evaluation": 0, "churn-dev-scoring": 0}}, indent=2) + "\n"
    )
    assert score_step()["cache_hit"] is False and first["cache_hit"] is False


# Pruning executions ----------------------------------------------------------------------------------------------
def test_prune_keeps_the_newest_executions_and_the_cache_still_hits(local, capsys) -> None:
    options, state = local
    ids = [
        json.loads(cli(capsys, "run", "training", "--local", *options, "--json")[1])["execution_id"] for _ in range(3)
    ]
    folder = state / "executions" / PIPELINE
    (folder / "killed-before-it-wrote-its-summary").mkdir()  # a run killed with SIGKILL: no execution.json
    os.utime(folder / "killed-before-it-wrote-its-summary", (0, 0))

    code, out, _ = cli(capsys, "executions", "prune", "--keep", "1", "--dry-run", "--json", "--state-dir", str(state))
    planned = json.loads(out)["pipelines"][PIPELINE]
    assert code == 0 and len(list(folder.iterdir())) == 4  # a dry run removes nothing
    assert planned["kept"] == [ids[-1]] and sorted(planned["removed"]) == sorted(
        [*ids[:2], "killed-before-it-wrote-its-summary"]
    )

    code, out, _ = cli(
        capsys, "executions", "prune", "--keep", "1", "--pipeline", "training", "--state-dir", str(state)
    )
    assert code == 0 and out.startswith(f"{PIPELINE}: removed 3 execution(s), ")
    assert [path.name for path in folder.iterdir()] == [ids[-1]]
    code, out, _ = cli(capsys, "run", "training", "--local", *options, "--json")
    assert json.loads(out)["steps"][0]["cache_source"] == ids[0]  # outputs live in the local buckets, not executions/


def test_prune_refuses_while_a_run_uses_the_state_dir(local, capsys) -> None:
    options, state = local
    cli(capsys, "run", "training", "--local", *options)
    with executions_in_use(state):  # what every run holds while it runs
        code, out, err = cli(capsys, "executions", "prune", "--keep", "0", "--state-dir", str(state))
    assert (code, out) == (2, "")
    assert err == f"error: {state} is in use by another mlops command: try again when it ends\n"
    assert len(list((state / "executions" / PIPELINE).iterdir())) == 1


def test_prune_refuses_a_negative_keep(capsys, tmp_path) -> None:
    assert cli(capsys, "executions", "prune", "--keep", "-1", "--state-dir", str(tmp_path))[2] == (
        "error: --keep -1: keep 0 or more executions\n"
    )


# Run summaries ---------------------------------------------------------------------------------------------------
def registering_pipeline() -> dict:
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "churn-dev-models",
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {
                "Containers": [{"Image": "sklearn", "ModelDataUrl": "s3://local-artifacts/model.tar.gz"}]
            },
        },
        "DependsOn": ["Score"],
    }
    return pipeline(processing("Score", "--score", "0.8125"), register)


def test_the_run_summary_and_json_carry_the_metrics_and_the_registered_version(tmp_path, capsys) -> None:
    state = state_with_code(tmp_path / "state")
    options = [
        "--assembly",
        str(minimal_assembly(tmp_path / "cdk.out", registering_pipeline())),
        "--state-dir",
        str(state),
    ]

    code, out, _ = cli(capsys, "run", "training", "--local", *options)
    assert code == 0
    assert "Metrics: Score.Report.score 0.8125" in out.splitlines()
    assert "Registered: churn-dev-models version 1 (PendingManualApproval)" in out.splitlines()

    document = json.loads(cli(capsys, "run", "training", "--local", *options, "--json")[1])
    assert document["metrics"] == {"Score.Report.score": 0.8125}
    assert document["registered"] == {
        "group": "churn-dev-models",
        "version": 2,
        "status": "PendingManualApproval",
        "arn": "arn:aws:sagemaker:eu-west-1:000000000000:model-package/churn-dev-models/2",
    }


# State dirs and the demo's folder --------------------------------------------------------------------------------
def test_a_state_dir_that_is_a_file_is_one_line(local, capsys, tmp_path) -> None:
    options, _ = local
    (tmp_path / "file").write_text("x")
    code, out, err = cli(capsys, "run", "training", "--local", *options, "--state-dir", str(tmp_path / "file"))
    assert (code, out) == (2, "")
    file = tmp_path / "file"
    assert err == f"error: the state dir {file} cannot be a folder ({file} is a file): pick another one\n"


def test_the_demo_never_deletes_a_used_state_dir_only_the_folders_it_created(local, capsys) -> None:
    options, state = local
    cli(capsys, "run", "training", "--local", *options)  # a state dir with runs, a cache, the local-state marker
    assert (state / STATE_MARKER).exists()
    before = sorted(path.relative_to(state) for path in state.rglob("*"))

    code, _, err = cli(capsys, "demo", "--assembly", options[1], "--state-dir", str(state))

    assert code == 2 and "was not created by mlops demo, so the demo will not delete it" in err
    assert sorted(path.relative_to(state) for path in state.rglob("*")) == before


def test_the_demo_refuses_a_state_dir_inside_a_file_in_one_line(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = cli(capsys, "demo", "--state-dir", str(tmp_path / "file" / "demo"))
    assert code == 2 and err.startswith("error: the state dir ") and err.count("\n") == 1


def test_the_demo_re_creates_its_own_folder(tmp_path) -> None:
    demo = tmp_path / "demo"
    fresh_state_dir(demo)
    (demo / "registry").mkdir()
    fresh_state_dir(demo)
    assert [path.name for path in demo.iterdir()] == [DEMO_MARKER]


# Damaged or stale assemblies -------------------------------------------------------------------------------------
@pytest.fixture
def assembly_copy(assembly_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(assembly_dir, tmp_path / "cdk.out"))


def run_with(capsys, assembly: Path, tmp_path: Path) -> tuple[int, str, str]:
    (tmp_path / "s").mkdir(exist_ok=True)
    return cli(capsys, "run", "training", "--local", "--assembly", str(assembly), "--state-dir", str(tmp_path / "s"))


def staged_code(assembly: Path, name: str) -> Path:
    return load_assembly(assembly, "eu-west-1").named_assets[f"{CODE_ASSET_PREFIX}{name}"]


def test_every_step_code_object_is_found_in_the_synthesized_assembly(assembly_dir) -> None:
    """The stale-code check matches assets by their display name: each code object must be there, byte for byte."""
    for name, data in code_bytes().items():
        assert staged_code(assembly_dir, name).read_bytes() == data, name


@pytest.mark.parametrize("change", ["edited", "truncated"])
def test_step_code_that_differs_from_the_checkout_asks_for_a_new_synth(assembly_copy, tmp_path, capsys, change) -> None:
    staged = staged_code(assembly_copy, "preprocess.py")
    content = staged.read_bytes()
    staged.write_bytes(content + b"\n# edited\n" if change == "edited" else content[: len(content) // 2])

    code, out, err = run_with(capsys, assembly_copy, tmp_path)

    assert (code, out) == (2, "")
    assert err == (
        f"error: re-synthesize: steps changed since the last synth (preprocess.py is not what {staged} holds): "
        "run `make synth`\n"
    )
    assert not any((tmp_path / "s").iterdir())  # nothing written into the state dir


def test_a_missing_asset_asks_for_a_new_synth(assembly_copy, tmp_path, capsys) -> None:
    staged = staged_code(assembly_copy, "train.tar.gz")
    staged.unlink()
    code, _, err = run_with(capsys, assembly_copy, tmp_path)
    assert code == 2
    assert err.startswith(f"error: asset {staged.name}, named in ") and err.endswith(
        "is missing: re-synthesize it (`make synth`)\n"
    )


@pytest.mark.parametrize(
    "damaged", ["manifest.json", "assembly-churn-dev/manifest.json", "*.assets.json", "*.template.json"]
)
def test_a_truncated_assembly_file_is_one_line(assembly_copy, tmp_path, capsys, damaged) -> None:
    path = next(assembly_copy.rglob(damaged)) if "*" in damaged else assembly_copy / damaged
    path.write_bytes(path.read_bytes()[:100])

    code, out, err = run_with(capsys, assembly_copy, tmp_path)

    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"{path} is damaged (" in err and err.endswith("re-synthesize it (`make synth`)\n")


# start: the same InputDataUri rule -------------------------------------------------------------------------------
def test_start_adds_the_trailing_slash_of_input_data_uri_as_run_does() -> None:
    request = start_command.start_request(
        load_config("dev"), "training", "exp-1", "s3://landing/datasets/sample-v1", str(uuid.uuid4())
    )
    assert {"Name": "InputDataUri", "Value": "s3://landing/datasets/sample-v1/"} in request["PipelineParameters"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--experiment", "../..", "error: --experiment '../..': use 1-128 letters, digits"),
        ("--input-data-uri", "s3://landing", "error: --input-data-uri 's3://landing' is not an S3 folder URI"),
        ("--input-data-uri", f"s3://landing/{'d' * 243}", "is 257 characters: at most 256, the longest value the"),
    ],
)
def test_start_refuses_what_run_refuses(capsys, option, value, message) -> None:
    arguments = {"--experiment": "exp-1", "--input-data-uri": "s3://landing/datasets/x/", option: value}
    code, _, err = cli(capsys, "start", "training", *[item for pair in arguments.items() for item in pair])
    assert code == 2 and err.count("\n") == 1 and message in err


# Data files that are not text ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, "tenure_months,contract,churned\n3,month-to-mönth,1\n".encode("latin-1")],
    ids=["binary", "latin-1"],
)
def test_a_data_file_that_is_not_utf8_fails_the_run_naming_the_s3_object(
    assembly_dir, tmp_path, capsys, content
) -> None:
    dataset = tmp_path / "s" / "s3" / "local-landing" / "datasets" / "bad-v1"
    dataset.mkdir(parents=True)
    (dataset / "part-0.csv").write_bytes(content)
    uri = "s3://local-landing/datasets/bad-v1/"

    code, out, err = cli(
        capsys, "run", "training", "--local", "--assembly", str(assembly_dir), "--state-dir", str(tmp_path / "s"),
        "--param", f"InputDataUri={uri}",
    )  # fmt: skip

    assert code == 1 and "Traceback" not in out + err
    failure = out.splitlines()[-1]
    assert failure.startswith("Failed: step Preprocess: exited with code 1: ")
    assert f"{uri}part-0.csv" in failure and "/input/" not in failure  # the S3 object, not the step's local copy
