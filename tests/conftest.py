"""Fixtures several test folders need: the dev unit synthesized once (in-process, like `cdk synth`); offline AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import EnvironmentConfig, load_config
from tests.helpers import synthesized_unit


@pytest.fixture(scope="session")
def dev_config() -> EnvironmentConfig:
    return load_config("dev")


@pytest.fixture(scope="session")
def assembly_dir(dev_config: EnvironmentConfig) -> Path:
    """`cdk synth -c env=dev`, done in-process with cdk.json's context: the assembly `mlops` and the engine read.

    Shared with tests/infra and tests/contracts (one synth of the dev unit per test process): treat it as read-only.
    """
    return synthesized_unit(dev_config.unit_name).outdir


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region; no profile or config file can point a client at a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the units' region
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files marked `heavy(seconds=N)` first, longest first, then the rest in collection order.

    With `--dist loadfile` the workers take files in this order, so the long ones start early and the workers finish
    together instead of one of them running a long file alone at the end. N is a rough serial time on 2 cores, used
    for this order only."""

    def weight(item: pytest.Item) -> float:
        heavy = item.get_closest_marker("heavy")
        return -float(heavy.kwargs.get("seconds", 1)) if heavy else 0.0

    items.sort(key=weight)  # stable: a file's tests stay together and in order
