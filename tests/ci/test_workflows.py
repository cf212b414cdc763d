"""The GitHub workflows, offline: they validate against the workflow JSON schema (check-jsonschema's vendored copy,
pinned in .venv-tools), the delivery rules of tests/ci/workflow_rules.py hold, and a copy that breaks any of them is
caught."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ci.workflow_rules import problems

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
TOOLS_BIN = REPO_ROOT / ".venv-tools" / "bin"
CHECK_JSONSCHEMA = Path(os.environ.get("CHECK_JSONSCHEMA", TOOLS_BIN / "check-jsonschema"))


def schema_check(project: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema on every workflow of `project` against its vendored GitHub workflow schema (no download)."""
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} missing: run the tests through `make test` (it installs it)"
    files = sorted(str(path) for path in (project / ".github" / "workflows").glob("*.y*ml"))
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", "--color", "never", *files],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def broken_copy(tmp_path: Path, file: str, pattern: str, replacement: str) -> Path:
    """A project holding a copy of the workflows in which `pattern` (a regex, first match) of `file` is replaced."""
    folder = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, folder)
    target = folder / file
    text, count = re.subn(pattern, replacement, target.read_text(), count=1, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} not found in {file}: the workflow changed, update this test's mutation"
    target.write_text(text)
    return tmp_path


def test_the_workflows_match_the_workflow_schema() -> None:
    result = schema_check(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("file", "pattern", "replacement"),
    [
        ("deploy-unit.yml", r"^(\s+)steps:", r"\1stepz:"),  # an unknown job key (and no steps)
        ("deploy.yml", r"contents: read", "contents: reed"),  # a permission level GitHub does not know
    ],
    ids=["unknown-key", "permission-level"],
)
def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path, file: str, pattern: str, replacement: str) -> None:
    result = schema_check(broken_copy(tmp_path, file, pattern, replacement))
    assert result.returncode == 1
    assert file in result.stdout + result.stderr


def test_the_workflows_keep_every_delivery_rule() -> None:
    assert problems(WORKFLOWS) == []


SHA = r"[0-9a-f]{40}"
BREAKS = {
    "tag instead of SHA": ("test.yml", rf"(actions/checkout@){SHA}", r"\1v7", "not pinned to a full commit SHA"),
    "short SHA": ("deploy-unit.yml", r"(configure-aws-credentials@[0-9a-f]{7})[0-9a-f]{33}", r"\1", "not pinned"),
    "no version comment": ("pull-request.yml", rf"(setup-python@{SHA}) # v\S+", r"\1", "no comment naming its version"),
    "prod outside production": ("deploy.yml", r"environment: production", "environment: prod", "not 'production'"),
    "deploy without environment": (
        "deploy-unit.yml",
        r"^    environment: \$\{\{ inputs\.environment \}\}\n",
        "",
        "outside a GitHub environment",
    ),
    "deploy in a fixed environment": (
        "deploy-unit.yml",
        r"environment: \$\{\{ inputs\.environment \}\}",
        "environment: dev",
        "not its unit's environment",
    ),
    "prod before staging": (
        "deploy.yml",
        r"(deploy-prod:\n    needs:) deploy-staging",
        r"\1 deploy-dev",
        "prod is deployed without waiting for staging",
    ),
    "staging beside dev": (
        "deploy.yml",
        r"(deploy-staging:\n    needs:) deploy-dev",
        r"\1 test",
        "staging is deployed without waiting for dev",
    ),
    "deploy on pull requests": ("deploy.yml", r"^on:\n", "on:\n  pull_request:\n", "only from pushes to main"),
    "deploy from any branch": (
        "deploy.yml",
        r"^(  push:\n)    branches: \[main\]\n",
        r"\1",
        "only from pushes to main",
    ),
    "reusable deploy triggered directly": (
        "deploy-unit.yml",
        r"^on:\n",
        "on:\n  push:\n",
        "runs only when called",
    ),
    "access key input": (
        "deploy-unit.yml",
        r"^(\s+)(role-to-assume: .*)$",
        r"\1\2\n\1aws-access-key-id: ${{ vars.KEY_ID }}",
        "passes aws-access-key-id",
    ),
    "key secret in env": (
        "deploy-unit.yml",
        r"^(\s+)(run: make deploy .*)$",
        r"\1env:\n\1  AWS_SECRET_ACCESS_KEY: ${{ secrets.PROD_AWS_SECRET }}\n\1\2",
        "secret PROD_AWS_SECRET looks like a long-lived AWS key",
    ),
    "no role": ("deploy-unit.yml", r"^\s+role-to-assume: .*\n", "", "without role-to-assume"),
    "no id-token": (
        "deploy-unit.yml",
        r"^(\s+)id-token: write",
        r"\1id-token: none",
        "without `id-token: write`",
    ),
    "sandbox unit": (
        "deploy.yml",
        r"unit: staging",
        "unit: alice",
        "deploys 'alice': CI deploys only dev, staging and prod",
    ),
    "sandbox in the command": (
        "deploy-unit.yml",
        r'make deploy ENV="\$UNIT"',
        "make deploy ENV=\"$UNIT\" && npx cdk deploy -c sandbox=ci '**'",
        "deploys a sandbox",
    ),
    "expression in the command": (
        "deploy-unit.yml",
        r'make deploy ENV="\$UNIT"',
        "make deploy ENV=${{ inputs.environment }}",
        "pastes an expression",
    ),
    "no concurrency group": ("deploy-unit.yml", r"^\s+group: deploy-.*\n", "", "no concurrency group per unit"),
    "deploy cancelled midway": (
        "deploy-unit.yml",
        r"cancel-in-progress: false",
        "cancel-in-progress: true",
        "cancels a deploy in progress",
    ),
    "inline deploy": (
        "pull-request.yml",
        r"run: make deps",
        "run: make deploy ENV=dev",
        "pull-request.yml: deploys a unit, so it runs only when called",
    ),
    "write-all at the top": (
        "test.yml",
        r"^permissions:\n  contents: read",
        "permissions:\n  contents: write",
        "top-level permissions must be exactly",
    ),
    "id-token: write without AWS": (
        "pull-request.yml",
        r"^(\s+)pull-requests: write",
        r"\1pull-requests: write\n\1id-token: write",
        "review has `id-token: write` without needing it",
    ),
    "pull-requests: write without a comment": (
        "deploy-unit.yml",
        r"^(\s+)id-token: write",
        r"\1id-token: write\n\1pull-requests: write",
        "has `pull-requests: write` without needing it",
    ),
}


@pytest.mark.parametrize(("file", "pattern", "replacement", "expected"), BREAKS.values(), ids=BREAKS.keys())
def test_a_broken_rule_is_caught(tmp_path: Path, file: str, pattern: str, replacement: str, expected: str) -> None:
    found = problems(broken_copy(tmp_path, file, pattern, replacement) / ".github" / "workflows")
    assert any(expected in problem for problem in found), found


def test_the_workflows_call_make_targets_that_exist() -> None:
    """Each job's work is a make target (any other CI can run the same); a renamed target breaks this test, not CI."""
    called = set()
    for path in WORKFLOWS.glob("*.yml"):
        called |= set(re.findall(r"\bmake\s+(?:-\S+\s+)*([a-z][\w-]*)", path.read_text()))
    defined = set(re.findall(r"^([a-z][\w-]*):", (REPO_ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    assert called, "no workflow calls make"
    assert called <= defined, f"targets the workflows call but the Makefile lacks: {sorted(called - defined)}"


def make(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def test_make_deploy_deploys_every_stack_of_the_unit_without_a_prompt() -> None:
    dry_run = make("-n", "deploy", "ENV=staging")
    assert dry_run.returncode == 0, dry_run.stderr
    command = dry_run.stdout.strip().splitlines()[-1]
    # '**': the stacks sit in the unit's Stage, which `--all` (top-level stacks only) would miss.
    assert command.split() == [
        "cdk",
        "--no-notices",
        "deploy",
        "'**'",
        "-c",
        "env=staging",
        "--require-approval",
        "never",
    ]


def test_make_deploy_target_names_the_account_and_region_of_the_unit() -> None:
    from config import load_config

    prod = load_config("prod")
    assert make("deploy-target", "ENV=prod").stdout.splitlines() == [f"account={prod.account}", f"region={prod.region}"]
    refused = make("deploy-target", "ENV=alice")
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[0].startswith("config error in 'alice', field 'env'")
    assert "Traceback" not in refused.stderr
