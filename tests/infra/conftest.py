"""Every unit synthesized once per test session, the way `cdk synth` does (same context and feature flags)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.cx_api import CloudAssembly

from stacks.stage import MlPlatformStage
from tests.helpers import ALL_UNITS, synthesized_unit


@pytest.fixture(scope="session")
def synthesized() -> Callable[[str], tuple[MlPlatformStage, CloudAssembly]]:
    """`synthesized(unit_name)` -> (stage, its cloud assembly); each unit is synthesized once per test process."""

    def synth(unit_name: str) -> tuple[MlPlatformStage, CloudAssembly]:
        unit = synthesized_unit(unit_name)
        return unit.stage, unit.assembly

    return synth


@pytest.fixture(scope="session")
def all_assemblies(synthesized: Callable[[str], tuple[MlPlatformStage, CloudAssembly]]) -> dict[str, CloudAssembly]:
    return {name: synthesized(name)[1] for name in ALL_UNITS}


def stack_templates(assembly: CloudAssembly) -> dict[str, dict[str, Any]]:
    """{stack id (e.g. Storage): template} of one unit's assembly."""
    return {stack.hierarchical_id.split("/")[-1]: stack.template for stack in assembly.stacks}
