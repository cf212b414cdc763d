"""`mlops report --compare A B`: two executions side by side on one page.

What differs between them first (facts: parameters, dataset, registered version, the code each step ran, status),
then the candidate's gate metrics of each with B - A, both candidates' ROC curves on one chart, the feature
importances and each feature's drift. Built from the same reports (`sources.execution_report`) as one execution's
page; a section only one of them has says so.
"""

from __future__ import annotations

from datetime import datetime

from mlops.html_report import PALETTE, Chart, Plot, esc, html_table, legend, note, number, page
from mlops.report.page import GATE_METRICS
from mlops.report.sources import Report

SIDES = ("A", "B")
SIDE_STYLE = {"A": (PALETTE[0], ""), "B": (PALETTE[1], "6,4")}  # colour, dash: never colour alone


def render_comparison(first: Report, second: Report, generated: datetime) -> str:
    reports = dict(zip(SIDES, (first, second), strict=True))
    sections = [
        html_table((), [(side, report.title) for side, report in reports.items()]),
        f"<p class='note'>Generated {generated:%Y-%m-%d %H:%M} UTC by mlops report --compare.</p>",
        "<h2>What differs (lineage)</h2>",
        _facts(first, second),
        "<h2>Candidate metrics</h2>",
        _metrics(first, second),
        "<h2>ROC curves</h2>",
        _roc(reports),
        "<h2>Feature importance</h2>",
        _importances(first, second),
        "<h2>Drift per feature</h2>",
        _drift(first, second),
    ]
    return page(f"Compare {first.title} with {second.title}", "\n".join(sections))


def _facts(first: Report, second: Report) -> str:
    left, right = dict(first.facts), dict(second.facts)
    names = list(left) + [name for name in right if name not in left]
    rows = [(name, left.get(name, "-"), right.get(name, "-")) for name in names]
    differing = [a != b for _, a, b in rows]
    summary = f"{sum(differing)} of {len(rows)} facts differ (marked)."
    return f"<p>{esc(summary)}</p>" + html_table(("fact", "A", "B"), rows, differing)


def _metrics(first: Report, second: Report) -> str:
    values = [_candidate(report) for report in (first, second)]
    if not any(values):
        return note("neither execution evaluated a candidate")
    rows = []
    for metric in GATE_METRICS:
        a, b = (value.get(metric) for value in values)
        delta = f"{b - a:+.4g}" if isinstance(a, float | int) and isinstance(b, float | int) else "-"
        rows.append((metric, number(a) if a is not None else "-", number(b) if b is not None else "-", delta))
    return html_table(("metric", "A", "B", "B - A"), rows)


def _candidate(report: Report) -> dict[str, object]:
    candidate = report.evaluation.at("candidate") if report.evaluation is not None else None
    return dict(candidate) if isinstance(candidate, dict) else {}


def _roc(reports: dict[str, Report]) -> str:
    chart = Chart(Plot((0.0, 1.0), (0.0, 1.0), width=340, height=320), "ROC curves of both candidates")
    ticks = [(value, f"{value:g}") for value in (0.0, 0.25, 0.5, 0.75, 1.0)]
    chart.axes(ticks, ticks)
    chart.axis_titles("false positive rate", "true positive rate")
    chart.line([0.0, 1.0], [0.0, 1.0], "#aaaaaa", "chance (AUC 0.5)", dash="2,3")
    names, colours = [], []
    for side, report in reports.items():
        roc = report.curves.roc.get("candidate") if report.curves is not None else None
        if roc is None:
            continue
        colour, dash = SIDE_STYLE[side]
        name = f"{side}: AUC {roc.auc:.4f} ({'dashed' if dash else 'solid'} line)"
        chart.line(roc.false_positive_rate, roc.true_positive_rate, colour, name, dash=dash)
        names.append(name)
        colours.append(colour)
    return chart.svg() + legend(names, colours) if names else note("neither execution recorded ROC curves")


def _importances(first: Report, second: Report) -> str:
    values = [
        {name: mean for name, mean, _ in report.importances.features} if report.importances is not None else {}
        for report in (first, second)
    ]
    if not any(values):
        return note("neither execution's model recorded feature importances")
    names = list(values[0]) + [name for name in values[1] if name not in values[0]]
    rows = [(name, *(number(side.get(name)) if name in side else "-" for side in values)) for name in names]
    return html_table(("feature", "A: ROC AUC drop when shuffled", "B"), rows)


def _drift(first: Report, second: Report) -> str:
    drifts = [report.data_quality.drift if report.data_quality is not None else {} for report in (first, second)]
    if not any(drifts):
        return note("neither execution checked drift (a training run records the baseline only)")
    names = list(drifts[0]) + [name for name in drifts[1] if name not in drifts[0]]
    rows, flagged = [], []
    for name in names:
        cells = [drift.get(name) for drift in drifts]
        rows.append(
            (name, *(f"{cell.distance:.3f}{' DRIFT' if cell.drifted else ''}" if cell else "-" for cell in cells))
        )
        flagged.append(any(cell is not None and cell.drifted for cell in cells))
    return html_table(("feature", "A: distance", "B: distance"), rows, flagged)
