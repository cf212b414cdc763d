"""The local runner on small hand-written definitions: expressions, step types, caching, and each malformed input.

The step code is a tiny script kept in the local artifacts bucket (any s3:// code URI resolves through the local
buckets, not only CDK assets), so each run takes a fraction of a second.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline_defs.expressions import DefinitionError, ExpressionError, condition_holds, evaluate, resolve_parameters
from pipeline_defs.local_runner import LocalRunner, RunResult, local_values, parse_duration

CODE_URI = "s3://local-artifacts/code/report.py"
TRAINING_CODE_URI = "s3://local-artifacts/code/fit.tar.gz"
REPORT_SCRIPT = """
import json, os, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if args.get("--fail") == "true":
    print("some progress", flush=True)
    print("error: asked to fail", file=sys.stderr)
    sys.exit(3)
inputs = sorted(str(p.relative_to(args["--input-dir"])) for p in Path(args["--input-dir"]).rglob("*") if p.is_file()) \
    if "--input-dir" in args else []
out = Path(args["--output-dir"])
report = {"score": float(args.get("--score", "0.5")), "inputs": inputs, "mode": os.environ.get("MODE"),
          "registry": [os.environ.get("REGISTRY_BACKEND"), os.environ.get("LOCAL_REGISTRY_DIR")]}
if args.get("--write-report", "true") == "true":
    (out / "report.json").write_text(json.dumps(report))
(out / "data.csv").write_text("a,b\\n1,2\\n")
"""
FIT_SCRIPT = """
import json, os, sys
model_dir = os.environ["SM_MODEL_DIR"]
record = {"args": sys.argv[1:], "channels": json.loads(os.environ["SM_CHANNELS"]),
          "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])), "hp": os.environ["SM_HP_ALPHA"]}
open(os.path.join(model_dir, "model.json"), "w").write(json.dumps(record))
print("loss=0.50")
print("loss=0.25")
"""
EXPIRE = "PT1H"


def output_uri(step: str, output: str) -> dict:
    values = ["s3://local-artifacts/runs", {"Get": "Execution.PipelineExecutionId"}, step, output]
    return {"Std:Join": {"On": "/", "Values": values}}


def processing(
    name: str,
    *arguments,
    inputs: dict | None = None,
    outputs=("out",),
    report: bool = True,
    cache: bool = True,
    environment: dict | None = None,
    instance_type: str = "ml.m5.large",
    **extra,
) -> dict:
    step_inputs = [
        {"InputName": input_name, "S3Input": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/input/{input_name}"}}
        for input_name, uri in {**(inputs or {}), "code": CODE_URI}.items()
    ]
    step = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": instance_type, "InstanceCount": 1}},
            "AppSpecification": {
                "ImageUri": "sklearn",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/report.py"],
                "ContainerArguments": ["--output-dir", f"/opt/ml/processing/output/{outputs[0]}", *arguments],
            },
            "ProcessingInputs": step_inputs,
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": output,
                        "S3Output": {
                            "S3Uri": output_uri(name, output),
                            "LocalPath": f"/opt/ml/processing/output/{output}",
                        },
                    }
                    for output in outputs
                ]
            },
            "Environment": environment or {},
            "Tags": [{"Key": "experiment-id", "Value": {"Get": "Parameters.ExperimentId"}}],
        },
        **extra,
    }
    if report:
        step["PropertyFiles"] = [{"PropertyFileName": "Report", "OutputName": outputs[0], "FilePath": "report.json"}]
    if cache:
        step["CacheConfig"] = {"Enabled": True, "ExpireAfter": EXPIRE}
    return step


def score_of(step: str, path: str = "score") -> dict:
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.Report"}, "Path": path}}


def pipeline(*steps: dict, parameters: list | None = None) -> dict:
    declared = [{"Name": "ExperimentId", "Type": "String", "DefaultValue": "exp"}]
    return {"Version": "2020-12-01", "Parameters": declared + (parameters or []), "Steps": list(steps)}


def gate(left: dict, threshold, if_steps: list, else_steps: list) -> dict:
    conditions = [{"Type": "GreaterThanOrEqualTo", "LeftValue": left, "RightValue": threshold}]
    return {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {"Conditions": conditions, "IfSteps": if_steps, "ElseSteps": else_steps},
    }


def fail(message_values: list) -> dict:
    return {
        "Name": "Stop",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": message_values}}},
    }


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    code = tmp_path / "state" / "s3" / "local-artifacts" / "code"
    code.mkdir(parents=True)
    (code / "report.py").write_text(REPORT_SCRIPT)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = FIT_SCRIPT.encode()
        info = tarfile.TarInfo("fit.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (code / "fit.tar.gz").write_bytes(buffer.getvalue())
    data = tmp_path / "state" / "s3" / "local-landing" / "data" / "v1"
    data.mkdir(parents=True)
    (data / "part-0.csv").write_text("a\n1\n")
    return tmp_path / "state"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def run(state_dir: Path, clock: Clock):
    def run_definition(definition: dict, parameters: dict | None = None, name: str = "demo-pipeline") -> RunResult:
        runner = LocalRunner(definition, pipeline_name=name, state_dir=state_dir, region="eu-west-1", clock=clock)
        return runner.run(parameters or {})

    return run_definition


def read_report(state_dir: Path, result: RunResult, step: str) -> dict:
    uri = result.step(step).outputs["out"]
    return json.loads((state_dir / "s3" / uri[len("s3://") :] / "report.json").read_text())


# Step types and expressions --------------------------------------------------------------------------------------
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


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Type": "Equals", "LeftValue": 1, "RightValue": 1.0}, True),
        ({"Type": "Equals", "LeftValue": False, "RightValue": 0}, False),
        ({"Type": "GreaterThan", "LeftValue": 2, "RightValue": 2}, False),
        ({"Type": "GreaterThanOrEqualTo", "LeftValue": 2, "RightValue": 2}, True),
        ({"Type": "LessThan", "LeftValue": "a", "RightValue": "b"}, True),
        ({"Type": "LessThanOrEqualTo", "LeftValue": 3, "RightValue": 2.5}, False),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.Stage"}, "Values": ["dev", "prod"]}, True),
        ({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, True),
        (
            {
                "Type": "Or",
                "Conditions": [
                    {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                    {"Type": "In", "QueryValue": 1, "Values": [1]},
                ],
            },
            True,
        ),
    ],
)
def test_condition_types(condition: dict, expected: bool) -> None:
    class Parameters:
        def get(self, reference: str):
            return {"Parameters.Stage": "dev"}[reference]

    assert condition_holds(condition, Parameters()) is expected


def test_join_writes_text_as_it_is_and_other_values_as_json() -> None:
    class Values:
        def get(self, reference: str):
            return {"Parameters.Flag": True, "Parameters.Rate": 0.5, "Parameters.Count": 3}[reference]

    joined = evaluate(
        {
            "Std:Join": {
                "On": "-",
                "Values": ["x", {"Get": "Parameters.Flag"}, {"Get": "Parameters.Rate"}, {"Get": "Parameters.Count"}],
            }
        },
        Values(),
    )
    assert joined == "x-true-0.5-3"


def test_comparing_values_of_different_kinds_is_an_error() -> None:
    with pytest.raises(ExpressionError) as error:
        condition_holds({"Type": "GreaterThan", "LeftValue": "high", "RightValue": 0.5}, None)
    assert str(error.value) == "condition GreaterThan cannot compare 'high' with 0.5"


def test_parameters_are_typed_from_text_and_defaults() -> None:
    declared = [
        {"Name": "Name", "Type": "String", "DefaultValue": "a"},
        {"Name": "Count", "Type": "Integer", "DefaultValue": 1},
        {"Name": "Rate", "Type": "Float", "DefaultValue": 1},
        {"Name": "Flag", "Type": "Boolean", "DefaultValue": False},
    ]
    assert resolve_parameters(declared, {}) == {"Name": "a", "Count": 1, "Rate": 1.0, "Flag": False}
    overrides = {"Name": "b", "Count": "7", "Rate": "0.25", "Flag": "TRUE"}
    assert resolve_parameters(declared, overrides) == {"Name": "b", "Count": 7, "Rate": 0.25, "Flag": True}


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


def test_a_failing_script_fails_its_step_with_its_error_line_and_stops_the_run(run) -> None:
    result = run(pipeline(processing("Broken", "--fail", "true"), processing("After", DependsOn=["Broken"])))

    assert result.status == "Failed"
    assert [step.name for step in result.steps] == ["Broken"]
    assert result.failure_reason.startswith("step Broken: exited with code 3: error: asked to fail (log: ")
    log = Path(result.step("Broken").work_dir) / "log.txt"
    assert log.read_text() == "some progress\nerror: asked to fail\n"


# Caching ---------------------------------------------------------------------------------------------------------
def test_cache_ignores_tags_instance_types_and_output_paths_but_not_environment(run) -> None:
    base = processing("Step", "--score", "0.7")
    first = run(pipeline(base))
    cosmetic = copy.deepcopy(base)
    cosmetic["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.4xlarge"
    cosmetic["Arguments"]["Tags"].append({"Key": "owner", "Value": "someone"})
    cosmetic["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = (
        "s3://local-artifacts/elsewhere"
    )
    second = run(pipeline(cosmetic), {"ExperimentId": "another"})  # ExperimentId only reaches tags and paths here
    changed = copy.deepcopy(base)
    changed["Arguments"]["Environment"] = {"MODE": "new"}
    third = run(pipeline(changed))

    assert second.step("Step").cache_hit and second.step("Step").cache_source == first.execution_id
    assert second.step("Step").outputs == first.step("Step").outputs  # the earlier run's outputs are reused
    assert not third.step("Step").cache_hit


def test_cache_hits_feed_later_steps_the_earlier_outputs_and_property_files(run) -> None:
    definition = pipeline(
        processing("Score", "--score", "0.9"), gate(score_of("Score"), 0.5, [processing("Publish", cache=False)], [])
    )
    first = run(definition)
    second = run(definition)

    assert second.step("Score").cache_hit
    assert second.step("Gate").message == "true: runs IfSteps (Publish)"
    assert not second.step("Publish").cache_hit and first.step("Publish").cacheable is False


def test_cache_entries_expire_after_the_configured_duration(run, clock) -> None:
    definition = pipeline(processing("Step"))
    first = run(definition)
    clock.now += timedelta(minutes=59)
    assert run(definition).step("Step").cache_source == first.execution_id
    clock.now += timedelta(minutes=2)
    assert not run(definition).step("Step").cache_hit


def test_failed_steps_are_never_cache_hits(run) -> None:
    definition = pipeline(processing("Broken", "--fail", "true"))
    run(definition)
    assert not run(definition).step("Broken").cache_hit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", timedelta(days=30)),
        ("PT12H", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("T16m", timedelta(minutes=16)),
        ("30dT5h", timedelta(days=30, hours=5)),
        ("P1Y2M1W", timedelta(days=365 + 60 + 7)),
    ],
)
def test_expire_after_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


# Malformed definitions: one clear message each, before any step runs ---------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["Steps"].append({"Name": "BatchScore", "Type": "Transform", "Arguments": {}}),
            "step 'BatchScore' has type 'Transform', which the local runner cannot run "
            "(it runs Processing, Training, Condition, Fail, RegisterModel)",
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


@pytest.mark.parametrize(
    ("declared", "overrides", "message"),
    [
        (
            [{"Name": "Rate", "Type": "Float", "DefaultValue": 0.1}],
            {"Rate": "abc"},
            "parameter Rate is Float, but the value 'abc' is not a number",
        ),
        (
            [{"Name": "Count", "Type": "Integer", "DefaultValue": 1}],
            {"Count": "1.5"},
            "parameter Count is Integer, but the value '1.5' is not an integer",
        ),
        (
            [{"Name": "Flag", "Type": "Boolean", "DefaultValue": True}],
            {"Flag": "yes"},
            "parameter Flag is Boolean, but the value 'yes' is not true or false",
        ),
        (
            [{"Name": "Rate", "Type": "Float", "DefaultValue": 0.1}],
            {"Rate": True},
            "parameter Rate is Float, but the value True is not a number",
        ),
        (
            [{"Name": "Rate", "Type": "Float", "DefaultValue": "high"}],
            {},
            "parameter Rate is Float, but its DefaultValue 'high' is not a number",
        ),
        (
            [{"Name": "Rate", "Type": "Decimal"}],
            {},
            "parameter Rate has type 'Decimal'; expected one of String, Integer, Float, Boolean",
        ),
        (
            [{"Name": "Uri", "Type": "String"}],
            {},
            "parameter Uri (String) has no default value: pass one (mlops run --param Uri=...)",
        ),
        ([{"Name": "Uri", "Type": "String"}], {"Url": "x"}, "unknown parameter(s) Url; the pipeline declares: Uri"),
    ],
)
def test_parameters_of_the_wrong_type_fail_with_one_clear_message(declared, overrides, message) -> None:
    with pytest.raises(DefinitionError) as error:
        resolve_parameters(declared, overrides)
    assert str(error.value) == message


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


def test_local_values_stand_in_for_every_variable_of_the_deployed_definitions() -> None:
    from pipeline_defs.definitions import PLACEHOLDERS  # loads the SageMaker SDK: only here

    assert set(local_values("eu-west-1")) == set(PLACEHOLDERS)
