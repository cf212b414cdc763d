"""Every pipeline of every unit, checked offline the way SageMaker will check them when a run starts.

- Each job step's `Arguments` is the request of the API the step calls. It is validated against botocore's service
  model of that API, with every pipeline expression replaced by a typed dummy chosen by the target shape (or by the
  parameter's default value). botocore checks types, required and unknown fields and minimum lengths; the walk here
  adds enums, patterns and maximums for literal values, which botocore leaves to the service.
- Every reference (`Get: Steps/Parameters/Execution`, a `Std:JsonGet`'s property file, `DependsOn`) names something
  that exists: `pipeline_defs.graph.reference_errors`, the walk the README's graphs are drawn from.
- Every `Std:JsonGet` path exists in the JSON the step's script really writes: the scripts run here on the sample
  data, in-process, and the conditions compare values of the types they expect.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session
import pandas as pd
import pytest
import regex  # botocore's patterns are Java regular expressions (\p{L}, \p{Alnum}); `re` cannot compile them
from botocore.model import Shape
from botocore.validate import ParamValidator

from config import load_config
from pipeline_defs import graph
from pipeline_defs.packaging import STEPS_DIR
from tests.helpers import load_module

SAMPLE_DATA = STEPS_DIR.parent / "sample_data"
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
# The API a job step calls, and the request fields the pipeline service fills in itself.
JOB_STEPS = {
    "Processing": ("CreateProcessingJob", ("ProcessingJobName",)),
    "Training": ("CreateTrainingJob", ("TrainingJobName",)),
    "RegisterModel": ("CreateModelPackage", ()),
    "Model": ("CreateModel", ("ModelName",)),
    "Transform": ("CreateTransformJob", ("TransformJobName",)),
}
CONTROL_STEPS = {"Condition", "Fail"}
EXPRESSIONS = {"Get", "Std:Join", "Std:JsonGet"}
# Which botocore types a pipeline parameter of each type can fill (the service renders numbers into strings).
PARAMETER_FILLS = {
    "String": {"string"},
    "Integer": {"integer", "long", "float", "double", "string"},
    "Float": {"float", "double", "string"},
    "Boolean": {"boolean", "string"},
}
DUMMY_STRINGS = ("dummy", "s3://dummy-bucket/dummy/key", "arn:aws:sagemaker:eu-west-1:111111111111:dummy/dummy", "1")
COMPARISONS = {"GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"}


# Arguments against the service model ------------------------------------------------------------
class Request:
    """A job step's Arguments as the concrete request the service receives, and every problem found on the way."""

    def __init__(self, parameters: list[dict]) -> None:
        self.parameters = {parameter["Name"]: parameter for parameter in parameters}
        self.problems: list[str] = []

    def concrete(self, value: Any, shape: Shape, path: str) -> Any:
        if _is_expression(value):
            return self._expression(value, shape, path)
        if shape.type_name == "structure" and isinstance(value, dict):
            return {
                key: self.concrete(item, shape.members[key], f"{path}.{key}") if key in shape.members else item
                for key, item in value.items()
            }
        if shape.type_name == "list" and isinstance(value, list):
            self._check_literal(value, shape, path)
            return [self.concrete(item, shape.member, f"{path}[{index}]") for index, item in enumerate(value)]
        if shape.type_name == "map" and isinstance(value, dict):
            self._check_literal(value, shape, path)
            for key in value:
                self._check_literal(key, shape.key, f"{path} key {key!r}")
            return {key: self.concrete(item, shape.value, f"{path}.{key}") for key, item in value.items()}
        self._check_literal(value, shape, path)
        return value

    def _expression(self, value: dict, shape: Shape, path: str) -> Any:
        kind, get = shape.type_name, value.get("Get")
        expression = get if isinstance(get, str) else next(iter(value))
        if kind in ("structure", "list", "map"):
            self.problems.append(f"{path}: a pipeline expression ({expression}) cannot fill a {kind} ({shape.name})")
        elif expression.startswith("Parameters.") and expression.removeprefix("Parameters.") in self.parameters:
            parameter = self.parameters[expression.removeprefix("Parameters.")]
            if kind not in PARAMETER_FILLS[parameter["Type"]]:
                self.problems.append(f"{path}: {expression} is a {parameter['Type']} but the API expects a {kind}")
            elif "DefaultValue" in parameter:
                default = parameter["DefaultValue"]
                concrete = json.dumps(default) if kind == "string" and not isinstance(default, str) else default
                self._check_literal(concrete, shape, f"{path} (default of {expression})")
                return concrete
        elif (expression == "Std:Join" or expression.startswith("Execution.")) and kind != "string":
            self.problems.append(f"{path}: {expression} yields a string but the API expects a {kind}")
        return self.dummy(shape, path)

    def dummy(self, shape: Shape, path: str) -> Any:
        """A value of `shape` that botocore and the literal checks accept; the minimal one for a container."""
        kind, metadata = shape.type_name, shape.metadata
        if kind == "structure":
            return {name: self.dummy(shape.members[name], f"{path}.{name}") for name in metadata.get("required", [])}
        if kind == "list":
            return [self.dummy(shape.member, f"{path}[{index}]") for index in range(metadata.get("min", 0))]
        if kind == "map":
            return {}
        if kind == "string":
            return self._dummy_string(shape, path)
        if kind in ("integer", "long"):
            return metadata.get("min", 1)
        if kind in ("float", "double"):
            return float(metadata.get("min", 1.0))
        if kind == "boolean":
            return True
        return datetime(2024, 1, 1, tzinfo=UTC)  # timestamp

    def _dummy_string(self, shape: Shape, path: str) -> str:
        metadata = shape.metadata
        if metadata.get("enum"):
            return str(metadata["enum"][0])
        s3_first = sorted(DUMMY_STRINGS, key=lambda candidate: not candidate.startswith("s3://"))
        length = max(metadata.get("min", 0), 1)
        for candidate in (*(s3_first if "S3" in shape.name else DUMMY_STRINGS), "a" * length, "1" * length):
            if not _literal_problems(candidate, shape):
                return candidate
        self.problems.append(f"{path}: no dummy fits {shape.name} (pattern {metadata.get('pattern')!r})")
        return "dummy"

    def _check_literal(self, value: Any, shape: Shape, path: str) -> None:
        self.problems.extend(f"{path}: {problem}" for problem in _literal_problems(value, shape))


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSIONS


def _compiled(pattern: str) -> regex.Pattern | None:
    try:
        return regex.compile(pattern)
    except regex.error:  # e.g. surrogate ranges in shapes no step uses; botocore does not check patterns at all
        return None


def _literal_problems(value: Any, shape: Shape) -> list[str]:
    """What the service checks and botocore does not: enum, pattern, maximum."""
    metadata, problems = shape.metadata, []
    if isinstance(value, str):
        if metadata.get("enum") and value not in metadata["enum"]:
            problems.append(f"{value!r} is not one of {metadata['enum']}")
        pattern = _compiled(metadata["pattern"]) if "pattern" in metadata else None
        if pattern is not None and not pattern.search(value):
            problems.append(f"{value!r} does not match {shape.name}'s pattern {metadata['pattern']!r}")
    size = len(value) if isinstance(value, str | list | dict) else value
    if isinstance(size, int | float) and not isinstance(size, bool) and size > metadata.get("max", float("inf")):
        problems.append(f"{size} exceeds {shape.name}'s maximum {metadata['max']}")
    return problems


def request_errors(step: dict, parameters: list[dict]) -> list[str]:
    """Every reason the API of a job step would reject its Arguments (with dummies for expressions)."""
    operation, filled_by_service = JOB_STEPS[step["Type"]]
    shape = SAGEMAKER.operation_model(operation).input_shape
    request = Request(parameters)
    arguments = {
        **{name: request.dummy(shape.members[name], name) for name in filled_by_service},
        **step["Arguments"],
    }
    params = request.concrete(arguments, shape, operation)
    report = ParamValidator().validate(params, shape)
    botocore_errors = report.generate_report().splitlines() if report.has_errors() else []
    return [f"{operation}: {error}" for error in botocore_errors] + request.problems


def job_steps(definition: dict) -> Iterator[dict]:
    return (step for step in graph.steps(definition) if step["Type"] in JOB_STEPS)


def all_request_errors(definition: dict) -> dict[str, list[str]]:
    errors = {step["Name"]: request_errors(step, definition["Parameters"]) for step in job_steps(definition)}
    return {name: problems for name, problems in errors.items() if problems}


def _dev_training(definitions_of) -> dict:
    return json.loads(definitions_of(load_config("dev"))["training"])


def test_every_step_type_has_a_known_api(definition: dict) -> None:
    types = {step["Name"]: step["Type"] for step in graph.steps(definition)}
    assert {name: kind for name, kind in types.items() if kind not in {*JOB_STEPS, *CONTROL_STEPS}} == {}
    assert set(types.values()) >= {"Processing", "Condition", "Fail"}


def test_job_step_arguments_validate_against_the_botocore_model(definition: dict) -> None:
    assert all_request_errors(definition) == {}


def test_register_model_is_validated_inside_the_condition_branch(definitions_of) -> None:
    training = _dev_training(definitions_of)
    validated = {step["Name"]: step["Type"] for step in job_steps(training)}

    assert validated["RegisterModel"] == "RegisterModel"
    assert validated["Train"] == "Training"
    assert "RegisterModel" not in {step["Name"] for step in training["Steps"]}


def _step(definition: dict, name: str) -> dict:
    return next(step for step in graph.steps(definition) if step["Name"] == name)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation that sets `Arguments.<path>` (dotted, `[n]` for list items) of a step: `Step:path`."""
    step_name, _, dotted = path.partition(":")

    def mutate(definition: dict) -> None:
        keys = [int(key) if key.isdigit() else key for key in re.findall(r"[^.\[\]]+", dotted)]
        node = _step(definition, step_name)["Arguments"]
        for key in keys[:-1]:
            node = node[key]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            _set("Train:ResourceConfig.VolumeSizeGB", 30),
            'CreateTrainingJob: Unknown parameter in ResourceConfig: "VolumeSizeGB", must be one of:',
            id="unknown-field",
        ),
        pytest.param(
            _set("Preprocess:RoleArn", None),
            'CreateProcessingJob: Missing required parameter in input: "RoleArn"',
            id="missing-field",
        ),
        pytest.param(
            _set("Train:StoppingCondition.MaxRuntimeInSeconds", "3600"),
            "CreateTrainingJob: Invalid type for parameter StoppingCondition.MaxRuntimeInSeconds, value: 3600, "
            "type: <class 'str'>, valid types: <class 'int'>",
            id="wrong-type",
        ),
        pytest.param(
            _set("RegisterModel:SkipModelValidation", "Never"),
            "CreateModelPackage.SkipModelValidation: 'Never' is not one of ['All', 'None']",
            id="not-in-enum",
        ),
        pytest.param(
            _set("Evaluate:ProcessingInputs[0].S3Input.S3Uri", "model/"),
            "CreateProcessingJob.ProcessingInputs[0].S3Input.S3Uri: 'model/' does not match S3Uri's pattern",
            id="pattern",
        ),
        pytest.param(
            _set("Train:ResourceConfig.InstanceCount", {"Get": "Parameters.MinimumScore"}),
            "CreateTrainingJob.ResourceConfig.InstanceCount: Parameters.MinimumScore is a Float "
            "but the API expects a integer",
            id="parameter-type",
        ),
        pytest.param(
            _set("Train:StoppingCondition", {"Get": "Parameters.ExperimentId"}),
            "CreateTrainingJob.StoppingCondition: a pipeline expression (Parameters.ExperimentId) cannot fill a "
            "structure (StoppingCondition)",
            id="expression-for-structure",
        ),
        pytest.param(
            _set("Train:StoppingCondition.MaxRuntimeInSeconds", {"Std:Join": {"On": "", "Values": ["1", "2"]}}),
            "CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds: Std:Join yields a string "
            "but the API expects a integer",
            id="join-for-integer",
        ),
        pytest.param(
            _set("RegisterModel:ModelApprovalStatus", {"Get": "Parameters.ApprovalDefault"}),
            "CreateModelPackage.ModelApprovalStatus (default of Parameters.ApprovalDefault): 'Approve' is not one of",
            id="parameter-default-not-in-enum",
        ),
    ],
)
def test_request_check_reports_each_problem(definitions_of, mutate, message: str) -> None:
    definition = _dev_training(definitions_of)
    definition["Parameters"].append({"Name": "ApprovalDefault", "Type": "String", "DefaultValue": "Approve"})
    mutate(definition)

    errors = [error for problems in all_request_errors(definition).values() for error in problems]
    assert len(errors) == 1, errors
    assert errors[0].startswith(message), errors[0]


# References ------------------------------------------------------------------------------------
def test_every_reference_names_an_existing_step_property_file_output_or_parameter(definition: dict) -> None:
    assert graph.reference_errors(definition) == []


def test_gates_and_fail_steps_read_from_earlier_steps(definition: dict) -> None:
    """The condition and the fail step only read steps of the pipeline, property files those steps declare."""
    gates = [step for step in graph.steps(definition) if step["Type"] in CONTROL_STEPS]
    assert {step["Type"] for step in gates} == CONTROL_STEPS
    for step in gates:
        assert graph.referenced_steps(step), f"{step['Name']} reads no step: its message or decision is constant"
        for source, property_file, _ in graph.json_gets(graph.own_arguments(step)):
            declared = [file["PropertyFileName"] for file in _step(definition, source).get("PropertyFiles", [])]
            assert property_file in declared


def _rewrite_get(step_name: str, old: str, new: str) -> Callable[[dict], None]:
    """A mutation that changes the first `{"Get": old}` a step evaluates to `{"Get": new}`."""

    def mutate(definition: dict) -> None:
        step = _step(definition, step_name)
        node = next(
            node
            for node in graph.json_nodes(graph.own_arguments(step))
            if isinstance(node, dict) and node.get("Get") == old
        )
        node["Get"] = new

    return mutate


def _depends_on(step_name: str, names: list[str]) -> Callable[[dict], None]:
    def mutate(definition: dict) -> None:
        _step(definition, step_name)["DependsOn"] = names

    return mutate


PREPROCESS_TRAIN = "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
EVALUATION_FILE = "Steps.Evaluate.PropertyFiles.Evaluation"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            _rewrite_get("Train", PREPROCESS_TRAIN, PREPROCESS_TRAIN.replace("Preprocess", "Prepare")),
            "step 'Train': Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri names no step "
            "'Prepare' in the pipeline (steps: ResolveIncumbent, Preprocess, Train, Evaluate, Score, Baseline, "
            "CandidateNotWorse, RegisterModel, RejectCandidate)",
            id="unknown-step",
        ),
        pytest.param(
            _rewrite_get("CandidateNotWorse", EVALUATION_FILE, "Steps.Evaluate.PropertyFiles.Metrics"),
            "step 'CandidateNotWorse': Steps.Evaluate.PropertyFiles.Metrics: step 'Evaluate' declares no property "
            "file 'Metrics' (it declares: ['Evaluation'])",
            id="unknown-property-file",
        ),
        pytest.param(
            _rewrite_get("CandidateNotWorse", EVALUATION_FILE, "Steps.Train.PropertyFiles.Evaluation"),
            "step 'CandidateNotWorse': Steps.Train.PropertyFiles.Evaluation: step 'Train' declares no property "
            "file 'Evaluation' (it declares: none)",
            id="property-file-of-another-step",
        ),
        pytest.param(
            _rewrite_get("CandidateNotWorse", EVALUATION_FILE, "Steps.Evaluate.ProcessingOutputConfig"),
            "step 'CandidateNotWorse': Std:JsonGet reads {'Get': 'Steps.Evaluate.ProcessingOutputConfig'}, "
            "which is not Steps.<step>.PropertyFiles.<name>",
            id="json-get-of-a-non-property-file",
        ),
        pytest.param(
            _rewrite_get("RejectCandidate", "Parameters.MaxRegression", "Parameters.MaximumRegression"),
            "step 'RejectCandidate': Parameters.MaximumRegression names no declared parameter (declared: "
            "ConfidenceLevel, ExperimentId, InputDataUri, MaxRegression, MinimumScore, ModelApprovalStatus)",
            id="unknown-parameter",
        ),
        pytest.param(
            _rewrite_get("Train", PREPROCESS_TRAIN, PREPROCESS_TRAIN.replace("'train'", "'training'")),
            "step 'Train': Steps.Preprocess.ProcessingOutputConfig.Outputs['training'].S3Output.S3Uri: step "
            "'Preprocess' has no processing output 'training' (it has: ['train', 'validation', 'test', 'report'])",
            id="unknown-output",
        ),
        pytest.param(
            _rewrite_get("Preprocess", "Execution.PipelineExecutionId", "Execution.RunId"),
            "step 'Preprocess': Execution.RunId names no pipeline execution variable",
            id="unknown-execution-variable",
        ),
        pytest.param(
            _depends_on("Evaluate", ["Baseline", "Validate"]),
            "step 'Evaluate': DependsOn names no step 'Validate' in the pipeline",
            id="unknown-depends-on",
        ),
    ],
)
def test_reference_check_reports_each_broken_reference_once(definitions_of, mutate, message: str) -> None:
    definition = _dev_training(definitions_of)
    mutate(definition)

    assert graph.reference_errors(definition) == [message]


def test_reference_check_reports_a_duplicate_step_name(definitions_of) -> None:
    definition = _dev_training(definitions_of)
    definition["Steps"].append(copy.deepcopy(_step(definition, "Baseline")))

    assert graph.reference_errors(definition) == ["step name 'Baseline' is used more than once"]


def test_execution_variables_are_the_sdks() -> None:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables

    variables = {getattr(ExecutionVariables, name).name for name in dir(ExecutionVariables) if name.isupper()}
    assert variables == graph.EXECUTION_VARIABLES


# JsonGet paths against the scripts' real output ----------------------------------------------------
def _run_step(script: str, *args: object) -> None:
    module = load_module(f"step_{Path(script).stem}", STEPS_DIR / script)
    assert module.main([str(arg) for arg in args]) == 0, f"{script} {args} failed"


@pytest.fixture(scope="module")
def script_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[dict]]:
    """{(script, JSON file): [its content in each situation]}: with and without an approved model.

    The scripts run in-process (one import of pandas and scikit-learn for all): about 2 s on the sample data.
    """
    root = tmp_path_factory.mktemp("script-outputs")
    group = "churn-dev-models"
    _run_step("preprocess.py", "--input-dir", SAMPLE_DATA / "churn", "--output-dir", root / "prepared")
    prepared = root / "prepared"
    _run_step(
        "train.py",
        *("--train", prepared / "train", "--validation", prepared / "validation"),
        *("--model-dir", root / "model", "--output-data-dir", root / "train-output", "--n-estimators", 5),
    )
    _run_step("data_quality.py", "baseline", "--data-dir", prepared / "test", "--output-dir", root / "baseline")
    _run_step(
        "data_quality.py",
        *("check", "--data-dir", prepared / "validation", "--baseline-dir", root / "baseline"),
        *("--output-dir", root / "drift"),
    )
    package = {
        "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{group}/1",
        "ModelPackageVersion": 1,
        "CreationTime": "2024-05-01T12:00:00Z",
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {"Containers": [{"ModelDataUrl": str(root / "model")}]},
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"S3Uri": f"{root / 'baseline'}/statistics.json"},
                "Constraints": {"S3Uri": f"{root / 'baseline'}/constraints.json"},
            }
        },
    }
    (root / "registry" / group).mkdir(parents=True)
    (root / "registry" / group / "000001.json").write_text(json.dumps(package))
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("REGISTRY_BACKEND", "local")
        for situation, registry in (("none", root / "empty-registry"), ("approved", root / "registry")):
            environment.setenv("LOCAL_REGISTRY_DIR", str(registry))
            _run_step(
                "resolve_model.py",
                *("--group-name", group, "--no-incumbent-uri", "s3://artifacts/none"),
                *("--sentinel-dir", root / f"sentinel-{situation}", "--output-dir", root / f"resolved-{situation}"),
            )
    (root / "no-ground-truth").mkdir()
    (root / "no-ground-truth" / "PLACEHOLDER").write_text("the pipeline's default GroundTruthUri holds only this\n")
    for situation, incumbent in (("none", root / "sentinel-none"), ("approved", root / "model")):
        _run_step(
            "evaluate.py",
            *("--model-dir", root / "model", "--incumbent-dir", incumbent, "--test-dir", prepared / "test"),
            *("--confidence-level", 0.95, "--probability-threshold", 0.5),
            *("--output-dir", root / f"evaluation-{situation}"),
        )
    # The eval-only role: the drop test against a version without registered model quality (ResolveModel hands over
    # the placeholder) and against the statistics the first evaluation registered.
    (root / "registered").mkdir()
    shutil.copy(root / "evaluation-none" / "model_quality.json", root / "registered")
    for situation, registered in (("no-statistics", root / "no-ground-truth"), ("registered", root / "registered")):
        _run_step(
            "evaluate.py",
            *("--model-dir", root / "model", "--test-dir", prepared / "test", "--registered-quality-dir", registered),
            *("--confidence-level", 0.95, "--probability-threshold", 0.5, "--allow-unlabelled"),
            *("--output-dir", root / f"evaluation-{situation}"),
        )
    # Captured traffic nobody has labelled yet: the eval-only pipeline's Evaluate says "not measured".
    unlabelled = root / "unlabelled"
    unlabelled.mkdir()
    pd.read_csv(prepared / "test" / "test.csv").assign(churned="").to_csv(unlabelled / "test.csv", index=False)
    _run_step(
        "evaluate.py",
        *("--model-dir", root / "model", "--test-dir", unlabelled, "--allow-unlabelled"),
        *("--output-dir", root / "evaluation-unlabelled"),
    )
    _run_step(
        "merge_capture.py",
        *("--data-dir", SAMPLE_DATA / "churn", "--ground-truth-dir", root / "no-ground-truth"),
        *("--period-end", "2026-11-29T12:00:00Z", "--period-hours", "0.0", "--output-dir", root / "merged"),
    )

    # A transform's output as batch capture leaves it: the prepared record, its score, the inference id and time.
    transformed = root / "transformed"
    transformed.mkdir()
    records = pd.read_csv(prepared / "test" / "test.csv").drop(columns="churned").head(5)
    records.insert(0, "row_key", [f"{n:016x}" for n in range(len(records))])
    records.assign(score=0.25, inference_id="id", time="2026-11-29T12:00:00Z").to_csv(
        transformed / "score-0000.csv.out", index=False, header=False
    )
    _run_step(
        "summarize_scores.py",
        *("--scores-dir", transformed, "--contract", STEPS_DIR / "feature_contract.json"),
        *("--score-column", "churn_probability", "--top-n", 3, "--output-dir", root / "summarized"),
    )

    def read(*paths: Path) -> list[dict]:
        return [json.loads(path.read_text()) for path in paths]

    return {
        ("resolve_model.py", "resolved.json"): read(
            *(root / f"resolved-{s}" / "resolved.json" for s in ("none", "approved"))
        ),
        ("evaluate.py", "evaluation.json"): read(
            *(
                root / f"evaluation-{s}" / "evaluation.json"
                for s in ("none", "approved", "unlabelled", "no-statistics", "registered")
            )
        ),
        ("merge_capture.py", "merge_report.json"): read(root / "merged" / "report" / "merge_report.json"),
        ("data_quality.py", "drift_report.json"): read(root / "drift" / "drift_report.json"),
        ("summarize_scores.py", "summary.json"): read(root / "summarized" / "summary" / "summary.json"),
    }


def test_scripts_write_the_keys_the_pipelines_rely_on(script_outputs) -> None:
    for document in script_outputs["evaluate.py", "evaluation.json"]:
        assert set(document) == {
            *("candidate_score", "incumbent_score", "has_incumbent", "regression", "regression_lower_bound"),
            *("delta", "metric", "candidate", "incumbent", "comparison", "summary", "has_labels", "scored_rows"),
            *("candidate_interval", "candidate_score_upper_bound", "auc_drop", "auc_drop_alarm"),
        }
    for document in script_outputs["resolve_model.py", "resolved.json"]:
        assert set(document) == {
            *("found", "model_package_arn", "model_package_version", "model_data_url"),
            *("statistics_uri", "constraints_uri", "baseline_uri"),
            *("model_quality_statistics_uri", "model_quality_input_uri"),
        }
    assert "violations" in script_outputs["data_quality.py", "drift_report.json"][0]
    evaluations = script_outputs["evaluate.py", "evaluation.json"]
    assert [document["has_incumbent"] for document in evaluations] == [False, True, False, False, False]
    assert [document["has_labels"] for document in evaluations] == [True, True, False, True, True]
    # The same model on the rows it registered its statistics from: tested, no drop; without statistics: "none".
    assert [document["auc_drop"] and document["auc_drop"]["method"] != "none" for document in evaluations] == [
        *(None, None, None, False, True)
    ]
    assert evaluations[-1]["auc_drop"]["drop"] == pytest.approx(0.0, abs=1e-12)
    assert not any(document["auc_drop_alarm"] for document in evaluations)
    assert [document["found"] for document in script_outputs["resolve_model.py", "resolved.json"]] == [False, True]


_MISSING = object()


def _json_path(document: Any, path: str) -> Any:
    """The value at a JsonGet path (`a.b[0].c`) in `document`, or _MISSING."""
    for key in re.findall(r"[^.\[\]]+", path):
        if isinstance(document, list) and key.isdigit() and int(key) < len(document):
            document = document[int(key)]
        elif isinstance(document, dict) and key in document:
            document = document[key]
        else:
            return _MISSING
    return document


def _property_file_contents(definition: dict, code_uris, script_outputs) -> Callable[[str, str], list[dict]]:
    """(step, property file) -> the documents that file holds in the real runs of the step's script."""
    scripts = {Path(uri).name: name for name, uri in code_uris.items()}

    def contents(step_name: str, property_file: str) -> list[dict]:
        step = _step(definition, step_name)
        script = scripts[Path(step["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1]).name]
        file_path = next(f["FilePath"] for f in step["PropertyFiles"] if f["PropertyFileName"] == property_file)
        assert (script, file_path) in script_outputs, f"no real run of {script} writes {file_path}: add it above"
        return script_outputs[script, file_path]

    return contents


def test_every_json_get_path_exists_in_the_scripts_real_output(definition: dict, code_uris, script_outputs) -> None:
    contents = _property_file_contents(definition, code_uris, script_outputs)
    uses = {(s["Name"], *get) for s in graph.steps(definition) for get in graph.json_gets(graph.own_arguments(s))}
    assert uses, "the pipeline reads no property file"
    missing = [
        f"{step} reads {path!r} of {source}.{file}, which the script does not write"
        for step, source, file, path in sorted(uses)
        if any(_json_path(document, path) is _MISSING for document in contents(source, file))
    ]
    assert missing == []


def _comparisons(conditions: Any) -> Iterator[dict]:
    for node in graph.json_nodes(conditions):
        if isinstance(node, dict) and "LeftValue" in node and "RightValue" in node:
            yield node


def test_conditions_compare_values_of_the_types_the_scripts_write(definition: dict, code_uris, script_outputs) -> None:
    """A comparison gets numbers, an Equals with a boolean gets a boolean, in every situation of the real runs."""
    contents = _property_file_contents(definition, code_uris, script_outputs)
    gates = [step for step in graph.steps(definition) if step["Type"] == "Condition"]
    problems = []
    for gate in gates:
        for comparison in _comparisons(gate["Arguments"]["Conditions"]):
            operands = [comparison["LeftValue"], comparison["RightValue"]]
            literal_booleans = [operand for operand in operands if isinstance(operand, bool)]
            expect = "number" if comparison["Type"] in COMPARISONS or not literal_booleans else "boolean"
            for operand in operands:
                for source, file, path in graph.json_gets(operand):
                    for document in contents(source, file):
                        value = _json_path(document, path)
                        is_number = isinstance(value, int | float) and not isinstance(value, bool)
                        if (expect == "number" and not is_number) or (
                            expect == "boolean" and not isinstance(value, bool)
                        ):
                            problems.append(f"{gate['Name']} {comparison['Type']}: {path} is {value!r}, not a {expect}")
    assert problems == []
