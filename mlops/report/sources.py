"""Where a page's inputs are: a local execution's step outputs, found through its execution.json as `mlops run` lists
them, or the folder of a local monitoring run (`mlops monitor --local`). Nothing here draws."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from config import EnvironmentConfig
from mlops.common import PIPELINES, UsageError, pipeline_name, shown
from mlops.executions import started_at
from mlops.report import inputs
from mlops.report.documents import Document, read_document, require_document
from pipeline_defs.contract import MONITORING_PREFIX, DeployTimeValue
from pipeline_defs.local import LocalRunError, LocalS3, local_values

# The (step, output) pairs whose reports a page draws. pipeline_defs/training.py and evaluation.py name them;
# tests/cli/test_report.py checks that the synthesized definitions still have them.
EVALUATE = ("Evaluate", "evaluation")
BASELINE = ("Baseline", "baseline")
CHECK_DRIFT = ("CheckDrift", "drift")
RESOLVE_MODEL = ("ResolveModel", "resolved")
# Local execution ids and monitoring run ids: one path segment, never `.` or `..`.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass
class Report:
    """Everything one page shows; a section without data says why in `notes[section]`."""

    title: str
    facts: list[tuple[str, str]]
    steps: list[tuple[str, str, str, str]] = field(default_factory=list)  # name, type, status, note
    evaluation: Document | None = None
    curves: inputs.Curves | None = None
    model_quality: inputs.ModelQuality | None = None
    data_quality: inputs.DataQuality | None = None
    notes: dict[str, str] = field(default_factory=dict)


# --- executions -----------------------------------------------------------------------------------------------------


def find_execution(state_dir: Path, config: EnvironmentConfig, execution_id: str | None, pipeline: str | None) -> Path:
    """The execution.json of a local execution: by id (either pipeline, unless given), or the pipeline's newest."""
    root = state_dir / "executions"
    folders = [root / pipeline_name(config, name) for name in ([pipeline] if pipeline else PIPELINES)]
    if execution_id is None:  # the newest finished one: a run in progress has no execution.json yet
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
        f"no local execution {execution_id} in {shown(root)}: check --state-dir "
        "(or report the newest: mlops report --pipeline training|evaluation --latest --local)"
    )


def execution_report(record_path: Path, s3: LocalS3) -> Report:
    record = require_document(
        record_path, f"execution {record_path.parent.name} has no record yet (still running, or killed)"
    )
    outputs = {step.text("name"): step for step in record.children("steps")}

    def folder(step_output: tuple[str, str]) -> Path | None:
        step, output = step_output
        uri = outputs[step].at("outputs", output) if step in outputs else None
        return _local_path(s3, uri) if isinstance(uri, str) else None

    report = Report(
        title=f"{record.text('pipeline')} execution {record.text('execution_id')}: {record.text('status')}",
        facts=_execution_facts(record),
        steps=[_step_row(step) for step in outputs.values()],
    )
    _add_evaluation(report, folder(EVALUATE))
    baseline, drift = folder(BASELINE), folder(CHECK_DRIFT)
    if baseline is not None:
        statistics = require_document(baseline / "statistics.json", "the Baseline step's output")
        report.data_quality = inputs.DataQuality(inputs.statistics(statistics), shown(baseline))
    elif drift is not None:
        report.data_quality = _drift_check(drift, folder(RESOLVE_MODEL), s3)
        report.notes["gate"] = (
            "Eval-only pipeline: the 'candidate' is the approved model, re-scored on new data; it passes when its "
            "score reaches MinimumScore and the drift violations stay within MaxDriftViolations (parameters above)."
        )
    else:
        report.notes["data_quality"] = "no data-quality report: no Baseline or CheckDrift step recorded an output"
    if report.evaluation is None and report.data_quality is None:
        reason = record.at("failure_reason") or "its pipeline has no Evaluate, Baseline or CheckDrift step"
        raise UsageError(f"execution {record_path.parent.name} has no reports to draw ({reason})")
    return report


def _execution_facts(record: Document) -> list[tuple[str, str]]:
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
    return facts


def _step_row(step: Document) -> tuple[str, str, str, str]:
    note = f"cache hit: outputs of execution {step.at('cache_source')}" if step.at("cache_hit") else step.at("message")
    return step.text("name"), str(step.at("type")), str(step.at("status")), str(note or "")


def _add_evaluation(report: Report, folder: Path | None) -> None:
    if folder is None:
        report.notes["evaluation"] = "no evaluation: the Evaluate step did not run (or recorded no output)"
        return
    report.evaluation = require_document(folder / "evaluation.json", "the Evaluate step's output")
    curves = read_document(folder / "curves.json")
    if curves is not None:
        report.curves = inputs.curves(curves)
    elif report.evaluation.at("has_labels") is False:
        report.notes["curves"] = "no curves recorded: the rows had no labels of both classes, so nothing was measured"
    else:
        report.notes["curves"] = "no curves recorded: this execution's Evaluate step predates curves.json"
    quality = read_document(folder / "model_quality.json")
    if quality is None:
        report.notes["model_quality"] = "no model-quality statistics recorded (model_quality.json)"
        return
    constraints = read_document(folder / "model_quality_constraints.json")
    report.model_quality = inputs.model_quality(quality, constraints)


def _drift_check(drift: Path, resolved: Path | None, s3: LocalS3) -> inputs.DataQuality:
    """CheckDrift's current statistics, violations and distances, beside the resolved model's registered baseline."""
    current = require_document(drift / "statistics.json", "the CheckDrift step's output")
    violations = require_document(drift / "constraint_violations.json", "the CheckDrift step's output")
    distances = read_document(drift / "drift_report.json")
    if resolved is None:
        raise UsageError(
            "CheckDrift ran but ResolveModel recorded no output: the baseline it compared against is unknown"
        )
    baseline_uri = require_document(resolved / "resolved.json", "ResolveModel's output").at("baseline_uri")
    if not isinstance(baseline_uri, str):
        raise UsageError(f"the model CheckDrift compared against has no registered baseline ({shown(resolved)})")
    return inputs.DataQuality(
        baseline=_statistics_at(s3, baseline_uri.rstrip("/") + "/statistics.json", "the registered baseline"),
        baseline_source=baseline_uri,
        current=inputs.statistics(current),
        violations=inputs.violations(violations, "feature_name"),
        drift=inputs.drift(distances) if distances else {},
    )


# --- monitoring runs ------------------------------------------------------------------------------------------------


def find_monitoring_run(state_dir: Path, config: EnvironmentConfig, run: str) -> Path:
    """A monitoring run's folder: given as a folder, an s3:// URI of the local artifacts bucket, or its run id."""
    s3 = LocalS3(state_dir / "s3")
    if run.startswith("s3://"):
        return _local_path(s3, run)
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
    run = require_document(folder / "run.json", f"{shown(folder)} is not a monitoring run folder")
    period = run.child("period")
    report = Report(
        title=f"Monitoring run {folder.name} of endpoint {run.text('endpoint')}",
        facts=[
            ("endpoint", run.text("endpoint")),
            ("model package version", str(run.at("model_package_version"))),
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
    report.data_quality = inputs.DataQuality(
        baseline=_statistics_at(s3, baseline_uri, "the monitoring run's baseline"),
        baseline_source=baseline_uri,
        current=inputs.statistics(require_document(data / "statistics.json", "the data-quality report")),
        violations=inputs.violations(
            require_document(data / "constraint_violations.json", "the report"), "feature_name"
        ),
    )
    quality = run.child("model_quality")
    if quality.at("checked") is False:
        report.notes["model_quality"] = f"model quality not checked: {quality.at('reason')}"
    else:
        model = folder / "model-quality"
        report.model_quality = inputs.model_quality(
            require_document(model / "statistics.json", "the model-quality report"),
            read_document(model / "constraints.json"),
            inputs.violations(require_document(model / "constraint_violations.json", "the report"), "metric_name"),
        )
    return report


def _statistics_at(s3: LocalS3, uri: str, what: str) -> list[inputs.FeatureStatistics]:
    return inputs.statistics(require_document(_local_path(s3, uri), what))


def _local_path(s3: LocalS3, where: str) -> Path:
    """A local bucket's file or folder for an s3:// URI (anything else is already a local path)."""
    if not where.startswith("s3://"):
        return Path(where)
    try:
        return s3.path(where.rstrip("/"))
    except LocalRunError as error:
        raise UsageError(str(error)) from None
