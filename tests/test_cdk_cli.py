"""The real `cdk` CLI from node_modules runs app.py offline, without credentials, as the README says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy(seconds=13)  # scheduled first, longest first (tests/conftest.py)

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
NO_CREDENTIALS = {
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
}


def cdk_synth(outdir: Path, *context: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | NO_CREDENTIALS
    env["PATH"] = f"{CDK.parent}:{env['PATH']}"
    args = [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(outdir)]
    for item in context:
        args += ["-c", item]
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(autouse=True)
def _needs_cli():
    assert shutil.which(str(CDK)), "node_modules missing: run the tests through `make test`"


@pytest.fixture(scope="module")
def sandbox_synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    outdir = tmp_path_factory.mktemp("cdk-out")
    return outdir, cdk_synth(outdir, "sandbox=bob")


def test_sandbox_synthesizes_through_the_cli(sandbox_synth):
    outdir, result = sandbox_synth
    assert result.returncode == 0, result.stderr
    manifest = json.loads((outdir / "assembly-churn-dev-bob" / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert sorted(s["properties"]["stackName"] for s in stacks) == [
        "churn-dev-bob-Orchestration",
        "churn-dev-bob-Pipelines",
        "churn-dev-bob-Storage",
    ]


def test_synth_prints_no_warning(sandbox_synth):
    """A deprecation (or any other) warning of CDK or the CLI is a finding: fix it, don't scroll past it."""
    _, result = sandbox_synth
    assert result.returncode == 0, result.stderr
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "[WARNING]" in line]
    assert warnings == []


def test_bad_context_fails_with_one_clear_message(tmp_path):
    """What the CLI shows of a ConfigError (one line, no traceback); every bad value's own message is tested in
    tests/config (unknown env, sandbox names, a sandbox outside dev), each CLI run here costs seconds."""
    context, field = ["env=prod", "sandbox=Bob!"], "sandbox"
    result = cdk_synth(tmp_path, *context)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("config error")]
    assert len(errors) == 1 and f"field '{field}'" in errors[0] and "Fix:" in errors[0], result.stderr
