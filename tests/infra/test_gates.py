"""Static quality gates over every synthesized unit: cdk-nag, cfn-lint and checkov, zero findings each."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from aws_cdk import Stack, Stage
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint

from tests.helpers import REPO_ROOT, build_app
from tests.infra.conftest import ALL_UNITS

CHECKOV = Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv-tools" / "bin" / "checkov"))


def template_files(all_assemblies) -> list[Path]:
    """Every template of every unit."""
    return sorted(Path(stack.template_full_path) for asm in all_assemblies.values() for stack in asm.stacks)


def test_cdk_nag_is_active_and_fails_synth_on_a_finding(tmp_path):
    """All units synthesized with the AwsSolutions plugin; this proves the plugin would have stopped them."""
    app, _stage = build_app(ALL_UNITS["dev"], tmp_path)
    insecure = Stack(Stage(app, "Probe"), "Insecure")
    s3.Bucket(insecure, "NoLogsNoTls")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "policy-validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
    # ...and that it found nothing in the real unit next to it.
    paths = {
        res["constructPath"]
        for r in report["pluginReports"]
        for v in r["violations"]
        for res in v["violatingResources"]
    }
    assert all(path.startswith("Probe/") for path in paths), paths


def test_cfn_lint_reports_nothing_on_any_template(all_assemblies):
    """Errors and warnings both count (informational I-rules, e.g. "prefer Sub over Join", do not)."""
    findings = []
    for unit, assembly in all_assemblies.items():
        config = ManualArgs(regions=[ALL_UNITS[unit].region])
        for stack in assembly.stacks:
            template = Path(stack.template_full_path).read_text()
            findings += [f"{unit} {stack.stack_name}: {match}" for match in lint(template, config=config)]
    assert findings == []


def test_every_checker_exception_carries_a_reason(all_assemblies):
    for path in template_files(all_assemblies):
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            metadata = resource.get("Metadata", {})
            for skip in metadata.get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 20, (path.name, logical_id, skip)
            cfn_lint = metadata.get("cfn-lint", {})
            for rule in cfn_lint.get("config", {}).get("ignore_checks", []):
                assert len(cfn_lint.get("reasons", {}).get(rule, "")) > 20, (path.name, logical_id, rule)


def test_checkov_finds_no_failed_check(all_assemblies):
    assert CHECKOV.exists(), f"{CHECKOV} missing: run the tests through `make test`, which installs checkov"
    failed = []
    for unit, assembly in all_assemblies.items():
        result = subprocess.run(
            [
                str(CHECKOV),
                "-d",
                assembly.directory,
                "--framework",
                "cloudformation",
                "--output",
                "json",
                "--quiet",
                "--skip-download",
                "--skip-results-upload",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert result.returncode in (0, 1), result.stderr[-2000:]
        reports = json.loads(result.stdout or "[]")
        for report in reports if isinstance(reports, list) else [reports]:
            summary = report.get("summary", {})
            assert summary.get("passed", 0) > 0, (unit, summary)
            failed += [(unit, c["check_id"], c["resource"]) for c in report.get("results", {}).get("failed_checks", [])]
    assert failed == []
