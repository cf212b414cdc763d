"""Both pipeline definitions of every unit, built once per session with code URIs shaped like CDK's asset keys.

The definitions module is imported inside the fixture: it loads the SageMaker SDK (~4 s), which tests that need
no definition (the step scripts) should not wait for.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from config import EnvironmentConfig, all_configs
from pipeline_defs.graph import PIPELINES
from pipeline_defs.packaging import content_addressed_uris

UNITS = all_configs()


def _code_uris(config: EnvironmentConfig) -> dict[str, str]:
    """{code name: s3://cdk-hnb659fds-assets-<account>-<region>/<sha256 of the content><ext>}, as CDK publishes them."""
    return content_addressed_uris(f"cdk-hnb659fds-assets-{config.account}-{config.region}")


@pytest.fixture(scope="session")
def definitions_of() -> Callable[[EnvironmentConfig], dict[str, str]]:
    """unit config -> {"training" | "evaluation" | "scoring": definition JSON}, built once per unit."""
    from pipeline_defs.definitions import build_definitions

    built: dict[str, dict[str, str]] = {}

    def definitions(config: EnvironmentConfig) -> dict[str, str]:
        if config.unit_name not in built:
            by_name = build_definitions(config, _code_uris(config))
            built[config.unit_name] = {kind: by_name[name] for kind, name in config.pipeline_names().items()}
        return built[config.unit_name]

    return definitions


@pytest.fixture(scope="session", params=UNITS, ids=[config.name_prefix for config in UNITS])
def unit(request: pytest.FixtureRequest) -> EnvironmentConfig:
    return request.param


@pytest.fixture(scope="session", params=PIPELINES)
def pipeline(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def code_uris(unit: EnvironmentConfig) -> dict[str, str]:
    """The code URIs the unit's definitions were built with."""
    return _code_uris(unit)


@pytest.fixture
def definition(definitions_of, unit: EnvironmentConfig, pipeline: str) -> dict:
    """One pipeline of one unit, parsed: a fresh copy per test, so a test may change it."""
    return json.loads(definitions_of(unit)[pipeline])
