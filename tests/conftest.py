"""Fixtures several test folders need: the dev unit synthesized once (in-process, like `cdk synth`); offline AWS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config import EnvironmentConfig, load_config

# One OpenMP thread per test process (set before anything loads scikit-learn's OpenMP runtime; jobs the tests start
# inherit it): the test workers (`-n auto`) already keep every core busy, so a worker's extra threads only compete with
# the other workers, and threads that spin while they wait made in-process training up to ten times slower on a
# loaded host (a leak-check test: 3.8 s quiet, 26.5 s at load 5).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def dev_config() -> EnvironmentConfig:
    return load_config("dev")


@pytest.fixture(scope="session")
def assembly_dir(dev_config: EnvironmentConfig) -> Path:
    """`cdk synth -c env=dev`, done in-process with cdk.json's context: the assembly `mlops` and the engine read.

    Shared with tests/infra and tests/contracts (one synth of the dev unit per test process): treat it as read-only.
    """
    # Imported here: tests.helpers loads CDK (and starts its Node.js runtime), which the xdist controller and the
    # tests that need no unit should not pay for.
    from tests.helpers import synthesized_unit

    return synthesized_unit(dev_config.unit_name).outdir


@pytest.fixture(autouse=True)
def no_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local runs skip their MLflow record (seconds per fresh state dir: the store's creation and MLflow's import);
    tests/cli/test_tracking.py and the README's demo line turn it back on."""
    monkeypatch.setenv("MLOPS_TRACKING", "off")


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


# Fixtures that synthesize whole units (CDK, cdk-nag, every template) or build their pipeline definitions with the
# SageMaker SDK: a test that needs one is heavy, and its rough serial share of that work is this many seconds.
HEAVY_FIXTURES = frozenset({"assembly_dir", "synthesized", "all_assemblies", "definitions_of"})
HEAVY_FIXTURE_SECONDS = 2


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker: `make quick` leaves these tests out
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need a HEAVY_FIXTURES fixture heavy; then order: the files with heavy tests first, longest
    first (by the largest N of `heavy(seconds=N)` in the file), then the rest in collection order.

    With `--dist loadfile` the workers take files in this order, so the long ones start early and the workers finish
    together instead of one of them running a long file alone at the end. N is a rough serial time on 2 cores, used
    for this order only."""
    file_weights: dict[Path, float] = {}
    for item in items:
        if item.get_closest_marker("heavy") is None and HEAVY_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.heavy(seconds=HEAVY_FIXTURE_SECONDS))
        heavy = item.get_closest_marker("heavy")
        if heavy:
            seconds = float(heavy.kwargs.get("seconds", 1))
            file_weights[item.path] = max(file_weights.get(item.path, 0.0), seconds)
    items.sort(key=lambda item: -file_weights.get(item.path, 0.0))  # stable: a file's tests stay together, in order
