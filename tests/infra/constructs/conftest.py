"""Each construct alone in a bare Stack: no config, no stage, no other construct of the platform (fast, reusable)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Environment, Stack

from stacks.stage import new_app
from tests.helpers import cdk_json_context

ACCOUNT = "123456789012"
REGION = "eu-west-1"


@pytest.fixture
def stack() -> Stack:
    """An empty stack in an App with cdk.json's feature flags, in a concrete account and region."""
    return Stack(new_app(context=cdk_json_context()), "Test", env=Environment(account=ACCOUNT, region=REGION))


def only(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The logical id and body of the one resource in `resources`."""
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def statements(template_json: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every statement granted to a role: its inline policies and every AWS::IAM::Policy attached to it."""
    resources = template_json["Resources"]
    role = resources[role_id]["Properties"]
    found = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found
