"""The synthesized units the contracts are checked against, and the trigger's handler loaded as the tests load it."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from stacks.stage import MlPlatformStage
from tests.handlers.conftest import function_env, load_handler  # noqa: F401  (fixtures for these tests)
from tests.helpers import synthesized_unit


def unit(unit_name: str) -> MlPlatformStage:
    """The stage of one unit, synthesized once per test process (shared with tests/infra)."""
    return synthesized_unit(unit_name).stage


def template(stage_stack: Any) -> dict[str, Any]:
    json_template: dict[str, Any] = Template.from_stack(stage_stack).to_json()
    return json_template


def pipeline_definitions(stage: MlPlatformStage) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """{pipeline name: (definition with `${Variable}`s left in, the Fn::Sub variables)} of the Pipelines stack."""
    found = {}
    for resource in template(stage.pipelines)["Resources"].values():
        if resource["Type"] == "AWS::SageMaker::Pipeline":
            text, variables = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
            found[resource["Properties"]["PipelineName"]] = (json.loads(text), variables)
    return found
