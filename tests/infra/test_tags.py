"""Cost-allocation tags reach every resource type that CloudFormation lets us tag."""

from __future__ import annotations

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.infra.conftest import ALL_UNITS, stack_templates


def is_taggable(resource_type: str, region: str) -> bool:
    """True when the resource type's CloudFormation schema (shipped with cfn-lint) has a Tags property."""
    if resource_type.startswith("Custom::"):
        return False
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    return "Tags" in schema.get("properties", {})


def tags_of(resource: dict) -> dict[str, str]:
    tags = resource.get("Properties", {}).get("Tags", [])
    if isinstance(tags, dict):  # a few types (e.g. SSM) use a map instead of a list
        return tags
    return {tag["Key"]: tag["Value"] for tag in tags}


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_every_taggable_resource_carries_the_unit_tags(all_assemblies, unit):
    config = ALL_UNITS[unit]
    checked = 0
    for stack_id, template in stack_templates(all_assemblies[unit]).items():
        for logical_id, resource in template["Resources"].items():
            if not is_taggable(resource["Type"], config.region):
                continue
            checked += 1
            tags = tags_of(resource)
            missing = {k: v for k, v in config.tags.items() if tags.get(k) != v}
            assert not missing, f"{stack_id}/{logical_id} ({resource['Type']}) lacks tags {missing}"
    assert checked >= 5  # key, three buckets, model package group at least


def test_tags_name_environment_owner_cost_center_and_sandbox():
    sandbox = ALL_UNITS["dev/sandbox=ci"]
    assert sandbox.tags == {
        "project": "churn",
        "environment": "dev",
        "owner": "ml-platform",
        "cost-center": "cc-1234",
        "managed-by": "cdk",
        "sandbox": "ci",
    }
    assert "sandbox" not in ALL_UNITS["prod"].tags
