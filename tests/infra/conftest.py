"""Synthesizes every unit once per test session, the way `cdk synth` does (same context and feature flags)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.cx_api import CloudAssembly

from config import all_configs
from stacks.stage import MlPlatformStage
from tests.helpers import build_app

ALL_UNITS = {config.unit_name: config for config in all_configs()}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[MlPlatformStage, CloudAssembly]]:
    """`synthesized(unit_name)` -> (stage, its cloud assembly); each unit is synthesized once."""
    cache: dict[str, tuple[MlPlatformStage, CloudAssembly]] = {}

    def synth(unit_name: str) -> tuple[MlPlatformStage, CloudAssembly]:
        if unit_name not in cache:
            outdir = tmp_path_factory.mktemp(unit_name.replace("/", "-").replace("=", "-"))
            app, stage = build_app(ALL_UNITS[unit_name], outdir)
            app.synth()  # raises on any unacknowledged cdk-nag finding
            cache[unit_name] = (stage, stage.synth())
        return cache[unit_name]

    return synth


@pytest.fixture(scope="session")
def all_assemblies(synthesized: Callable[[str], tuple[MlPlatformStage, CloudAssembly]]) -> dict[str, CloudAssembly]:
    return {name: synthesized(name)[1] for name in ALL_UNITS}


def stack_templates(assembly: CloudAssembly) -> dict[str, dict[str, Any]]:
    """{stack id (e.g. Storage): template} of one unit's assembly."""
    return {stack.hierarchical_id.split("/")[-1]: stack.template for stack in assembly.stacks}
