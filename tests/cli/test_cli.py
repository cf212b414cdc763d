"""The operator CLI: local registry, `start` against botocore Stubber, graph, run errors, the demo, the entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from config import load_config
from mlops import start as start_command
from mlops.common import default_assembly
from pipeline_defs.local import LocalModelRegistry
from tests.cli.conftest import cli

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO_ROOT / "pipeline_defs" / "sample_data"
GROUP = "churn-dev-models"
REGION = "eu-west-1"
EVALUATION_DATA = "s3/local-landing/evaluation/latest"  # the eval-only pipeline's default input, in a state dir
TOKEN = uuid.UUID("12345678-1234-4678-9234-567812345678")


def register(registry: LocalModelRegistry, experiment: str = "exp") -> dict:
    model = f"s3://local-artifacts/{experiment}/model.tar.gz"
    return registry.register(
        {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {"Containers": [{"Image": "sklearn", "ModelDataUrl": model}]},
            "CustomerMetadataProperties": {"experiment-id": experiment},
            "SkipModelValidation": "None",
        }
    )


# Local registry --------------------------------------------------------------------------------------------------
def test_registry_approve_and_reject_default_to_the_newest_pending_version(tmp_path, capsys) -> None:
    registry = LocalModelRegistry(tmp_path / "registry", REGION)
    for experiment in ("a", "b", "c"):
        register(registry, experiment)
    state = ["--local", "--state-dir", str(tmp_path)]

    assert cli(capsys, "registry", "approve", *state)[1] == (
        f"{GROUP} version 3: PendingManualApproval -> Approved "
        f"(arn:aws:sagemaker:{REGION}:000000000000:model-package/{GROUP}/3)\n"
    )
    assert cli(capsys, "registry", "reject", "--version", "1", "--description", "too old", *state)[0] == 0
    code, out, _ = cli(capsys, "registry", "list", "--json", *state)

    assert code == 0
    versions = {row["version"]: row for row in json.loads(out)["versions"]}
    assert {v: row["status"] for v, row in versions.items()} == {
        1: "Rejected",
        2: "PendingManualApproval",
        3: "Approved",
    }
    assert versions[2]["experiment_id"] == "b" and versions[2]["roc_auc"] is None
    assert registry.describe(GROUP, 1)["ApprovalDescription"] == "too old"
    assert "SkipModelValidation" not in registry.describe(GROUP, 1)


def test_registry_errors_are_one_line(tmp_path, capsys) -> None:
    registry = LocalModelRegistry(tmp_path / "registry", REGION)
    register(registry)
    registry.set_approval(GROUP, 1, "Approved")
    state = ["--local", "--state-dir", str(tmp_path)]

    assert cli(capsys, "registry", "approve", *state) == (
        2,
        "",
        f"error: no version of {GROUP} is PendingManualApproval: name the version\n",
    )
    assert cli(capsys, "registry", "reject", "7", *state)[2] == f"error: {GROUP} has no version 7 (versions: 1)\n"
    assert (
        cli(capsys, "registry", "approve", "1", *state)[2]
        == f"error: {GROUP} version 1 is already Approved: nothing to do\n"
    )
    assert (
        cli(capsys, "registry", "diff", "1", *state)[2]
        == "error: mlops registry diff N M: name the two versions to compare\n"
    )
    assert cli(capsys, "registry", "show", *state)[0] == 2


def test_registry_show_and_diff_read_the_local_versions(tmp_path, capsys) -> None:
    registry = LocalModelRegistry(tmp_path / "registry", REGION)
    for experiment in ("a", "b"):
        register(registry, experiment)
    state = ["--local", "--state-dir", str(tmp_path), "--json"]

    code, out, _ = cli(capsys, "registry", "show", "2", *state)
    shown = json.loads(out)
    assert code == 0 and shown["version"] == 2 and shown["metadata"] == {"experiment-id": "b"}
    assert shown["status"] == "PendingManualApproval" and shown["pinned_by"] == []

    code, out, _ = cli(capsys, "registry", "diff", "1", "2", *state)
    assert code == 0 and json.loads(out)["changes"] == {
        "metadata.experiment-id": ["a", "b"],
        "model_data": ["s3://local-artifacts/a/model.tar.gz", "s3://local-artifacts/b/model.tar.gz"],
    }


def test_the_resolve_model_step_finds_what_the_local_registry_wrote(tmp_path) -> None:
    """The step script's REGISTRY_BACKEND=local reads the files this registry writes: latest Approved wins."""
    registry = LocalModelRegistry(tmp_path / "registry", REGION)
    for experiment in ("a", "b", "c"):
        register(registry, experiment)
    registry.set_approval(GROUP, 2, "Approved")
    environment = {**os.environ, "REGISTRY_BACKEND": "local", "LOCAL_REGISTRY_DIR": str(registry.root)}
    script = REPO_ROOT / "pipeline_defs" / "steps" / "resolve_model.py"
    arguments = ["--group-name", GROUP, "--output-dir", str(tmp_path / "out"), "--require"]

    subprocess.run([sys.executable, str(script), *arguments], env=environment, check=True, capture_output=True)

    resolved = json.loads((tmp_path / "out" / "resolved.json").read_text())
    assert resolved["model_package_arn"] == registry.arn(GROUP, 2)
    assert resolved["model_data_url"] == "s3://local-artifacts/b/model.tar.gz"


# start: the deployed pipeline, through boto3 ---------------------------------------------------------------------
@pytest.fixture
def sagemaker(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("sagemaker", region_name=REGION)
    monkeypatch.setattr(boto3, "client", lambda service, region_name: client)
    monkeypatch.setattr(start_command.uuid, "uuid4", lambda: TOKEN)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_start_training_sends_exactly_this_request(sagemaker, capsys) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:111111111111:pipeline/churn-dev-training/execution/abc123"
    request = {
        "PipelineName": "churn-dev-training",
        "PipelineExecutionDisplayName": "exp-7-12345678",
        "PipelineExecutionDescription": "Started with mlops start, experiment exp.7",
        "PipelineParameters": [
            {"Name": "ExperimentId", "Value": "exp.7"},
            {"Name": "InputDataUri", "Value": "s3://landing/datasets/d1/"},
        ],
        "ClientRequestToken": str(TOKEN),
    }
    sagemaker.add_response("start_pipeline_execution", {"PipelineExecutionArn": arn}, request)

    code, out, _ = cli(
        capsys,
        "start",
        "training",
        "--env",
        "dev",
        "--experiment",
        "exp.7",
        "--input-data-uri",
        "s3://landing/datasets/d1/",
    )

    assert code == 0
    assert out.splitlines()[0] == f"started churn-dev-training (exp-7-12345678): {arn}"


def test_start_evaluation_in_prod_needs_no_input_uri(sagemaker, capsys) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:333333333333:pipeline/churn-prod-evaluation/execution/xyz"
    request = {
        "PipelineName": "churn-prod-evaluation",
        "PipelineExecutionDisplayName": "weekly-12345678",
        "PipelineExecutionDescription": "Started with mlops start, experiment weekly",
        "PipelineParameters": [{"Name": "ExperimentId", "Value": "weekly"}],
        "ClientRequestToken": str(TOKEN),
    }
    sagemaker.add_response("start_pipeline_execution", {"PipelineExecutionArn": arn}, request)

    code, out, _ = cli(capsys, "start", "evaluation", "--env", "prod", "--experiment", "weekly", "--json")

    assert code == 0
    assert json.loads(out) == {"PipelineExecutionArn": arn, "request": request}


def test_start_scoring_scores_a_customer_list_with_a_chosen_version(sagemaker, capsys) -> None:
    customers = "s3://churn-prod-landing/scoring/2026-12/"
    package = "arn:aws:sagemaker:eu-west-1:333333333333:model-package/churn-prod-models/7"
    parameters = [
        {"Name": "ExperimentId", "Value": "retention-2026-12"},
        {"Name": "InputDataUri", "Value": customers},
        {"Name": "ModelPackageArn", "Value": package},
    ]
    arn = f"arn:aws:sagemaker:{REGION}:333333333333:pipeline/churn-prod-scoring/execution/s1"
    sagemaker.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": arn},
        {**_ANY_START, "PipelineName": "churn-prod-scoring", "PipelineParameters": parameters},
    )

    code, out, _ = cli(
        capsys,
        *("start", "scoring", "--env", "prod", "--experiment", "retention-2026-12", "--input-data-uri", customers),
        *("--param", f"ModelPackageArn={package}"),
    )

    assert code == 0 and out.startswith(f"started churn-prod-scoring (retention-2026-12-12345678): {arn}")


def test_start_evaluation_on_captured_traffic_passes_the_checked_parameters(sagemaker, capsys) -> None:
    capture = "s3://churn-prod-artifacts/data-capture/churn-prod-endpoint/"
    labels = "s3://churn-prod-landing/ground-truth/churn-prod-endpoint"  # a folder: the "/" is added
    parameters = [
        {"Name": "ExperimentId", "Value": "traffic"},
        {"Name": "InputDataUri", "Value": capture},
        {"Name": "GroundTruthUri", "Value": labels + "/"},
        {"Name": "CapturePeriodHours", "Value": "24"},
    ]
    arn = f"arn:aws:sagemaker:{REGION}:333333333333:pipeline/churn-prod-evaluation/execution/abc"
    sagemaker.add_response(
        "start_pipeline_execution", {"PipelineExecutionArn": arn}, {**_ANY_START, "PipelineParameters": parameters}
    )
    code, _, _ = cli(
        capsys,
        *("start", "evaluation", "--env", "prod", "--experiment", "traffic", "--input-data-uri", capture),
        *("--param", f"GroundTruthUri={labels}", "--param", "CapturePeriodHours=24"),
    )
    assert code == 0
    for bad, message in [
        ("CapturePeriodHours=-1", "parameter CapturePeriodHours -1.0 must be a number >= 0"),
        ("GroundTruthUri=labels.csv", "parameter GroundTruthUri 'labels.csv' is not an S3 folder URI"),
        ("ExperimentId=x", "--param ExperimentId: use --experiment"),
    ]:
        code, _, err = cli(capsys, "start", "evaluation", "--experiment", "x", "--param", bad)
        assert (code, err.count("\n")) == (2, 1) and message in err, err


def test_start_reports_aws_errors_and_bad_input_in_one_line(sagemaker, capsys) -> None:
    sagemaker.add_client_error("start_pipeline_execution", "ResourceNotFound", "Pipeline does not exist")

    code, _, err = cli(capsys, "start", "evaluation", "--experiment", "x")
    assert code == 1
    assert err.startswith("error: starting churn-dev-evaluation failed: An error occurred (ResourceNotFound)")
    assert err.count("\n") == 1
    assert cli(capsys, "start", "training", "--experiment", "x")[2] == (
        "error: the training pipeline needs --input-data-uri s3://<landing bucket>/datasets/<dataset-id>/\n"
    )
    assert cli(capsys, "start", "evaluation", "--experiment", "no spaces")[0] == 2


_ANY_START = {
    "PipelineName": "churn-prod-evaluation",
    "PipelineExecutionDisplayName": ANY,
    "PipelineExecutionDescription": ANY,
    "ClientRequestToken": ANY,
}


# run, graph, demo on the synthesized assembly ------------------------------------------------------------------------
def test_run_prints_progress_a_summary_table_and_the_failure(assembly_dir, tmp_path, capsys) -> None:
    """The eval-only pipeline without an approved model: ResolveModel fails, clearly, and (one step at a time) nothing
    else runs."""
    shutil.copytree(REPO_ROOT / "pipeline_defs" / "sample_data" / "churn-drifted", tmp_path / EVALUATION_DATA)
    code, out, err = cli(
        capsys,
        *("run", "evaluation", "--local", "--jobs", "1", "--assembly", str(assembly_dir), "--state-dir", str(tmp_path)),
    )

    assert code == 1
    assert "ResolveModel (Processing) running" in err
    lines = out.splitlines()
    assert lines[0].startswith("Pipeline churn-dev-evaluation, execution ") and ": Failed in " in lines[0]
    assert lines[1].split() == ["step", "type", "status", "cache", "duration", "note"]
    assert lines[2].split()[:4] == ["ResolveModel", "Processing", "Failed", "-"]
    assert lines[-1].startswith(
        "Failed: step ResolveModel: exited with code 1: error: no Approved model package in group "
        "'churn-dev-models': approve one before evaluating (log: "
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "training"],
            "error: `run` executes a pipeline on this machine: pass --local (to run in AWS: mlops start)",
        ),
        (
            ["run", "training", "--local", "--param", "MaxRegression"],
            "error: --param 'MaxRegression': expected NAME=VALUE",
        ),
        (["run", "training", "--local", "--param", "MaxRegression=lots"], "error: parameter MaxRegression is Float"),
        (
            ["run", "evaluation", "--local", "--param", "Foo=1"],
            "error: unknown parameter(s) Foo; the pipeline declares",
        ),
        (["run", "training", "--local", "--env", "qa"], "error: unknown environment 'qa': use --env with one of"),
    ],
)
def test_run_rejects_bad_input_with_one_line(assembly_dir, tmp_path, capsys, argv, message) -> None:
    code, out, err = cli(capsys, *argv, "--assembly", str(assembly_dir), "--state-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(message) and err.count("\n") == 1


def test_run_needs_a_synthesized_assembly(tmp_path, capsys) -> None:
    argv = ["--assembly", str(tmp_path / "nowhere"), "--state-dir", str(tmp_path)]
    code, _, err = cli(capsys, "run", "evaluation", "--local", *argv)
    assert code == 2
    assert err == (
        f"error: {tmp_path / 'nowhere'} holds no synthesized unit (no manifest.json): run `make synth` "
        f"(or `cdk synth -c env=dev --output {tmp_path / 'nowhere'}`) first\n"
    )


def test_graph_renders_the_synthesized_definition(assembly_dir, capsys) -> None:
    code, out, _ = cli(capsys, "graph", "evaluation", "--assembly", str(assembly_dir))
    assert code == 0
    assert out.startswith("flowchart TD\n")
    assert "ModelHealthy -->|false| ModelUnhealthy" in out


# The demo's own run is checked by tests/test_readme.py, which runs the README's `mlops demo` (once per suite).
def test_demo_never_wipes_a_folder_that_is_not_a_local_state_dir(assembly_dir, tmp_path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    code, _, err = cli(capsys, "demo", "--assembly", str(assembly_dir), "--state-dir", str(tmp_path))
    assert code == 2 and "was not created by mlops demo, so the demo will not delete it" in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


# The entry point ---------------------------------------------------------------------------------------------------
def test_importing_the_cli_changes_no_environment_variable() -> None:
    """`mlops start` on EC2/Cloud9 needs instance-profile credentials: nothing may switch the metadata lookup off."""
    script = (
        "import os, json; before = dict(os.environ); import mlops.cli; print(json.dumps(dict(os.environ) == before))"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "SAGEMAKER_"))}
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "true"
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mlops.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sagemaker', 'pandas', 'sklearn')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # Every command starts without the SDK or the data stack: the commands that need pandas import it themselves.
    assert loaded.stdout.strip() == "[]"


def test_the_installed_entry_point_works_from_a_subfolder() -> None:
    entry_point = Path(sys.executable).parent / "mlops"
    assert entry_point.is_file(), "make deps installs the checkout editable, with the mlops entry point"
    subfolder = REPO_ROOT / "pipeline_defs" / "steps"
    done = subprocess.run([str(entry_point), "--help"], cwd=subfolder, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: mlops ")
    for command in ("run", "registry", "graph", "start", "demo", "dlq"):
        assert command in done.stdout


def test_commands_find_the_checkout_from_a_subfolder(tmp_path, monkeypatch, capsys) -> None:
    """Defaults (cdk.out, .local) are the checkout's, wherever in it the command runs."""
    monkeypatch.chdir(REPO_ROOT / "pipeline_defs")
    arguments = {action.dest: action.default for action in _run_parser_actions()}
    assert arguments["assembly"] is None  # the unit's, once the unit is known: cdk.out, or cdk.out.<sandbox>
    assert default_assembly(load_config("dev", None)) == REPO_ROOT / "cdk.out"
    assert default_assembly(load_config("dev", "alice")) == REPO_ROOT / "cdk.out.alice"
    assert arguments["state_dir"] == REPO_ROOT / ".local"


def _run_parser_actions():
    from mlops.cli import parser

    subparsers = next(action for action in parser()._actions if action.dest == "command")
    return subparsers.choices["run"]._actions
