"""The local engine's fixtures.

The dev assembly (`assembly_dir`, `dev_config`: tests/conftest.py) read once, helpers that change a copy of it; and,
for the hand-written definitions of `builders.py`, a state dir holding their tiny step scripts, a clock the tests
move, and `run` (one execution of a definition).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from config import EnvironmentConfig
from pipeline_defs.local import Assembly, LocalRunner, LocalS3, RunResult, load_assembly
from tests.helpers import REPO_ROOT, STEPS_DIR
from tests.local.builders import FIT_SCRIPT, REPORT_SCRIPT, Clock

SAMPLE_DATA = REPO_ROOT / "pipeline_defs" / "sample_data"


@pytest.fixture(scope="session")
def assembly(assembly_dir: Path, dev_config: EnvironmentConfig) -> Assembly:
    return load_assembly(assembly_dir, dev_config.region)


def put_sample(state_dir: Path, sample: str, uri: str) -> str:
    """Copy a bundled sample under the local S3 prefix `uri`; returns `uri`."""
    target = LocalS3(state_dir / "s3").path(uri)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(SAMPLE_DATA / sample, target)
    return uri


def with_changed_script(assembly_dir: Path, script: str, destination: Path) -> Path:
    """A copy of the assembly in which step script `script` changed, staged the way `cdk synth` stages it.

    The changed file gets a new content hash: a new `asset.<hash>.py` beside the others, and the templates and asset
    manifests name the new hash where they named the old one (CDK hashes its own fingerprint rather than plain
    SHA-256, but the runner only needs the new key).
    """
    shutil.copytree(assembly_dir, destination)
    original = (STEPS_DIR / script).read_bytes()
    staged = next(path for path in destination.glob("asset.*.py") if path.read_bytes() == original)
    old_hash = staged.name.split(".")[1]
    changed = original + b"\n# A harmless change: a new asset, so every step running this script re-runs.\n"
    new_hash = hashlib.sha256(changed).hexdigest()
    (destination / f"asset.{new_hash}.py").write_bytes(changed)
    for path in [*destination.rglob("*.template.json"), *destination.rglob("*.assets.json")]:
        path.write_text(path.read_text().replace(old_hash, new_hash))
    return destination


# Hand-written definitions ---------------------------------------------------------------------------------------------
@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    code = tmp_path / "state" / "s3" / "local-artifacts" / "code"
    code.mkdir(parents=True)
    (code / "report.py").write_text(REPORT_SCRIPT)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = FIT_SCRIPT.encode()
        info = tarfile.TarInfo("fit.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (code / "fit.tar.gz").write_bytes(buffer.getvalue())
    data = tmp_path / "state" / "s3" / "local-landing" / "data" / "v1"
    data.mkdir(parents=True)
    (data / "part-0.csv").write_text("a\n1\n")
    return tmp_path / "state"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def run(state_dir: Path, clock: Clock) -> Callable[..., RunResult]:
    def run_definition(definition: dict, parameters: dict | None = None, name: str = "demo-pipeline") -> RunResult:
        runner = LocalRunner(definition, pipeline_name=name, state_dir=state_dir, region="eu-west-1", clock=clock)
        return runner.run(parameters or {})

    return run_definition
