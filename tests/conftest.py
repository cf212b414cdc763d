"""Session fixtures more than one test folder needs: the dev unit synthesized once, in-process, like `cdk synth`."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import EnvironmentConfig, load_config
from tests.helpers import build_app


@pytest.fixture(scope="session")
def dev_config() -> EnvironmentConfig:
    return load_config("dev")


@pytest.fixture(scope="session")
def assembly_dir(tmp_path_factory: pytest.TempPathFactory, dev_config: EnvironmentConfig) -> Path:
    """`cdk synth -c env=dev`, done in-process with cdk.json's context: the assembly `mlops` and the engine read."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, _ = build_app(dev_config, outdir)
    app.synth()
    return outdir
