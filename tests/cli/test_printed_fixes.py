"""Every `mlops ...` command that an error message offers as its fix is one argparse accepts, and it does what it says.

Each case triggers an error the way a user does, finds the commands the printed line suggests (in backticks, in
parentheses, or after a colon at the end), fills in the <placeholders> a user would, parses each with the CLI's own
parser and - where it runs on this machine - runs it and checks the original problem is gone. Commands that call AWS
or start a server are parsed only and checked for what they would act on.

Defect 9 of issue 20: the damaged-cache message offered `cache clear --pipeline churn-dev-training` (argparse wants
`training`), and the missing-evaluation-data hint offered `dataset put --id latest`, which writes datasets/latest/, not
the evaluation/latest/ the run reads.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
from pathlib import Path

import pytest

from config import load_config
from mlops.cli import main, parser
from mlops.common import default_assembly
from mlops.serve import promoted_version
from pipeline_defs.local import LocalModelRegistry, LocalS3
from tests.cli.conftest import one_error_line
from tests.cli.test_local_state import minimal_assembly, state_with_code
from tests.cli.test_monitor import register_version
from tests.local.builders import pipeline, processing
from tests.test_cdk_cli import CDK, NO_CREDENTIALS

# A suggested command: after a backtick, an opening parenthesis or a colon, up to the closing mark or the line's end.
SUGGESTED = re.compile(r"(?:^|[`(]|: )(mlops [a-z][^`()\n]*)")
DEV = load_config("dev", None)
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_STEP = processing(
    "Read",
    "--input-dir",
    "/opt/ml/processing/input/data",
    inputs={"data": {"Get": "Parameters.InputDataUri"}},
)


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one `error:` line of a command that fails with it."""
    assert main(list(argv)) in (1, 2)
    return one_error_line(capsys.readouterr().err)


def suggested(message: str, **fill: str) -> list[list[str]]:
    """The commands `message` suggests, each as the argv a user would type (placeholders filled in), parsed by the
    CLI's parser: argparse accepting it is the first check."""
    commands = [match.group(1).rstrip(" .,") for match in SUGGESTED.finditer(message)]
    assert commands, f"no mlops command in: {message}"
    argvs = []
    for command in commands:
        for placeholder, value in fill.items():
            command = command.replace(f"<{placeholder}>", shlex.quote(value))
        assert "<" not in command, f"unfilled placeholder in {command!r}"
        argv = shlex.split(command)[1:]
        try:
            parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"argparse refuses the printed fix {command!r} (from: {message})")
        argvs.append(argv)
    return argvs


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> int:
    code = main(argv)
    capsys.readouterr()
    return code


def test_the_damaged_cache_fix_clears_that_index(tmp_path, capsys) -> None:
    state = state_with_code(tmp_path / "state")
    assembly = minimal_assembly(tmp_path / "cdk.out", pipeline(processing("Score")))
    again = ["run", "training", "--local", "--assembly", str(assembly), "--state-dir", str(state)]
    assert run(capsys, again) == 0
    index = state / "cache" / "churn-dev-training.json"
    index.write_text(index.read_text()[:40])

    [fix] = suggested(error_of(capsys, *again))

    assert fix[:4] == ["cache", "clear", "--pipeline", "training"]
    assert run(capsys, fix) == 0
    assert not index.exists()
    assert run(capsys, again) == 0


def test_the_damaged_cache_fix_names_the_unit_outside_dev(tmp_path, capsys) -> None:
    """In staging the damaged index is churn-staging-training's: the fix must not clear dev's."""
    state = state_with_code(tmp_path / "state")
    definition = pipeline(processing("Score"))
    assembly = minimal_assembly(tmp_path / "cdk.out", definition, name="churn-staging-training")
    again = ["run", "training", "--local", "--env", "staging", "--assembly", str(assembly), "--state-dir", str(state)]
    assert run(capsys, again) == 0
    index = state / "cache" / "churn-staging-training.json"
    index.write_text("{")

    [fix] = suggested(error_of(capsys, *again))

    assert run(capsys, fix) == 0 and not index.exists()
    assert run(capsys, again) == 0


def test_the_missing_dataset_fix_puts_it_where_the_run_reads(tmp_path, capsys) -> None:
    state = state_with_code(tmp_path / "state")
    parameters = [{"Name": "InputDataUri", "Type": "String"}]
    assembly = minimal_assembly(tmp_path / "cdk.out", pipeline(DATA_STEP, parameters=parameters))
    again = ["run", "training", "--local", "--assembly", str(assembly), "--state-dir", str(state), "--json"]
    again += ["--param", "InputDataUri=s3://local-landing/datasets/orders-7/"]
    folder = tmp_path / "orders"
    folder.mkdir()
    (folder / "part-0.csv").write_text("a,b\n1,2\n")

    [fix] = suggested(error_of(capsys, *again), folder=str(folder))

    assert run(capsys, fix) == 0
    code = main(again)
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["status"] == "Succeeded"
    report = LocalS3(state / "s3").path(result["steps"][0]["outputs"]["out"]) / "report.json"
    assert json.loads(report.read_text())["inputs"] == ["_SUCCESS", "part-0.csv"]


def test_the_missing_evaluation_data_fix_does_not_claim_to_fill_evaluation_latest(tmp_path, capsys) -> None:
    """The eval-only pipeline reads s3://local-landing/evaluation/latest/ by default; `dataset put` writes datasets/
    only. The fix puts a dataset and runs on it (or copies the files into the folder it names)."""
    state = state_with_code(tmp_path / "state")
    parameters = [{"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://local-landing/evaluation/latest/"}]
    definition = pipeline(DATA_STEP, parameters=parameters)
    assembly = minimal_assembly(tmp_path / "cdk.out", definition, name="churn-dev-evaluation")
    again = ["run", "evaluation", "--local", "--assembly", str(assembly), "--state-dir", str(state), "--json"]
    folder = tmp_path / "labelled"
    folder.mkdir()
    (folder / "part-0.csv").write_text("a,b\n1,2\n")

    message = error_of(capsys, *again)
    [fix] = suggested(message, folder=str(folder), id="eval-1")
    assert "--id latest" not in message and str(state / "s3/local-landing/evaluation/latest") in message
    [parameter] = re.findall(r"`(--param [^`]+)`", message)

    assert run(capsys, fix) == 0
    code = main([*again, *shlex.split(parameter.replace("<id>", "eval-1"))])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["parameters"]["InputDataUri"] == "s3://local-landing/datasets/eval-1/"


def test_the_fix_for_promoting_an_unapproved_version_approves_it_in_that_registry(tmp_path, capsys) -> None:
    state = tmp_path / "state"
    version = register_version(state, DEV.region)
    registry = LocalModelRegistry(state / "registry", DEV.region)
    registry.set_approval(DEV.model_package_group_name, version, "PendingManualApproval", "registered")
    promote = ["promote", "--local", "--version", str(version), "--state-dir", str(state)]

    [fix] = suggested(error_of(capsys, *promote), why="reviewed the metrics")

    assert fix[:3] == ["registry", "approve", str(version)] and "--local" in fix
    assert run(capsys, fix) == 0
    assert registry.describe(DEV.model_package_group_name, version)["ModelApprovalStatus"] == "Approved"
    assert run(capsys, promote) == 0


def test_the_fix_for_monitoring_without_traffic_serves_the_promoted_version(tmp_path, capsys) -> None:
    """A server: parsed, and the version it would serve is the one monitoring checks."""
    state = tmp_path / "state"
    version = register_version(state, DEV.region)
    assert run(capsys, ["promote", "--local", "--latest-approved", "--state-dir", str(state)]) == 0

    [fix] = suggested(error_of(capsys, "monitor", "--local", "--state-dir", str(state)))

    arguments = parser().parse_args(fix)
    assert (arguments.command, arguments.local, arguments.promoted) == ("serve", True, True)
    assert promoted_version(DEV, arguments.state_dir) == version


def test_the_fix_for_nothing_promoted_promotes_in_that_state_dir(tmp_path, capsys) -> None:
    """It once said `mlops promote --local --latest-approved`, which pins in the default .local, not here."""
    state = tmp_path / "state"
    version = register_version(state, DEV.region)

    [fix] = suggested(error_of(capsys, "monitor", "--local", "--state-dir", str(state)))

    assert fix[:3] == ["promote", "--local", "--latest-approved"] and "--state-dir" in fix
    assert run(capsys, fix) == 0
    assert promoted_version(DEV, state) == version


def test_the_fix_for_nothing_answering_starts_the_endpoint_on_that_port(tmp_path, capsys) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    request = tmp_path / "row.csv"
    request.write_text("9,43.19,396.64,month-to-month,electronic-check,none,2\n")

    [fix] = suggested(error_of(capsys, "invoke", "--local", "--port", str(port), str(request)))

    arguments = parser().parse_args(fix)
    assert (arguments.command, arguments.local, arguments.port) == ("serve", True, port)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["cost", "experiment"], ["cost", "experiment", "exp-1"]),
        (["cost", "execution", "--html", "x.html"], ["cost", "summary", "--html", "page.html"]),
        (["cost", "prices", "--region", "xx-nowhere-1"], ["cost", "prices", "--refresh", "--region", "xx-nowhere-1"]),
    ],
)
def test_the_cost_fixes_parse_and_name_what_was_asked_for(argv, expected, tmp_path, capsys, aws_env) -> None:
    """They call AWS: parsed only."""
    message = error_of(capsys, *argv, "--prices-dir", str(tmp_path), "--state-dir", str(tmp_path))
    assert suggested(message, **{"experiment-id": "exp-1", "file": "page.html"}) == [expected]


# The sandbox synth hint: it wrote the sandbox over the dev unit's cdk.out ------------------------------------------
def test_a_sandbox_reads_and_is_told_to_synthesize_into_a_folder_of_its_own(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    (tmp_path / "state").mkdir()
    message = error_of(capsys, "graph", "training", "--sandbox", "nobody-here")
    assert message == (
        "error: cdk.out.nobody-here holds no synthesized unit (no manifest.json): run "
        "`cdk synth -c env=dev -c sandbox=nobody-here --output cdk.out.nobody-here` first"
    )


@pytest.mark.heavy(seconds=20)  # one real `cdk synth` of a sandbox
def test_the_sandbox_synth_fix_runs_and_leaves_the_dev_assembly_alone(assembly_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    state = tmp_path / "state"
    (state / "s3/local-landing/datasets/d1").mkdir(parents=True)
    (state / "s3/local-landing/datasets/d1/part-0.csv").write_text("a\n1\n")
    run = ["run", "training", "--local", "--sandbox", "bob", "--state-dir", str(state)]
    run += ["--param", "InputDataUri=s3://local-landing/datasets/d1/"]
    dev_manifest = (assembly_dir / "manifest.json").read_bytes()

    message = error_of(capsys, *run, "--assembly", str(assembly_dir))  # the dev unit's assembly: no sandbox in it

    [synth] = re.findall(r"`(cdk synth [^`]+)`", message)
    words = shlex.split(synth)
    output = Path(words[words.index("--output") + 1])
    assert output.resolve() == default_assembly(load_config("dev", "bob")) == REPO_ROOT / "cdk.out.bob"
    assert message.endswith(f"then pass --assembly {output}")
    # As printed, but into a temporary folder: the test must not leave cdk.out.bob in the checkout.
    words[words.index("--output") + 1] = str(tmp_path / output.name)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | NO_CREDENTIALS
    environment["PATH"] = f"{CDK.parent}:{environment['PATH']}"
    synthesized = subprocess.run(
        [str(CDK), *words[1:], "--quiet", "--no-notices"], cwd=REPO_ROOT, env=environment, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert synthesized.returncode == 0, synthesized.stderr
    # The sandbox's own pipelines are there (graph names churn-dev-bob-training or fails), the dev unit's unchanged.
    assert main(["graph", "training", "--sandbox", "bob", "--assembly", str(tmp_path / output.name)]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD")
    assert (assembly_dir / "manifest.json").read_bytes() == dev_manifest
