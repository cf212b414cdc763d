"""The delivery rules of .github/workflows that no schema or linter knows, checked on the parsed YAML.

`problems(folder)` lists every broken rule, one line each (an empty list = all kept):
- every action is pinned to a full commit SHA, with a comment naming the version it was released as;
- only dev, staging and prod are ever deployed (never a sandbox), each in the GitHub environment of its unit, one
  deploy of a unit at a time (a concurrency group), dev -> staging -> prod, from pushes to main only;
- AWS only through OIDC: no long-lived keys as inputs, variables or secrets, a role to assume, `id-token: write`
  only where AWS is reached and `pull-requests: write` only where the review comment is posted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from config.settings import ENVIRONMENT_NAMES

# Every unit the config defines, in the order a change is promoted through them.
DEPLOY_ORDER = ENVIRONMENT_NAMES
# The GitHub environment of each unit that CI deploys: prod's has the required reviewers.
ENVIRONMENT_OF_UNIT = {"dev": "dev", "staging": "staging", "prod": "production"}
CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
KEY_INPUTS = {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"}
KEY_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}
KEY_LIKE_NAME = re.compile(r"AWS|ACCESS_KEY|SECRET_KEY|SECRET_ACCESS", re.IGNORECASE)
SECRET_REFERENCE = re.compile(r"secrets\.([A-Za-z0-9_]+)|secrets\[\s*'([^']+)'\s*\]")
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
PINNED_IMAGE = re.compile(r"^docker://[^@\s]+@sha256:[0-9a-f]{64}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
VERSION_COMMENT = re.compile(r"^v\d+(\.\d+)*\b")
DEPLOY_COMMAND = re.compile(r"\b(make\s+(-\S+\s+)*deploy\b(?!-)|cdk\s+deploy\b)")
INPUT_REFERENCE = re.compile(r"^\$\{\{\s*inputs\.(\w+)\s*\}\}$")


@dataclass(frozen=True)
class Deploy:
    """One deploy of a unit: the job that starts it (a job of the triggering workflow) and where it runs."""

    workflow: str
    job: str
    unit: str
    environment: str


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if isinstance(document, dict) and True in document:
        document["on"] = document.pop(True)
    return document if isinstance(document, dict) else {}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in job.get("steps") or [] if isinstance(step, dict)]


def runs_deploy(job: dict[str, Any]) -> bool:
    return any(DEPLOY_COMMAND.search(str(step.get("run", ""))) for step in steps(job))


def pinning_problems(name: str, text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if not match:
            continue
        ref, comment = match["ref"].strip("'\""), (match["comment"] or "").strip()
        if ref.startswith("./"):
            continue  # a workflow or action of this repository: the commit being run
        if ref.startswith("docker://"):
            if not PINNED_IMAGE.match(ref):
                found.append(f"{name}:{number}: {ref} is not pinned to an image digest (@sha256:...)")
            continue
        if not PINNED_ACTION.match(ref):
            found.append(f"{name}:{number}: {ref} is not pinned to a full commit SHA (40 hex digits)")
        elif not VERSION_COMMENT.match(comment):
            found.append(f"{name}:{number}: {ref} has no comment naming its version (`# vX.Y.Z`)")
    return found


def jobs_of(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in (workflow.get("jobs") or {}).items() if isinstance(job, dict)}


def key_problems(name: str, workflow: dict[str, Any], text: str) -> list[str]:
    """No secret named like an AWS key is read, and no AWS key variable is set, anywhere in the workflow."""
    found = []
    for secret in SECRET_REFERENCE.findall(text):
        secret_name = secret[0] or secret[1]
        if KEY_LIKE_NAME.search(secret_name):
            found.append(f"{name}: secret {secret_name} looks like a long-lived AWS key: use OIDC (role-to-assume)")
    scopes = [workflow, *(scope for job in jobs_of(workflow).values() for scope in (job, *steps(job)))]
    for scope in scopes:
        for variable in sorted(KEY_VARIABLES & set(scope.get("env") or {})):
            found.append(f"{name}: sets {variable}: AWS access comes only from OIDC (role-to-assume)")
    return found


def credentials_step_problems(name: str, workflow: dict[str, Any]) -> list[str]:
    """Every step that reaches AWS assumes a role with the job's OIDC token, and takes no key."""
    found = []
    for job_name, job in jobs_of(workflow).items():
        for step in steps(job):
            if not str(step.get("uses", "")).startswith(f"{CREDENTIALS_ACTION}@"):
                continue
            inputs = step.get("with") or {}
            for key in sorted(KEY_INPUTS & set(inputs)):
                found.append(f"{name}: job {job_name} passes {key}: AWS access comes only from OIDC (role-to-assume)")
            if not inputs.get("role-to-assume"):
                found.append(f"{name}: job {job_name} reaches AWS without role-to-assume")
            if (job.get("permissions") or {}).get("id-token") != "write":
                found.append(f"{name}: job {job_name} reaches AWS without `id-token: write` (OIDC)")
    return found


def write_needed(job: dict[str, Any], scope: str, deploy_workflows: set[str]) -> bool:
    """`id-token: write` to reach AWS (or to call a deploying workflow), `pull-requests: write` to post the review."""
    if scope == "id-token":
        called = str(job.get("uses", "")).removeprefix("./.github/workflows/")
        return called in deploy_workflows or any(
            str(step.get("uses", "")).startswith(f"{CREDENTIALS_ACTION}@") for step in steps(job)
        )
    if scope == "pull-requests":
        return any("review_comment.py post" in str(step.get("run", "")) for step in steps(job))
    return False


def permission_problems(name: str, workflow: dict[str, Any], deploy_workflows: set[str]) -> list[str]:
    top = workflow.get("permissions")
    if top != {"contents": "read"}:
        return [f"{name}: top-level permissions must be exactly `contents: read` (jobs widen them), not {top!r}"]
    return [
        f"{name}: job {job_name} has `{scope}: write` without needing it"
        for job_name, job in jobs_of(workflow).items()
        for scope, level in (job.get("permissions") or {}).items()
        if level == "write" and not write_needed(job, scope, deploy_workflows)
    ]


def guard_problems(name: str, job_name: str, job: dict[str, Any]) -> list[str]:
    """A deploy job runs in the GitHub environment it is called with, one deploy of a unit at a time."""
    found = []
    environment = job.get("environment")
    environment_name = environment.get("name") if isinstance(environment, dict) else environment
    input_name = INPUT_REFERENCE.match(str(environment_name or ""))
    if not environment_name:
        found.append(f"{name}: deploy job {job_name} runs outside a GitHub environment")
    elif input_name is None or input_name[1] != "environment":
        found.append(f"{name}: deploy job {job_name} runs in {environment_name!r}, not its unit's environment")
    concurrency = job.get("concurrency") or {}
    group = concurrency.get("group", "") if isinstance(concurrency, dict) else str(concurrency)
    if "inputs.unit" not in group and "inputs.environment" not in group:
        found.append(f"{name}: deploy job {job_name} has no concurrency group per unit (deploys could overlap)")
    if isinstance(concurrency, dict) and concurrency.get("cancel-in-progress"):
        found.append(f"{name}: deploy job {job_name} cancels a deploy in progress (stacks left mid-update)")
    return found


def command_problems(name: str, job_name: str, job: dict[str, Any]) -> list[str]:
    """The deploy command deploys the unit it was called with (passed through env, never pasted), never a sandbox."""
    found = []
    for step in steps(job):
        command = str(step.get("run", ""))
        if not DEPLOY_COMMAND.search(command):
            continue
        if "sandbox" in command.lower():
            found.append(f"{name}: deploy job {job_name} deploys a sandbox")
        if "${{" in command:
            found.append(f"{name}: deploy job {job_name} pastes an expression into its command (pass it in env)")
        unit_variables = [key for key, value in (step.get("env") or {}).items() if value == "${{ inputs.unit }}"]
        if not any(f'ENV="${variable}"' in command for variable in unit_variables):
            found.append(f"{name}: deploy job {job_name} does not deploy the unit it was called with")
    return found


def reusable_deploy_problems(name: str, workflow: dict[str, Any]) -> list[str]:
    """The workflow that deploys: called only (in deploy.yml's order), each deploy job guarded and on its unit."""
    found = []
    if set(workflow.get("on") or []) != {"workflow_call"}:
        found.append(f"{name}: deploys a unit, so it runs only when called (on: workflow_call), in deploy.yml's order")
    for job_name, job in jobs_of(workflow).items():
        if runs_deploy(job):
            found += guard_problems(name, job_name, job) + command_problems(name, job_name, job)
    return found


def deploys_of(name: str, workflow: dict[str, Any], deploy_workflows: set[str]) -> tuple[list[Deploy], list[str]]:
    """Every deploy a workflow starts: calls of a deploying workflow (unit and environment from `with`)."""
    deploys, found = [], []
    for job_name, job in jobs_of(workflow).items():
        called = str(job.get("uses", "")).removeprefix("./.github/workflows/")
        if called not in deploy_workflows:
            continue
        arguments = job.get("with") or {}
        unit, environment = str(arguments.get("unit", "")), str(arguments.get("environment", ""))
        if unit not in ENVIRONMENT_OF_UNIT:
            found.append(f"{name}: job {job_name} deploys {unit!r}: CI deploys only dev, staging and prod, no sandbox")
        elif environment != ENVIRONMENT_OF_UNIT[unit]:
            found.append(
                f"{name}: job {job_name} deploys {unit} in the environment {environment!r},"
                f" not {ENVIRONMENT_OF_UNIT[unit]!r}"
            )
        deploys.append(Deploy(name, job_name, unit, environment))
    return deploys, found


def needed_by(jobs: dict[str, Any], job_name: str) -> set[str]:
    """Every job `job_name` waits for, directly or through others."""
    direct = jobs.get(job_name, {}).get("needs") or []
    waits = {direct} if isinstance(direct, str) else set(direct)
    for other in list(waits):
        waits |= needed_by(jobs, other)
    return waits


def order_problems(name: str, workflow: dict[str, Any], deploys: list[Deploy]) -> list[str]:
    found = []
    triggers = workflow.get("on")
    trigger_names = {triggers} if isinstance(triggers, str) else set(triggers or [])
    push = (triggers.get("push") if isinstance(triggers, dict) else None) or {}
    if trigger_names != {"push"} or push.get("branches") != ["main"]:
        found.append(f"{name}: deploys must start only from pushes to main, not on {sorted(trigger_names)}")
    job_of_unit: dict[str, str] = {}
    for deploy in deploys:
        if deploy.unit in job_of_unit:
            found.append(f"{name}: {deploy.unit} is deployed by two jobs")
        job_of_unit[deploy.unit] = deploy.job
    missing = [unit for unit in DEPLOY_ORDER if unit not in job_of_unit]
    if missing:
        found.append(f"{name}: no deploy of {', '.join(missing)}")
        return found
    jobs = workflow["jobs"]
    for earlier, later in pairwise(DEPLOY_ORDER):
        if job_of_unit[earlier] not in needed_by(jobs, job_of_unit[later]):
            found.append(f"{name}: {later} is deployed without waiting for {earlier} (order: dev -> staging -> prod)")
    return found


def problems(folder: Path) -> list[str]:
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    workflows = {path.name: load(path) for path in files}
    texts = {path.name: path.read_text() for path in files}
    deploy_workflows = {
        name for name, workflow in workflows.items() if any(map(runs_deploy, jobs_of(workflow).values()))
    }
    found: list[str] = []
    all_deploys: list[Deploy] = []
    for name, workflow in workflows.items():
        found += pinning_problems(name, texts[name])
        found += key_problems(name, workflow, texts[name])
        found += credentials_step_problems(name, workflow)
        found += permission_problems(name, workflow, deploy_workflows)
        if name in deploy_workflows:
            found += reusable_deploy_problems(name, workflow)
            continue
        deploys, deploy_problems = deploys_of(name, workflow, deploy_workflows)
        found += deploy_problems
        if deploys:
            found += order_problems(name, workflow, deploys)
        all_deploys += deploys
    if not all_deploys:
        found.append("no workflow deploys dev, staging and prod")
    return found
