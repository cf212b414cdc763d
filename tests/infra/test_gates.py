"""Static quality gates over every synthesized unit: cdk-nag, cfn-lint and checkov, zero findings each."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from aws_cdk import CfnResource, Stack, Stage
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint_by_config

from tests.helpers import REPO_ROOT, build_app
from tests.infra.conftest import ALL_UNITS

pytestmark = pytest.mark.heavy(seconds=20)  # scheduled first, longest first (tests/conftest.py)

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


def test_cdks_builtin_validation_finds_nothing_on_any_unit(tmp_path):
    """CDK's own CloudFormation validation, off in a plain synth (stacks/stage.py `new_app`), gates every unit here."""
    for number, config in enumerate(ALL_UNITS.values()):
        app, _stage = build_app(config, tmp_path / str(number), builtin_validation=True)
        app.synth()  # an error fails the synth (cdk.json: @aws-cdk/core:validateAgainstDefaultRules)
        report = json.loads((tmp_path / str(number) / "policy-validation-report.json").read_text())
        assert [v for plugin in report["pluginReports"] for v in plugin["violations"]] == [], config.unit_name


@pytest.mark.parametrize("builtin_validation", [True, False])
def test_cdks_builtin_validation_runs_only_when_asked(tmp_path, builtin_validation):
    """The gate above is real (the same synth rejects an invalid bucket), and a plain synth skips it."""
    app, _stage = build_app(ALL_UNITS["dev"], tmp_path, builtin_validation=builtin_validation)
    CfnResource(Stack(Stage(app, "Probe"), "Invalid"), "Bucket", type="AWS::S3::Bucket",
                properties={"BucketName": "Not_A_Valid_Name!"})  # fmt: skip
    if not builtin_validation:
        app.synth()
        return
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "policy-validation-report.json").read_text())
    rules = {(plugin["summary"]["pluginName"], v["ruleName"]) for plugin in report["pluginReports"]
             for v in plugin["violations"]}  # fmt: skip
    assert ("CloudFormation Validate", "F3031") in rules, rules


def test_cfn_lint_reports_nothing_on_any_template(all_assemblies, tmp_path):
    """Errors and warnings both count (informational I-rules, e.g. "prefer Sub over Join", do not)."""
    # A template with a known error goes with the real ones: proof that this very run lints what it is given.
    probe = tmp_path / "probe.template.json"
    probe.write_text(json.dumps({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"Nope": 1}}}}))
    by_region: dict[str, list[str]] = {}
    for unit, assembly in all_assemblies.items():
        by_region.setdefault(ALL_UNITS[unit].region, []).extend(s.template_full_path for s in assembly.stacks)
    findings = []
    for region, templates in by_region.items():
        # One run per region for all its templates: the rules and schemas load once, not once per template.
        findings += lint_by_config(ManualArgs(templates=[*templates, str(probe)], regions=[region]))
    assert {Path(match.filename).name for match in findings} == {probe.name}, [str(m) for m in findings]
    assert {match.rule.id for match in findings} == {"E3002"}  # the probe's unknown property, once per region
    assert len(findings) == len(by_region)


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
    assert checkov_failures(template_files(all_assemblies)) == []


def checkov_failures(templates: list[Path]) -> list[tuple[str, str, str]]:
    """(file, check id, resource) of every failed checkov check on `templates`, after proving all were checked."""
    assert CHECKOV.exists(), f"{CHECKOV} missing: run the tests through `make test`, which installs checkov"
    # One checkov process for every template of every unit: each process pays seconds of start-up.
    result = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            *map(str, templates),
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
    reports = json.loads(result.stdout)  # one framework: one report (a list only when there are several)
    [report] = reports if isinstance(reports, list) else [reports]
    summary = report["summary"]
    # Every resource of every template was parsed and checked.
    resources = sum(len(json.loads(path.read_text())["Resources"]) for path in templates)
    assert (summary.get("resource_count"), summary.get("parsing_errors")) == (resources, 0), summary
    assert summary.get("passed", 0) > 0, summary
    return [(c["file_path"], c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
