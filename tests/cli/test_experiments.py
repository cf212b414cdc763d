"""`mlops step load` and `mlops experiment run`: bad input refused with one line and nothing changed, the AWS paths
against botocore Stubber (exact requests), the gate's verdict from a definition's own conditions. The local paths on
a real demo state run in tests/test_readme.py (the README's examples), which has that state already."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY

from mlops import experiment_aws, step_load_aws, tracking
from mlops.experiment import gate_verdict
from mlops.local import read_assembly
from mlops.step_load import job_arguments
from pipeline_defs.packaging import STEPS_DIR, library_zip_bytes
from tests.cli.conftest import cli, expect_object, one_error_line, stubbed_clients
from tests.helpers import load_module

PIPELINE = "churn-dev-training"
ARN = f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/abc123"
JOBS = "arn:aws:sagemaker:eu-west-1:111111111111:processing-job"
ROOT = "/opt/ml/processing"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir with one training execution: Train succeeded, Evaluate failed."""
    execution = tmp_path / "state" / "executions" / PIPELINE / "abc123"
    execution.mkdir(parents=True)
    steps = [
        {"name": "Train", "type": "Training", "status": "Succeeded", "properties": {"HyperParameters": {}}},
        {"name": "Evaluate", "type": "Processing", "status": "Failed", "properties": {}},
    ]
    record = {"pipeline": PIPELINE, "execution_id": "abc123", "started": "2026-01-01T00:00:00+00:00", "steps": steps}
    (execution / "execution.json").write_text(json.dumps(record))
    return tmp_path / "state"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["Trian", "--execution", "latest"], "no step Trian in execution abc123: it has Train, Evaluate"),
        (["Evaluate", "--execution", "abc123"], "step Evaluate did not succeed in execution abc123 (Failed)"),
        (["Train", "--execution", "zzz999"], "no local execution zzz999 in"),
    ],
)
def test_step_load_refuses_an_unknown_step_or_execution_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], state: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    code, _, err = cli(
        capsys, "step", "load", *arguments, "--local", "--state-dir", str(state), "--to", str(tmp_path / "d")
    )
    assert code == 2
    assert message in one_error_line(err)
    assert not (tmp_path / "d").exists()


def test_step_load_never_writes_into_a_folder_that_holds_something(
    capsys: pytest.CaptureFixture[str], state: Path, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    code, _, err = cli(
        capsys,
        "step",
        "load",
        "Train",
        "--execution",
        "latest",
        "--local",
        "--state-dir",
        str(state),
        "--to",
        str(tmp_path / "d"),
    )
    assert code == 2 and "exists and is not an empty folder" in one_error_line(err)
    assert [path.name for path in (tmp_path / "d").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("notebooks/candidates.py", "name the experiment as FILE.py:FUNCTION"),
        ("missing.py:candidate", "missing.py: no such file"),
    ],
)
def test_experiment_run_refuses_a_bad_reference_and_changes_no_state(
    capsys: pytest.CaptureFixture[str], state: Path, reference: str, message: str
) -> None:
    code, _, err = cli(capsys, "experiment", "run", reference, "--on", "latest", "--local", "--state-dir", str(state))
    assert code == 2 and message in one_error_line(err)
    assert not (state / "experiments").exists()


def test_both_commands_ask_where_the_execution_is(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "step", "load", "Train", "--execution", "latest", "--to", str(tmp_path / "d"))
    assert code == 2 and "--local (this machine's state dir) or --env E" in one_error_line(err)


def test_the_driver_refuses_what_is_not_a_candidate_in_one_line() -> None:
    driver = load_module("step_experiment", STEPS_DIR / "experiment.py")
    test = __import__("pandas").DataFrame({"tenure_months": [1, 2], "churned": [0, 1]})

    class NeedsAnotherColumn:
        feature_names_in_ = ("tenure_months", "charge_per_month")

        def predict_proba(self, frame: Any) -> Any:
            raise AssertionError("never called: the columns are checked first")

    with pytest.raises(driver.StepError, match=r"needs columns the test slice lacks: \['charge_per_month'\]"):
        driver.candidate_scores(NeedsAnotherColumn(), test, "churned")
    with pytest.raises(driver.StepError, match="returned str: return a fitted estimator with predict_proba"):
        driver.candidate_scores("scores", test, "churned")
    with pytest.raises(driver.StepError, match=r"one score per test row \(2\)"):
        driver.candidate_scores([0.1, 0.2, 0.3], test, "churned")
    assert list(driver.candidate_scores([0.1, 0.9], test, "churned")) == [0.1, 0.9]


def test_a_job_is_loaded_with_its_own_arguments_every_path_inside_the_folder() -> None:
    training = {
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": '"s3://a/c.gz"',
            "seed": "7",
        },
        "InputDataConfig": [{"ChannelName": "train"}, {"ChannelName": "contract"}],
    }
    assert job_arguments("Training", training) == (
        "code/train.py",
        ["--seed", "7"],
        {
            "SM_CHANNEL_TRAIN": "input/data/train",
            "SM_CHANNEL_CONTRACT": "input/data/contract",
            "SM_MODEL_DIR": "output/model",
            "SM_OUTPUT_DATA_DIR": "output/data",
        },
    )
    processing = {
        "AppSpecification": {
            "ContainerEntrypoint": ["python3", f"{ROOT}/input/code/e1.py"],
            "ContainerArguments": ["--test-dir", f"{ROOT}/input/test", f"--output-dir={ROOT}/output/evaluation"],
        }
    }
    assert job_arguments("Processing", processing) == (
        "input/code/e1.py",
        ["--test-dir", "input/test", "--output-dir=output/evaluation"],
        {},
    )


def _gate(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    report = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}, "Path": "%s"}}

    def json_get(path: str) -> dict[str, Any]:
        return json.loads(json.dumps(report) % path)

    gate = {
        "Name": "CandidateNotWorse",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "LessThanOrEqualTo",
                    "LeftValue": json_get("regression_lower_bound"),
                    "RightValue": {"Get": "Parameters.MaxRegression"},
                },
            ],
            "IfSteps": [{"Name": "Register", "Type": "RegisterModel"}],
            "ElseSteps": [
                {
                    "Name": "Reject",
                    "Type": "Fail",
                    "Arguments": {
                        "ErrorMessage": {"Std:Join": {"On": " ", "Values": ["Not registered:", json_get("summary")]}}
                    },
                },
            ],
        },
    }
    return {"Parameters": [{"Name": "MaxRegression", "Type": "Float", "DefaultValue": 0.01}], "Steps": [gate]}


def test_the_verdict_is_the_definitions_own_gate_on_the_candidates_report() -> None:
    definition = _gate([])
    passed, verdict = gate_verdict(definition, {}, {"regression_lower_bound": 0.005, "summary": "s"})
    assert passed and verdict.startswith("gate CandidateNotWorse: PASS") and "make review" in verdict
    failed, verdict = gate_verdict(
        definition, {"MaxRegression": 0.001}, {"regression_lower_bound": 0.005, "summary": "worse"}
    )
    assert not failed and verdict == "gate CandidateNotWorse: FAIL: Not registered: worse"


# AWS: the job's description, then its S3 inputs -----------------------------------------------------------------
EVALUATE_JOB = {
    "ProcessingJobName": "pipelines-abc123-Evaluate",
    "ProcessingJobArn": f"{JOBS}/pipelines-abc123-evaluate",
    "ProcessingJobStatus": "Completed",
    "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
    "RoleArn": "arn:aws:iam::111111111111:role/churn-dev-execution",
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
    },
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "Environment": {"PYTHONHASHSEED": "0"},
    "AppSpecification": {
        "ImageUri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
        "ContainerEntrypoint": ["python3", f"{ROOT}/input/code/e1.py"],
        "ContainerArguments": [
            "--test-dir",
            f"{ROOT}/input/test",
            "--model-dir",
            f"{ROOT}/input/model",
            "--confidence-level",
            "0.95",
            "--output-dir",
            f"{ROOT}/output/evaluation",
        ],
    },
    "ProcessingInputs": [
        {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": f"{ROOT}/input/{name}",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }
        for name, uri in (
            ("code", "s3://cdk-assets/e1.py"),
            ("steplib", "s3://cdk-assets/lib.zip"),
            ("test", "s3://artifacts/run/Preprocess/test"),
            ("model", "s3://artifacts/run/Train/model.tar.gz"),
        )
    ],
    "ProcessingOutputConfig": {
        "Outputs": [
            {
                "OutputName": "evaluation",
                "S3Output": {
                    "S3Uri": "s3://artifacts/run/Evaluate/evaluation",
                    "LocalPath": f"{ROOT}/output/evaluation",
                    "S3UploadMode": "EndOfJob",
                },
            }
        ],
        "KmsKeyId": "arn:aws:kms:eu-west-1:111111111111:key/k",
    },
}


def _steps(aws: Any, *jobs: tuple[str, str]) -> None:
    steps = [
        {"StepName": name, "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": f"{JOBS}/{job}"}}}
        for name, job in jobs
    ]
    aws.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, {"PipelineExecutionArn": ARN})


def _objects(s3: Any, uri: str, files: dict[str, bytes]) -> None:
    bucket, prefix = uri.removeprefix("s3://").split("/", 1)
    contents = [{"Key": key, "Size": len(body)} for key, body in files.items()]
    s3.add_response("list_objects_v2", {"Contents": contents}, {"Bucket": bucket, "Prefix": prefix})


def test_step_load_from_aws_copies_each_input_where_the_job_had_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, aws_env: None, tmp_path: Path
) -> None:
    script, library = (STEPS_DIR / "evaluate.py").read_bytes(), library_zip_bytes()
    inputs = {
        "s3://cdk-assets/e1.py": {"e1.py": script},
        "s3://cdk-assets/lib.zip": {"lib.zip": library},
        "s3://artifacts/run/Preprocess/test": {"run/Preprocess/test/test.csv": b"a,churned\n1,0\n"},
        "s3://artifacts/run/Train/model.tar.gz": {"run/Train/model.tar.gz": b"model"},
    }
    with stubbed_clients(monkeypatch, step_load_aws, "sagemaker", "s3") as aws:
        _steps(aws["sagemaker"], ("Evaluate", "pipelines-abc123-Evaluate"))
        aws["sagemaker"].add_response(
            "describe_processing_job", EVALUATE_JOB, {"ProcessingJobName": "pipelines-abc123-Evaluate"}
        )
        for uri, files in inputs.items():
            _objects(aws["s3"], uri, files)
        for uri, files in inputs.items():
            for key, body in files.items():
                request = {"Bucket": uri.removeprefix("s3://").split("/")[0], "Key": key}
                aws["s3"].add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))}, request)
        code, _, err = cli(
            capsys, "step", "load", "Evaluate", "--execution", ARN, "--env", "dev", "--to", str(tmp_path / "d")
        )
    assert code == 0, err
    folder = tmp_path / "d"
    assert (folder / "input" / "code" / "e1.py").read_bytes() == script
    assert (folder / "input" / "test" / "test.csv").read_text() == "a,churned\n1,0\n"
    assert (folder / "input" / "model" / "model.tar.gz").read_bytes() == b"model"
    assert "downloading 4 object(s)" in err
    # The script's own parse_args read the job's arguments: run() is called with them, paths inside the folder.
    written = (folder / "step.py").read_text()
    assert "test_dir=Path('input/test')" in written and "confidence_level=0.95" in written
    assert "output_dir=Path('output/evaluation')" in written
    assert json.loads((folder / "step.ipynb").read_text())["nbformat"] == 4


def _expect_submission(aws: dict[str, Any]) -> None:
    """The calls that start the experiment's job: the execution's Evaluate and Preprocess jobs, the code, the job."""
    preprocess = {
        **EVALUATE_JOB,
        "ProcessingJobName": "pipelines-abc123-Preprocess",
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": name,
                    "S3Output": {
                        "S3Uri": f"s3://artifacts/run/Preprocess/{name}",
                        "LocalPath": f"{ROOT}/output/{name}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
                for name in ("train", "validation", "test")
            ]
        },
    }
    sagemaker = aws["sagemaker"]
    _steps(sagemaker, ("Evaluate", "pipelines-abc123-Evaluate"), ("Preprocess", "pipelines-abc123-Preprocess"))
    sagemaker.add_response("describe_processing_job", EVALUATE_JOB, {"ProcessingJobName": "pipelines-abc123-Evaluate"})
    sagemaker.add_response("describe_processing_job", preprocess, {"ProcessingJobName": "pipelines-abc123-Preprocess"})
    for key in ("experiment.py", "train.py", "candidates.py", "loaded.json"):
        aws["s3"].add_response(
            "put_object",
            {},
            {
                "Bucket": "artifacts",
                "Key": f"experiments/try-1/code/{key}",
                "Body": ANY,
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": "arn:aws:kms:eu-west-1:111111111111:key/k",
            },
        )
    sagemaker.add_response("create_processing_job", {"ProcessingJobArn": f"{JOBS}/experiment-try-1"}, _expected_job())


def _run_on_aws(capsys: pytest.CaptureFixture[str], tmp_path: Path, *options: str) -> tuple[int, str, str]:
    candidate = tmp_path / "candidates.py"
    candidate.write_text("def forest(slices):\n    return None\n")
    return cli(
        capsys,
        *("experiment", "run", f"{candidate}:forest", "--on", ARN, "--env", "dev", "--experiment-id", "try-1"),
        *("--instance-type", "ml.m5.large", "--state-dir", str(tmp_path / "state"), *options),
    )


def test_experiment_on_aws_is_one_processing_job_tagged_with_the_experiment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, aws_env: None, tmp_path: Path
) -> None:
    with stubbed_clients(monkeypatch, experiment_aws, "sagemaker", "s3") as aws:
        _expect_submission(aws)
        code, out, err = _run_on_aws(capsys, tmp_path, "--no-wait")
    assert code == 0, err
    assert "started experiment-try-1 for experiment try-1" in out
    assert not (tmp_path / "state").exists()  # --no-wait: nothing is judged, nothing written here


# What Evaluate wrote for a candidate that regresses a little (a demo run's evaluation.json, trimmed).
EVALUATION = {
    "candidate_score": 0.811455612660432,
    "candidate_score_upper_bound": 0.8553637092661855,
    "comparison": {"lower_bound": -0.005681257501358254, "upper_bound": 0.02194210508750702, "rows": 392},
    "delta": -0.008130423793074382,
    "has_incumbent": True,
    "has_labels": True,
    "incumbent_score": 0.8195860364535064,
    "metric": "roc_auc",
    "regression": 0.008130423793074382,
    "regression_lower_bound": -0.005681257501358254,
    "scored_rows": 392,
    "summary": "candidate roc_auc 0.8115 vs approved model roc_auc 0.8196 on the same 392 test rows: "
    "regression 0.00813, 95% CI [-0.005681, 0.02194].",
}


# ListPipelineParametersForExecution names every parameter the execution ran with, as text.
RAN_WITH = {"ExperimentId": "exp-1", "InputDataUri": "s3://landing/datasets/d1/"}


def _expect_job_end(aws: dict[str, Any], *statuses: str, reason: str | None = None) -> None:
    for status in statuses:
        answer = {**PROCESSING_JOB_BASE, "ProcessingJobStatus": status, **({"FailureReason": reason} if reason else {})}
        aws["sagemaker"].add_response("describe_processing_job", answer, {"ProcessingJobName": "experiment-try-1"})


PROCESSING_JOB_BASE = {
    "ProcessingJobName": "experiment-try-1",
    "ProcessingJobArn": f"{JOBS}/experiment-try-1",
    "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
    "AppSpecification": {"ImageUri": EVALUATE_JOB["AppSpecification"]["ImageUri"]},
    "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
}


@pytest.mark.parametrize(
    ("parameters", "passes"), [({}, True), ({"MinimumScore": "0.9"}, False)], ids=["default gate", "a stricter run"]
)
def test_experiment_on_aws_waits_for_its_job_and_prints_the_local_paths_verdict(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    tmp_path: Path,
    assembly_dir: Path,
    dev_config: Any,
    parameters: dict[str, str],
    passes: bool,
) -> None:
    monkeypatch.setattr(experiment_aws, "POLL_SECONDS", 0)
    logged: list[tuple[Path, str, dict[str, Any]]] = []
    monkeypatch.setattr(tracking, "log_experiment", lambda *call: logged.append(call))  # its store: test_run_tracking
    body = json.dumps(EVALUATION).encode()
    with stubbed_clients(monkeypatch, experiment_aws, "sagemaker", "s3") as aws:
        _expect_submission(aws)
        _expect_job_end(aws, "InProgress", "Completed")
        listed = [{"Name": name, "Value": value} for name, value in {**RAN_WITH, **parameters}.items()]
        aws["sagemaker"].add_response(
            "list_pipeline_parameters_for_execution", {"PipelineParameters": listed}, {"PipelineExecutionArn": ARN}
        )
        _objects(
            aws["s3"], "s3://artifacts/experiments/try-1/output/", {"experiments/try-1/output/evaluation.json": body}
        )
        expect_object(aws["s3"], "s3://artifacts/experiments/try-1/output/evaluation.json", body)
        code, out, err = _run_on_aws(capsys, tmp_path, "--assembly", str(assembly_dir))
    assert code == 0, err
    assert "processing job experiment-try-1: InProgress" in err and "experiment-try-1: Completed" in err
    # What the local path prints for the same report: its summary, then the definition's own gate on it.
    definition = read_assembly(assembly_dir, dev_config).definitions[PIPELINE]
    passed, verdict = gate_verdict(definition, {**RAN_WITH, **parameters}, EVALUATION)
    assert passed is passes  # the execution's own parameters decide, as in the pipeline
    assert out.splitlines()[:2] == [EVALUATION["summary"], verdict]
    folder = tmp_path / "state" / "experiments" / "try-1"
    assert json.loads((folder / "evaluation" / "evaluation.json").read_text()) == EVALUATION
    written = json.loads((folder / "experiment.json").read_text())
    assert (written["passed"], written["verdict"], written["execution"]) == (passed, verdict, "abc123")
    assert (folder / "report.html").is_file()
    # Recorded in the state dir's MLflow store as a local experiment is, in its execution's ExperimentId.
    ((state_dir, name, judged),) = logged
    assert state_dir == tmp_path / "state" and name == RAN_WITH["ExperimentId"]
    assert (judged["experiment"], judged["passed"], judged["evaluation"]) == ("try-1", passed, EVALUATION)


def test_a_failed_experiment_job_is_one_line_with_its_reason(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    tmp_path: Path,
    assembly_dir: Path,
) -> None:
    monkeypatch.setattr(experiment_aws, "POLL_SECONDS", 0)
    with stubbed_clients(monkeypatch, experiment_aws, "sagemaker", "s3") as aws:
        _expect_submission(aws)
        _expect_job_end(aws, "InProgress", "Failed", reason="AlgorithmError: forest() returned None")
        code, out, err = _run_on_aws(capsys, tmp_path, "--assembly", str(assembly_dir))
    assert code == 1 and not out
    # Progress lines, then one error line naming the job and its reason (no traceback).
    assert one_error_line(err.rsplit("\n", 2)[-2]) == (
        "error: processing job experiment-try-1 Failed: AlgorithmError: forest() returned None"
    )
    assert err.count("error") == 1 and "Traceback" not in err
    assert not (tmp_path / "state" / "experiments").exists()


def _expected_job() -> dict[str, Any]:
    from config import load_config

    code = f"{ROOT}/input/experiment"
    source = {"S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}
    kept = [item for item in EVALUATE_JOB["ProcessingInputs"] if item["InputName"] != "model"]
    return {
        "ProcessingJobName": "experiment-try-1",
        "ProcessingInputs": [
            *kept,
            {
                "InputName": "experiment",
                "S3Input": {"S3Uri": "s3://artifacts/experiments/try-1/code/", "LocalPath": code, **source},
            },
            *(
                {
                    "InputName": name,
                    "S3Input": {
                        "S3Uri": f"s3://artifacts/run/Preprocess/{name}",
                        "LocalPath": f"{ROOT}/input/{name}",
                        **source,
                    },
                }
                for name in ("train", "validation")
            ),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "experiment",
                    "S3Output": {
                        "S3Uri": "s3://artifacts/experiments/try-1/output",
                        "LocalPath": f"{ROOT}/output/experiment",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": "arn:aws:kms:eu-west-1:111111111111:key/k",
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "AppSpecification": {
            "ImageUri": EVALUATE_JOB["AppSpecification"]["ImageUri"],
            "ContainerEntrypoint": ["python3", f"{code}/experiment.py"],
            "ContainerArguments": [
                f"--evaluate-folder={ROOT}",
                f"--loaded={code}/loaded.json",
                f"--function={code}/candidates.py:forest",
                f"--train={ROOT}/input/train",
                f"--validation={ROOT}/input/validation",
                f"--train-script={code}/train.py",
                f"--output-dir={ROOT}/output/experiment",
            ],
        },
        "Environment": {"PYTHONHASHSEED": "0"},
        "RoleArn": "arn:aws:iam::111111111111:role/churn-dev-execution",
        "Tags": [
            *({"Key": k, "Value": v} for k, v in sorted(load_config("dev").tags.items())),
            {"Key": "experiment-id", "Value": "try-1"},
        ],
    }
