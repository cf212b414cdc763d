"""Local runs: an execution found through its execution.json, as `mlops run --local` recorded it, and the folder of a
monitoring run (`mlops monitor --local`); their files are read from the state dir's local buckets."""

from __future__ import annotations

import re
from pathlib import Path

from config import EnvironmentConfig
from mlops.common import UsageError, pipeline_name, shown
from mlops.executions import started_at
from mlops.report import inputs
from mlops.report.documents import Document, read_document
from mlops.report.sources import Execution, Reader, Report, require
from mlops.tracking import RUN_RECORD
from pipeline_defs.contract import MONITORING_PREFIX, DeployTimeValue
from pipeline_defs.graph import PIPELINES
from pipeline_defs.local import LocalRunError, LocalS3, local_values
from pipeline_defs.local.results import code_objects

# Local execution ids and monitoring run ids: one path segment, never `.` or `..`.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def local_reader(s3: LocalS3) -> Reader:
    """Reads a report at an s3:// URI of the local buckets, or at a local path."""
    return lambda location: read_document(local_path(s3, location))


def local_path(s3: LocalS3, where: str) -> Path:
    """A local bucket's file or folder for an s3:// URI (anything else is already a local path)."""
    if not where.startswith("s3://"):
        return Path(where)
    try:
        return s3.path(where.rstrip("/"))
    except LocalRunError as error:
        raise UsageError(str(error)) from None


# --- executions -----------------------------------------------------------------------------------------------------


def find_execution(state_dir: Path, config: EnvironmentConfig, execution_id: str | None, pipeline: str | None) -> Path:
    """The execution.json of a local execution: by id (either pipeline, unless given), or the newest finished one."""
    root = state_dir / "executions"
    folders = [root / pipeline_name(config, name) for name in ([pipeline] if pipeline else PIPELINES)]
    if execution_id is None:  # a run in progress has no execution.json yet
        runs = [record.parent for folder in folders for record in folder.glob("*/execution.json")]
        if not runs:
            raise UsageError(f"no finished local execution of {pipeline or 'either pipeline'} in {shown(root)}")
        return max(runs, key=started_at) / "execution.json"
    if not _RUN_ID.fullmatch(execution_id):
        raise UsageError(f"{execution_id!r} is not an execution id (mlops run --local prints it, e.g. lzgi7exbo5kw)")
    for folder in folders:
        if (folder / execution_id).is_dir():
            return folder / execution_id / "execution.json"
    raise UsageError(
        f"no local execution {execution_id} in {shown(root)}: check --state-dir, or report the newest execution with "
        "--latest in place of the id"
    )


def local_execution(record_path: Path) -> Execution:
    """A local execution from its execution.json (pipeline_defs/local/results.py's RunResult)."""
    record = read_document(record_path)
    if record is None:
        raise UsageError(f"execution {record_path.parent.name} has no record yet (still running, or killed)")
    steps = record.children("steps")
    return Execution(
        name=record.text("execution_id"),
        title=f"{record.text('pipeline')} execution {record.text('execution_id')}: {record.text('status')}",
        facts=_facts(record) + _tracked(record_path),
        steps=[_step_row(step) for step in steps],
        outputs={step.text("name"): {k: str(v) for k, v in step.child("outputs").data.items()} for step in steps},
        failure_reason=record.at("failure_reason"),
    )


def _facts(record: Document) -> list[tuple[str, str]]:
    parameters = record.at("parameters")
    facts = [
        ("pipeline", record.text("pipeline")),
        ("execution", record.text("execution_id")),
        ("status", record.text("status")),
        ("started", record.text("started")),
        ("parameters", ", ".join(f"{k}={v}" for k, v in parameters.items()) if isinstance(parameters, dict) else "-"),
    ]
    if record.at("failure_reason"):
        facts.append(("failure", str(record.at("failure_reason"))))
    registered = record.at("registered")
    if isinstance(registered, dict):
        facts.append(("registered", f"{registered.get('group')} version {registered.get('version')}"))
    for step in record.children("steps"):  # the code each job ran: content hashes, as the definitions name them
        if code := code_objects(step.data.get("properties") or {}):
            facts.append((f"code of {step.text('name')}", ", ".join(code)))
    return facts


def _tracked(record_path: Path) -> list[tuple[str, str]]:
    """The execution's MLflow run (`mlops.tracking`), as `mlops ui --local` shows it; [] when it was not logged."""
    logged = read_document(record_path.parent / RUN_RECORD)
    if logged is None:
        return []
    experiment, run = logged.text("experiment_id"), logged.text("run_id")
    state_dir = record_path.parents[3]
    where = f"mlops ui --local --state-dir {shown(state_dir)}, then http://127.0.0.1:5000/#/experiments/{experiment}"
    return [("MLflow run", f"{run} ({where}/runs/{run})")]


def _step_row(step: Document) -> tuple[str, str, str, str]:
    note = f"cache hit: outputs of execution {step.at('cache_source')}" if step.at("cache_hit") else step.at("message")
    return step.text("name"), str(step.at("type")), str(step.at("status")), str(note or "")


# --- monitoring runs ------------------------------------------------------------------------------------------------


def find_monitoring_run(state_dir: Path, config: EnvironmentConfig, run: str) -> Path:
    """A monitoring run's folder: given as a folder, an s3:// URI of the local artifacts bucket, or its run id."""
    s3 = LocalS3(state_dir / "s3")
    if run.startswith("s3://"):
        return local_path(s3, run)
    if Path(run).is_dir():
        return Path(run)
    if not _RUN_ID.fullmatch(run):
        raise UsageError(f"--monitoring-run {run!r}: give a run id, its folder or its s3:// URI")
    bucket = local_values(config.region)[DeployTimeValue.ARTIFACTS_BUCKET]
    root = s3.path(f"s3://{bucket}/{MONITORING_PREFIX}")
    found = sorted(path.parent for path in root.glob(f"*/{run}/run.json"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(map(shown, found))}): pass the folder of the one;"
        raise UsageError(f"{what} monitoring run {run} under {shown(root)} (mlops monitor --local prints its id)")
    return found[0]


def monitoring_report(folder: Path, s3: LocalS3) -> Report:
    read = local_reader(s3)
    run = require(read, str(folder / "run.json"), f"{shown(folder)} is not a monitoring run folder")
    period = run.child("period")
    report = Report(
        title=f"Monitoring run {folder.name} of endpoint {run.text('endpoint')}",
        facts=[
            ("endpoint", run.text("endpoint")),
            ("model package version", str(run.at("model_package_version"))),
            # Without --since, mlops monitor reads all the capture: the period has no start.
            ("period (UTC)", f"{period.at('start') or 'all captured requests'} to {period.at('end')}"),
            ("records", f"{run.at('records')} captured, {run.at('labelled')} with ground truth"),
            ("created", str(run.at("created"))),
            ("folder", shown(folder)),
        ],
    )
    report.notes["evaluation"] = "a monitoring run has no gate: it checks traffic against the baselines below"
    report.notes["curves"] = "no curves recorded: a monitoring run writes Model Monitor's statistics, not curves.json"
    data = folder / "data-quality"
    baseline_uri = run.text("baseline", "statistics")
    distances = read(str(data / "drift_report.json"))
    report.data_quality = inputs.DataQuality(
        baseline=inputs.statistics(require(read, baseline_uri, "the monitoring run's baseline")),
        baseline_source=baseline_uri,
        current=inputs.statistics(require(read, str(data / "statistics.json"), "the data-quality report")),
        violations=inputs.violations(
            require(read, str(data / "constraint_violations.json"), "the data-quality report"), "feature_name"
        ),
        drift=inputs.drift(distances) if distances else {},  # runs before drift_report.json existed show "-"
    )
    quality = run.child("model_quality")
    if quality.at("checked") is False:
        report.notes["model_quality"] = f"model quality not checked: {quality.at('reason')}"
    else:
        model = folder / "model-quality"
        report.model_quality = inputs.model_quality(
            require(read, str(model / "statistics.json"), "the model-quality report"),
            read(str(model / "constraints.json")),
            inputs.violations(
                require(read, str(model / "constraint_violations.json"), "the model-quality report"), "metric_name"
            ),
        )
    return report
