"""What a page shows, gathered from an execution's step outputs wherever they are read from (`local` and `aws` find
the execution and read the files). Nothing here draws."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mlops.common import UsageError
from mlops.report import inputs
from mlops.report.documents import Document

# The (step, output) pairs whose reports a page draws. pipeline_defs/training.py and evaluation.py name them;
# tests/cli/test_report.py checks that the synthesized definitions still have them.
EVALUATE = ("Evaluate", "evaluation")
BASELINE = ("Baseline", "baseline")
CHECK_DRIFT = ("CheckDrift", "drift")
RESOLVE_MODEL = ("ResolveModel", "resolved")
SUMMARIZE = ("Summarize", "summary")  # pipeline_defs/scoring.py
REPORTED_STEPS = frozenset(step for step, _ in (EVALUATE, BASELINE, CHECK_DRIFT, RESOLVE_MODEL, SUMMARIZE))
EVAL_ONLY_GATE = (
    "Eval-only pipeline: the 'candidate' is the approved model, re-scored on new data; it passes when its score "
    "reaches MinimumScore and the drift violations stay within MaxDriftViolations (parameters above)."
)

# A JSON report at a location (an s3:// URI, or a local path); None when there is no such file.
Reader = Callable[[str], Document | None]


@dataclass
class Report:
    """Everything one page shows; a section without data says why in `notes[section]`."""

    title: str
    facts: list[tuple[str, str]]
    steps: list[tuple[str, str, str, str]] = field(default_factory=list)  # name, type, status, note
    evaluation: Document | None = None
    curves: inputs.Curves | None = None
    model_quality: inputs.ModelQuality | None = None
    importances: inputs.Importances | None = None  # the candidate's, from its explainability.json
    data_quality: inputs.DataQuality | None = None
    scoring: Document | None = None  # a scoring execution's summary.json (summarize_scores.py)
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Execution:
    """One pipeline execution as a page needs it: what to say about it and where each step's outputs are."""

    name: str  # its id, for messages
    title: str
    facts: list[tuple[str, str]]
    steps: list[tuple[str, str, str, str]]  # name, type, status, note
    outputs: dict[str, dict[str, str]]  # {step: {output: S3 URI}}
    failure_reason: str | None = None

    def location(self, step_output: tuple[str, str]) -> str | None:
        step, output = step_output
        return self.outputs.get(step, {}).get(output)


def join(location: str, name: str) -> str:
    return f"{location.rstrip('/')}/{name}"


def require(read: Reader, location: str, what: str) -> Document:
    document = read(location)
    if document is None:
        raise UsageError(f"{what}: {location} not found")
    return document


def execution_report(execution: Execution, read: Reader) -> Report:
    report = Report(title=execution.title, facts=execution.facts, steps=execution.steps)
    summary = execution.location(SUMMARIZE)
    if summary is not None:  # a scoring run: no evaluation, its scores instead
        report.scoring = require(read, join(summary, "summary.json"), "the Summarize step's output")
    else:
        _add_evaluation(report, execution.location(EVALUATE), read)
    baseline, drift = execution.location(BASELINE), execution.location(CHECK_DRIFT)
    if baseline is not None:
        statistics = require(read, join(baseline, "statistics.json"), "the Baseline step's output")
        report.data_quality = inputs.DataQuality(inputs.statistics(statistics), baseline)
    elif drift is not None:
        report.data_quality = _drift_check(drift, execution.location(RESOLVE_MODEL), read)
        report.notes["gate"] = EVAL_ONLY_GATE
    else:
        report.notes["data_quality"] = "no data-quality report: no Baseline or CheckDrift step recorded an output"
    if report.evaluation is None and report.data_quality is None and report.scoring is None:
        reason = execution.failure_reason or "its pipeline has no Evaluate, Baseline, CheckDrift or Summarize step"
        raise UsageError(f"execution {execution.name} has no reports to draw ({reason})")
    return report


def _add_evaluation(report: Report, folder: str | None, read: Reader) -> None:
    if folder is None:
        report.notes["evaluation"] = "no evaluation: the Evaluate step did not run (or recorded no output)"
        return
    report.evaluation = require(read, join(folder, "evaluation.json"), "the Evaluate step's output")
    curves = read(join(folder, "curves.json"))
    if curves is not None:
        report.curves = inputs.curves(curves)
    elif report.evaluation.at("has_labels") is False:
        report.notes["curves"] = "no curves recorded: the rows had no labels of both classes, so nothing was measured"
    else:
        report.notes["curves"] = "no curves recorded: this execution's Evaluate step predates curves.json"
    explained = read(join(folder, "explainability.json"))
    if explained is not None:
        report.importances = inputs.importances(explained)
    else:
        report.notes["importances"] = "no feature importances: the model's archive records none (explainability.json)"
    quality = read(join(folder, "model_quality.json"))
    if quality is None:
        report.notes["model_quality"] = "no model-quality statistics recorded (model_quality.json)"
        return
    report.model_quality = inputs.model_quality(quality, read(join(folder, "model_quality_constraints.json")))


def _drift_check(drift: str, resolved: str | None, read: Reader) -> inputs.DataQuality:
    """CheckDrift's current statistics, violations and distances, beside the resolved model's registered baseline."""
    current = require(read, join(drift, "statistics.json"), "the CheckDrift step's output")
    violations = require(read, join(drift, "constraint_violations.json"), "the CheckDrift step's output")
    distances = read(join(drift, "drift_report.json"))
    if resolved is None:
        raise UsageError(
            "CheckDrift ran but ResolveModel recorded no output: the baseline it compared against is unknown"
        )
    baseline_uri = require(read, join(resolved, "resolved.json"), "ResolveModel's output").at("baseline_uri")
    if not isinstance(baseline_uri, str):
        raise UsageError(f"the model CheckDrift compared against has no registered baseline ({resolved})")
    return inputs.DataQuality(
        baseline=inputs.statistics(require(read, join(baseline_uri, "statistics.json"), "the registered baseline")),
        baseline_source=baseline_uri,
        current=inputs.statistics(current),
        violations=inputs.violations(violations, "feature_name"),
        drift=inputs.drift(distances) if distances else {},
    )
