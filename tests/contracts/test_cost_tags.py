"""What the cost report reads back is what every job is tagged with, in every synthesized definition of every unit."""

from __future__ import annotations

import pytest

from mlops.cost import COST_TAG_KEYS
from pipeline_defs.contract import Parameter
from tests.contracts.conftest import pipeline_definitions, unit
from tests.helpers import ALL_UNITS

pytestmark = pytest.mark.heavy(seconds=2)  # synthesizes every unit; scheduled first (tests/conftest.py)

JOB_STEP_TYPES = ("Training", "Processing", "Transform", "Model")


def job_steps(definition: dict) -> list[dict]:
    steps = []
    for step in definition["Steps"]:
        steps.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            steps += step.get("Arguments", {}).get(branch, [])
    return [s for s in steps if s["Type"] in JOB_STEP_TYPES]


@pytest.mark.parametrize("unit_name", sorted(ALL_UNITS))
def test_every_job_and_model_step_carries_the_five_cost_tags(unit_name: str) -> None:
    config = ALL_UNITS[unit_name]
    definitions = pipeline_definitions(unit(unit_name))
    assert set(definitions) == set(config.pipeline_names().values())
    for pipeline, (definition, _) in definitions.items():
        steps = job_steps(definition)
        assert steps, pipeline
        for step in steps:
            tags = {tag["Key"]: tag["Value"] for tag in step["Arguments"]["Tags"]}
            missing = [key for key in COST_TAG_KEYS if key not in tags]
            assert not missing, f"{pipeline}/{step['Name']} lacks {missing}"
            assert tags["project"] == config.project and tags["environment"] == config.env_name
            assert tags["cost-center"] == config.cost_center and tags["pipeline"] == pipeline
            assert tags["experiment-id"] == {"Get": f"Parameters.{Parameter.EXPERIMENT_ID.value}"}
