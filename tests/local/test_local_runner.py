"""The local runner on small hand-written definitions (`builders.py`): step types, handlers, job names, failures.

The step code is a tiny script kept in the local artifacts bucket (any s3:// code URI resolves through the local
buckets, not only CDK assets), so each run takes a fraction of a second.
"""

from __future__ import annotations

import copy
import json
import tarfile
from pathlib import Path

import pytest

from pipeline_defs.contract import PIPELINE_JOB_PREFIX
from pipeline_defs.local import DefinitionError, LocalRunner
from pipeline_defs.local.jobs import job_name
from pipeline_defs.local.runner import HANDLERS
from tests.local.builders import (
    EXPIRE,
    TRAINING_CODE_URI,
    fail,
    gate,
    output_uri,
    pipeline,
    processing,
    read_report,
    score_of,
)


# Step types and expressions --------------------------------------------------------------------------------------
@pytest.mark.heavy(seconds=1)  # a run of the step runtime
def test_processing_steps_get_inputs_paths_and_environment_of_the_container(run, state_dir) -> None:
    first = processing(
        "First", "--input-dir", "/opt/ml/processing/input/data", inputs={"data": "s3://local-landing/data/v1"}
    )
    second = processing(
        "Second",
        "--input-dir",
        "/opt/ml/processing/input/previous",
        inputs={"previous": {"Get": "Steps.First.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}},
        environment={"MODE": "local"},
    )
    result = run(pipeline(second, first))  # listed out of order: data references decide the order

    assert result.status == "Succeeded", result.failure_reason
    assert [step.name for step in result.steps] == ["First", "Second"]
    assert read_report(state_dir, result, "First")["inputs"] == ["part-0.csv"]
    second_report = read_report(state_dir, result, "Second")
    assert second_report["inputs"] == ["data.csv", "report.json"]
    assert second_report["mode"] == "local"
    assert second_report["registry"] == ["local", str(state_dir.resolve() / "registry")]
    assert result.step("First").outputs["out"] == f"s3://local-artifacts/runs/{result.execution_id}/First/out"


def test_conditions_pick_a_branch_and_fail_steps_end_the_run_with_their_message(run) -> None:
    steps = [
        processing("Score", "--score", "0.4"),
        gate(
            score_of("Score"),
            {"Get": "Parameters.Threshold"},
            [processing("Publish")],
            [fail(["score", score_of("Score"), "below", {"Get": "Parameters.Threshold"}])],
        ),
    ]
    definition = pipeline(*steps, parameters=[{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}])

    low = run(definition)
    high = run(definition, {"Threshold": "0.25"})

    assert low.status == "Failed"
    assert low.failure_reason == "step Stop: score 0.4 below 0.5"
    assert [step.name for step in low.steps] == ["Score", "Gate", "Stop"]
    assert high.status == "Succeeded"
    assert [step.name for step in high.steps] == ["Score", "Gate", "Publish"]
    assert high.step("Gate").message == "true: runs IfSteps (Publish)"


@pytest.mark.heavy(seconds=1)  # a run of the step runtime
def test_training_steps_run_script_mode_and_expose_their_model(run, state_dir) -> None:
    fit = {
        "Name": "Fit",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {
                "TrainingImage": "sklearn",
                "MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
            },
            "HyperParameters": {
                "sagemaker_program": "fit.py",
                "sagemaker_submit_directory": TRAINING_CODE_URI,
                "alpha": "0.5",
            },
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://local-landing/data/v1/"}},
                }
            ],
            "OutputDataConfig": {"S3OutputPath": output_uri("Fit", "model")},
        },
        "CacheConfig": {"Enabled": True, "ExpireAfter": EXPIRE},
    }
    use = processing(
        "Use",
        "--input-dir",
        "/opt/ml/processing/input/model",
        inputs={"model": {"Get": "Steps.Fit.ModelArtifacts.S3ModelArtifacts"}},
        environment={"MODE": {"Get": "Steps.Fit.FinalMetricDataList['loss'].Value"}},
    )
    result = run(pipeline(fit, use))

    assert result.status == "Succeeded", result.failure_reason
    job = f"pipelines-{result.execution_id}-Fit"
    model = result.step("Fit").outputs["model"]
    assert model == f"s3://local-artifacts/runs/{result.execution_id}/Fit/model/{job}/output/model.tar.gz"
    with tarfile.open(state_dir / "s3" / model[len("s3://") :]) as tar:
        record = json.load(tar.extractfile("model.json"))
    assert record == {"args": ["--alpha", "0.5"], "channels": ["train"], "train": ["part-0.csv"], "hp": "0.5"}
    use_report = read_report(state_dir, result, "Use")
    assert use_report["inputs"] == ["model.tar.gz"]
    assert use_report["mode"] == "0.25"  # the last `loss=` the job logged, read by its MetricDefinitions


RETRY = {"ExceptionType": ["SageMaker.CAPACITY_ERROR"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 3}


def test_a_failing_script_fails_its_step_with_its_error_line_and_stops_the_run(run) -> None:
    # A retry policy covers transient service errors only: the failing script runs once.
    broken = processing("Broken", "--fail", "true", RetryPolicies=[RETRY])
    result = run(pipeline(broken, processing("After", DependsOn=["Broken"])))

    assert result.status == "Failed"
    assert [step.name for step in result.steps] == ["Broken"]
    assert result.failure_reason.startswith("step Broken: exited with code 3: error: asked to fail (log: ")
    log = Path(result.step("Broken").work_dir) / "log.txt"
    assert log.read_text() == "some progress\nerror: asked to fail\n"


# Malformed definitions: one clear message each, before any step runs ---------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["Steps"].append({"Name": "Tune", "Type": "Tuning", "Arguments": {}}),
            "step 'Tune' has type 'Tuning', which the local runner cannot run "
            "(it runs Processing, Training, Model, Transform, Condition, Fail, RegisterModel)",
        ),
        (
            lambda d: d["Steps"][1]["Arguments"]["Conditions"][0].update(LeftValue=score_of("Missing")),
            "step 'Gate': Steps.Missing.PropertyFiles.Report names no step 'Missing' in the pipeline "
            "(steps: Score, Gate, Stop)",
        ),
        (
            lambda d: d["Steps"][1]["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"].update(
                PropertyFile={"Get": "Steps.Score.PropertyFiles.Metrics"}
            ),
            "step 'Gate': Steps.Score.PropertyFiles.Metrics: step 'Score' declares no property file 'Metrics' "
            "(it declares: ['Report'])",
        ),
        (
            lambda d: d["Steps"][0].update(DependsOn=["Prepare"]),
            "step 'Score': DependsOn names no step 'Prepare' in the pipeline",
        ),
        (
            lambda d: d["Steps"][0]["Arguments"]["Environment"].update(X={"Get": "Parameters.Nope"}),
            "step 'Score': Parameters.Nope names no declared parameter (declared: ExperimentId, Threshold)",
        ),
        (
            lambda d: d["Steps"][0]["Arguments"]["Environment"].update(X={"Std:Format": {}}),
            "pipeline function 'Std:Format' is not supported (supported: Std:Join, Std:JsonGet)",
        ),
        (
            lambda d: d["Steps"][0].update(CacheConfig={"Enabled": True, "ExpireAfter": "thirty days"}),
            "ExpireAfter 'thirty days' is not an ISO 8601 duration such as P30D or PT12H",
        ),
        (
            lambda d: d["Steps"][0].update(DependsOn=["Gate"]),
            "the steps Score, Gate, Stop cannot run: their references and DependsOn form a cycle",
        ),
        (
            lambda d: d["Steps"][0].update(RetryPolicies=[{**RETRY, "ExceptionType": ["Step.SCRIPT_ERROR"]}]),
            "step 'Score': RetryPolicies ExceptionType ['Step.SCRIPT_ERROR']: use some of Step.SERVICE_FAULT, "
            "Step.THROTTLING, SageMaker.JOB_INTERNAL_ERROR, SageMaker.CAPACITY_ERROR, SageMaker.RESOURCE_LIMIT",
        ),
        (
            lambda d: d["Steps"][0].update(RetryPolicies=[{**RETRY, "MaxAttempts": 50}]),
            "step 'Score': RetryPolicies MaxAttempts 50 is not in 1..20",
        ),
        (
            lambda d: d["Steps"][0].update(RetryPolicies=[{**RETRY, "ExpireAfterMin": 10}]),
            "step 'Score': a retry policy needs exactly one of MaxAttempts and ExpireAfterMin: "
            + str({**RETRY, "ExpireAfterMin": 10}),
        ),
    ],
    ids=[
        "unknown-step-type",
        "missing-step",
        "undeclared-property-file",
        "missing-dependency",
        "missing-parameter",
        "unsupported-function",
        "bad-expire-after",
        "cycle",
        "retry-exception-type",
        "retry-attempts",
        "retry-both-limits",
    ],
)
def test_malformed_definitions_fail_with_one_clear_message(state_dir, change, message) -> None:
    definition = pipeline(
        processing("Score"),
        gate(score_of("Score"), {"Get": "Parameters.Threshold"}, [], [fail(["low"])]),
        parameters=[{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}],
    )
    change(definition)
    with pytest.raises(DefinitionError) as error:
        LocalRunner(definition, pipeline_name="p", state_dir=state_dir, region="eu-west-1").run()
    assert str(error.value) == message
    assert not (state_dir / "executions").exists()  # nothing ran


def test_a_bad_json_get_path_fails_the_step_that_reads_it(run) -> None:
    result = run(pipeline(processing("Score"), gate(score_of("Score", "metrics.auc"), 0.5, [], [])))

    assert result.status == "Failed"
    assert result.failure_reason == (
        "step Gate: Std:JsonGet on property file Report of step Score "
        f"(s3://local-artifacts/runs/{result.execution_id}/Score/out/report.json): "
        "path 'metrics.auc' has no 'metrics' (there: score, inputs, mode, registry)"
    )


def test_a_property_file_the_step_did_not_write_fails_the_step_that_reads_it(run, state_dir) -> None:
    result = run(pipeline(processing("Score", "--write-report", "false"), gate(score_of("Score"), 0.5, [], [])))

    uri = f"s3://local-artifacts/runs/{result.execution_id}/Score/out/report.json"
    assert result.status == "Failed"
    assert result.failure_reason == (
        f"step Gate: property file Report of step Score was not written: {uri} does not exist "
        f"(locally: {state_dir.resolve()}/s3/{uri[len('s3://') :]})"
    )


def test_the_real_training_definition_with_an_unknown_step_type_stops_before_running(
    assembly, dev_config, tmp_path
) -> None:
    definition = copy.deepcopy(assembly.definitions[dev_config.training_pipeline_name])
    definition["Steps"].insert(2, {"Name": "Tune", "Type": "Tuning", "Arguments": {}})
    with pytest.raises(DefinitionError) as error:
        LocalRunner(definition, pipeline_name="p", state_dir=tmp_path, region=dev_config.region)
    assert str(error.value).startswith("step 'Tune' has type 'Tuning', which the local runner cannot run")


# Handlers and job names ------------------------------------------------------------------------------------------
def test_each_runnable_step_type_has_an_explicit_handler() -> None:
    assert list(HANDLERS) == ["Processing", "Training", "Model", "Transform", "Condition", "Fail", "RegisterModel"]
    assert all(callable(handler) for handler in HANDLERS.values())


def test_an_unknown_type_in_a_branch_is_one_message_that_lists_the_handled_types(state_dir) -> None:
    definition = pipeline(
        processing("Score"), gate(score_of("Score"), 0.5, [{"Name": "Deploy", "Type": "Lambda", "Arguments": {}}], [])
    )
    with pytest.raises(DefinitionError) as error:
        LocalRunner(definition, pipeline_name="p", state_dir=state_dir, region="eu-west-1")
    assert str(error.value) == (
        f"step 'Deploy' has type 'Lambda', which the local runner cannot run (it runs {', '.join(HANDLERS)})"
    )
    assert not (state_dir / "executions").exists()


def test_a_step_whose_type_lost_its_handler_fails_with_one_message(state_dir) -> None:
    runner = LocalRunner(pipeline(processing("Score")), pipeline_name="p", state_dir=state_dir, region="eu-west-1")
    runner.handlers = {}  # planned against the full map; the run finds no handler

    result = runner.run()

    assert result.status == "Failed"
    assert result.failure_reason == "step Score: no handler for step type 'Processing'"


def test_jobs_are_named_with_the_contract_prefix_like_sagemaker_names_them(run, state_dir) -> None:
    step = processing("Score it!", environment={"MODE": {"Get": "Execution.ProcessingJobName"}})
    result = run(pipeline(step))

    assert result.status == "Succeeded", result.failure_reason
    job = read_report(state_dir, result, "Score it!")["mode"]
    assert job.startswith(PIPELINE_JOB_PREFIX)
    assert job == f"{PIPELINE_JOB_PREFIX}{result.execution_id}-Score-it"
    long = job_name("abc", "x" * 80)
    assert long.startswith(f"{PIPELINE_JOB_PREFIX}abc-xxx") and len(long) == 63  # SageMaker's limit
