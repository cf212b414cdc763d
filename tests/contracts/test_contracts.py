"""What crosses a boundary agrees on both sides: parameters sent vs declared, Fn::Sub values, the role's prefixes.

Each side is read from what ships: the synthesized templates and definitions, the handler's own request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from pipeline_defs import contract, definitions
from pipeline_defs.contract import DeployTimeValue
from pipeline_defs.local import local_values
from tests.contracts.conftest import pipeline_definitions, template, unit
from tests.handlers.conftest import marker_event
from tests.helpers import ALL_UNITS

pytestmark = pytest.mark.heavy(seconds=3)  # synthesizes every unit; scheduled first (tests/conftest.py)

SCHEDULED_UNITS = [name for name, config in ALL_UNITS.items() if config.evaluation_schedule is not None]
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def accepts(parameter_type: str, value: str) -> bool:
    """Whether a pipeline parameter of `parameter_type` accepts `value` (StartPipelineExecution sends strings)."""
    parsers: dict[str, Callable[[str], Any]] = {"String": str, "Float": float, "Integer": int}
    if parameter_type == "Boolean":
        return value in ("true", "false")
    try:
        parsers[parameter_type](value)
    except ValueError:
        return False
    return True


def assert_declared(sent: dict[str, str], pipeline_name: str, unit_name: str) -> None:
    definition, _ = pipeline_definitions(unit(unit_name))[pipeline_name]
    declared = {p["Name"]: p["Type"] for p in definition["Parameters"]}
    undeclared = sorted(set(sent) - set(declared))
    assert not undeclared, f"{pipeline_name} does not declare {undeclared} (it declares {sorted(declared)})"
    for name, value in sent.items():
        assert accepts(declared[name], value), f"{pipeline_name}: {name}={value!r} is not a {declared[name]}"


# --- (a) parameters sent are parameters declared ----------------------------------------------------------------


@pytest.mark.parametrize("unit_name", sorted(ALL_UNITS))
def test_the_trigger_sends_parameters_the_training_pipeline_declares(
    load_handler: Callable[[], ModuleType], unit_name: str
) -> None:
    handler = load_handler()
    marker = handler.parse_marker_event(marker_event(), handler.SETTINGS)
    request = handler.start_request(marker, handler.SETTINGS)
    sent = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
    assert set(sent) == {contract.Parameter.INPUT_DATA_URI, contract.Parameter.EXPERIMENT_ID}
    # The function is deployed (twice: training and scoring) to start exactly the pipelines checked here.
    stage = unit(unit_name)
    started = {
        lid.split("Trigger")[0]: r["Properties"]["Environment"]["Variables"]["PIPELINE_NAME"]
        for lid, r in template(stage.orchestration)["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and "Trigger" in lid
    }
    config = ALL_UNITS[unit_name]
    assert started == {"Training": config.training_pipeline_name, "Scoring": config.scoring_pipeline_name}
    for pipeline_name in started.values():
        assert_declared(sent, pipeline_name, unit_name)


@pytest.mark.parametrize("unit_name", SCHEDULED_UNITS)
def test_the_schedule_sends_parameters_the_evaluation_pipeline_declares(unit_name: str) -> None:
    stage = unit(unit_name)
    schedules = [
        r for r in template(stage.orchestration)["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    config = ALL_UNITS[unit_name]
    scheduled = {config.evaluation_pipeline_name} | (
        {config.scoring_pipeline_name} if config.scoring_schedule else set()
    )
    assert len(schedules) == len(scheduled)
    for schedule in schedules:
        target = schedule["Properties"]["Target"]
        pipeline_name = target["Arn"].rsplit(":pipeline/", 1)[1]
        assert pipeline_name in scheduled
        sent = {p["Name"]: p["Value"] for p in target["SageMakerPipelineParameters"]["PipelineParameterList"]}
        assert contract.Parameter.EXPERIMENT_ID in sent
        assert_declared(sent, pipeline_name, unit_name)


# --- (b) one set of Fn::Sub variables ---------------------------------------------------------------------------


@pytest.mark.parametrize("unit_name", sorted(ALL_UNITS))
def test_fn_sub_variables_are_the_values_the_stack_passes_and_the_local_stand_ins(unit_name: str) -> None:
    stage = unit(unit_name)
    config = ALL_UNITS[unit_name]
    used: set[str] = set()
    for name, (definition, variables) in pipeline_definitions(stage).items():
        in_text = set(_SUB_VARIABLE.findall(str(definition)))
        assert in_text == set(variables), name
        used |= in_text
    passed = set(stage.pipelines.deploy_time_values)
    stand_ins = set(local_values(config.region))
    assert used == passed == stand_ins == set(DeployTimeValue) == set(definitions.PLACEHOLDERS)


# --- (c) the execution role is scoped to the contract's names ---------------------------------------------------


@pytest.mark.parametrize("unit_name", sorted(ALL_UNITS))
def test_execution_role_is_scoped_to_the_contracts_job_and_artifact_prefixes(unit_name: str) -> None:
    resources = template(unit(unit_name).pipelines)["Resources"]
    by_sid = {
        s["Sid"]: s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if "Sid" in s
    }
    jobs = by_sid["RunPipelineJobs"]["Resource"]
    assert [arn.rsplit("/", 1)[1] for arn in jobs] == [
        f"{contract.PIPELINE_JOB_PREFIX}*"
    ] * 3  # processing, training, transform
    _, parts = by_sid["ReadWritePipelineArtifacts"]["Resource"]["Fn::Join"]
    assert parts[1] == f"/{contract.ARTIFACTS_PREFIX}*"
    # Besides its own prefix, the role may only read (never write) the unit's endpoint capture: the eval-only
    # pipeline's input when it checks served traffic.
    capture = f"{contract.DATA_CAPTURE_PREFIX}{ALL_UNITS[unit_name].endpoint_name}/"
    assert by_sid["ListPipelineArtifacts"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{contract.ARTIFACTS_PREFIX}*", f"{capture}*"]}
    }
    assert by_sid["ReadCapturedTraffic"]["Action"] == "s3:GetObject"
    assert by_sid["ReadCapturedTraffic"]["Resource"]["Fn::Join"][1][1] == f"/{capture}*"


@pytest.mark.parametrize("unit_name", sorted(ALL_UNITS))
def test_definitions_write_artifacts_only_under_the_prefix_the_role_allows(unit_name: str) -> None:
    bucket_root = "s3://${" + DeployTimeValue.ARTIFACTS_BUCKET + "}/"
    for name, (definition, _) in pipeline_definitions(unit(unit_name)).items():
        uris = [s for s in _strings(definition) if s.startswith(bucket_root)]
        assert uris, name
        for uri in uris:
            # `s3://${ArtifactsBucket}/pipelines` is also the head of Std:Join(On="/") values.
            assert f"{uri.removeprefix(bucket_root)}/".startswith(contract.ARTIFACTS_PREFIX), (name, uri)


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []
