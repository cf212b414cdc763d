"""The report page: the gate, ROC curves and score histograms, model quality against its thresholds, and every
feature's baseline vs current distribution with its violations. Colour never carries meaning alone: violations are
also written out, and overlaid series differ by fill (baseline: filled; current: outlined) or dash (incumbent)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mlops.html_report import PALETTE, Chart, Plot, esc, html_table, legend, note, number, page
from mlops.report.documents import Document
from mlops.report.features import CURRENT_COLOUR, VIOLATION_COLOUR, features_section
from mlops.report.inputs import (
    Curves,
    Importances,
    ModelQuality,
    ScoreHistogram,
    Violation,
)
from mlops.report.sources import Report
from steplib import MONITORED_METRICS

ROLE_STYLE = {"candidate": (PALETTE[0], ""), "incumbent": (PALETTE[1], "6,4")}  # colour, dash
LABEL_COLOURS = (PALETTE[0], PALETTE[1])  # label 0, label 1
GATE_METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall", "rows")
COMPARISON_FIELDS = (
    "method",
    "confidence_level",
    "rows",
    "regression",
    "lower_bound",
    "upper_bound",
    "standard_error",
    "incumbent_trained_on_test_rows",
)


def render(report: Report, generated: datetime) -> str:
    data, quality = report.data_quality, report.model_quality
    features = features_section(data) if data else note(report.notes.get("data_quality", ""))
    if report.scoring is not None:  # a scoring run: its scores, then their drift
        body = [scoring_section(report.scoring), "<h2>Drift: scores and features vs the version's baseline</h2>"]
    else:
        body = [
            "<h2>Gate</h2>",
            note(report.notes["gate"]) if "gate" in report.notes else "",
            gate(report.evaluation) if report.evaluation else note(report.notes.get("evaluation", "no evaluation")),
            "<h2>ROC curves and score distributions</h2>",
            curves_section(report.curves) if report.curves else note(report.notes.get("curves", "no curves recorded")),
            "<h2>Model quality</h2>",
            quality_section(quality) if quality else note(report.notes.get("model_quality", "")),
            "<h2>Feature importance</h2>",
            importance_section(report.importances) if report.importances else note(report.notes.get("importances", "")),
            "<h2>Features: baseline vs current</h2>",
        ]
    sections = [
        html_table((), report.facts),
        f"<p class='note'>Generated {generated:%Y-%m-%d %H:%M} UTC by mlops report.</p>",
        *body,
        features,
    ]
    if report.steps:
        sections += ["<h2>Steps</h2>", html_table(("step", "type", "status", "note"), report.steps)]
    return page(report.title, "\n".join(sections))


# --- a scoring run --------------------------------------------------------------------------------------------------


def scoring_section(summary: Document) -> str:
    """The scoring run's rows and mean, its score histogram, and its top rows by score with their features."""
    bins = [(b.number("lower"), b.number("upper"), b.number("count")) for b in summary.children("histogram")]
    rows = summary.number("rows")
    top = max((count / rows for _, _, count in bins), default=0.0) if rows else 0.0
    chart = Chart(Plot((0.0, 1.0), (0.0, top or 1.0), width=420, height=220, left=44), "score histogram")
    chart.axes([(edge, f"{edge:g}") for edge in (0.0, 0.5, 1.0)], [(0.0, "0"), (top or 1.0, f"{top or 1.0:.0%}")])
    chart.axis_titles("churn probability", "share of rows")
    for lower, upper, count in bins:
        share = count / rows if rows else 0.0
        chart.bar((lower, upper), (0.0, share), CURRENT_COLOUR, f"{lower:g} to {upper:g}: {count:g} rows ({share:.1%})")
    objects = summary.children("manifest")
    facts = [
        ("rows scored", f"{rows:g}"),
        ("mean score", f"{summary.number('mean_score'):.4f}"),
        ("output objects", ", ".join(f"{o.text('object')} ({o.number('rows'):g} rows)" for o in objects)),
        ("inference ids", "every record" if summary.at("with_inference_ids") is True else "not generated"),
    ]
    leaders = summary.children("top")
    columns = list(leaders[0].data) if leaders else []
    ordered = ["row_key", "score", *(c for c in columns if c not in ("row_key", "score", "inference_id"))]
    table = html_table(ordered, [[number(entry.at(column)) for column in ordered] for entry in leaders])
    return "\n".join(
        [
            "<h2>Scores</h2>",
            html_table((), facts),
            chart.svg(),
            f"<h3>Top {len(leaders)} rows by score</h3>",
            table if leaders else note("no rows were scored"),
        ]
    )


# --- the gate and the curves ----------------------------------------------------------------------------------------


def gate(evaluation: Document) -> str:
    parts = [f"<p>{esc(evaluation.at('summary'))}</p>"]
    roles = [role for role in ROLE_STYLE if isinstance(evaluation.at(role), dict)]
    if roles:
        rows = [(metric, *(number(evaluation.at(role, metric)) for role in roles)) for metric in GATE_METRICS]
        parts.append(html_table(("metric", *roles), rows))
    comparison = evaluation.at("comparison")
    if isinstance(comparison, dict):
        parts.append("<h3>Paired comparison (regression = incumbent - candidate ROC AUC)</h3>")
        parts.append(html_table((), [(key, number(comparison.get(key))) for key in COMPARISON_FIELDS]))
    return "\n".join(parts)


def curves_section(curves: Curves) -> str:
    charts = [roc_chart(curves)]
    charts += [score_chart(role, curves.edges, histogram) for role, histogram in curves.histograms.items()]
    names = [f"label {label} ({side} bar of each bin)" for label, side in ((0, "left"), (1, "right"))]
    return "\n".join(charts) + legend(names, LABEL_COLOURS)


def roc_chart(curves: Curves) -> str:
    chart = Chart(Plot((0.0, 1.0), (0.0, 1.0), width=340, height=320), "ROC curves")
    ticks = [(value, f"{value:g}") for value in (0.0, 0.25, 0.5, 0.75, 1.0)]
    chart.axes(ticks, ticks)
    chart.axis_titles("false positive rate", "true positive rate")
    chart.line([0.0, 1.0], [0.0, 1.0], "#aaaaaa", "chance (AUC 0.5)", dash="2,3")
    names = []
    for role, roc in curves.roc.items():
        colour, dash = ROLE_STYLE[role]
        name = f"{role}: AUC {roc.auc:.4f} ({'dashed' if dash else 'solid'} line)"
        chart.line(roc.false_positive_rate, roc.true_positive_rate, colour, name, dash=dash)
        names.append(name)
    return chart.svg() + legend(names, [ROLE_STYLE[role][0] for role in curves.roc])


def score_chart(role: str, edges: Sequence[float], histogram: ScoreHistogram) -> str:
    """Per score bin, the share of each label's rows (so the rarer label stays visible): label 0 left, 1 right."""
    positive, negative = histogram.positive, histogram.negative
    shares = [_shares(negative), _shares(positive)]
    top = max((share for series in shares for share in series), default=0.0) or 1.0
    chart = Chart(Plot((edges[0], edges[-1]), (0.0, top), width=340, height=220), f"{role} score distribution by label")
    chart.axes([(edge, f"{edge:g}") for edge in edges[::2]], [(0.0, "0"), (top, f"{top:.0%}")])
    chart.axis_titles(f"{role} churn probability", "share of the label's rows")
    for label, (series, counts) in enumerate(zip(shares, (negative, positive), strict=True)):
        for low, high, share, count in zip(edges, edges[1:], series, counts, strict=False):
            middle = (low + high) / 2
            span = (low, middle) if label == 0 else (middle, high)
            tip = f"{role}, label {label}, score {low:g} to {high:g}: {count} rows ({share:.1%})"
            chart.bar(span, (0.0, share), LABEL_COLOURS[label], tip)
    return f"<h3>{esc(role)} scores</h3>" + chart.svg()


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


# --- model quality --------------------------------------------------------------------------------------------------


def quality_section(quality: ModelQuality) -> str:
    violated = {v.subject: v for v in quality.violations}
    names = list(quality.thresholds) or [name for name in MONITORED_METRICS if name in quality.metrics]
    rows, marked = [], []
    for name, (value, deviation) in quality.metrics.items():
        threshold = quality.thresholds.get(name)
        status = f"VIOLATION: {violated[name].description}" if name in violated else ("ok" if threshold else "-")
        limit = f"{threshold[1]} {threshold[0]:.4g}" if threshold else "-"
        rows.append((name, f"{value:.4g}", f"{deviation:.3g}" if deviation is not None else "-", limit, status))
        marked.append(name in violated)
    parts = [
        quality_chart(quality, names, violated),
        html_table(("metric", "value", "std dev", "threshold", "status"), rows, marked),
    ]
    if quality.confusion:
        matrix = [(f"actual {a}", *(quality.confusion[a][p] for p in ("0", "1"))) for a in ("0", "1")]
        parts.append(html_table(("", "predicted 0", "predicted 1"), matrix))
    lost = [v for v in quality.violations if v.subject not in quality.metrics]
    parts += [f"<p class='violation'>VIOLATION: {esc(v.subject)}: {esc(v.description)}</p>" for v in lost]
    return "\n".join(parts)


def quality_chart(quality: ModelQuality, names: Sequence[str], violated: dict[str, Violation]) -> str:
    """A bar per metric (red and marked when violated) and its threshold as a black line across the bar."""
    drawn = [name for name in names if name in quality.metrics]
    chart = Chart(Plot((0.0, float(max(len(drawn), 1))), (0.0, 1.0), width=80 * len(drawn) + 80, height=220), "metrics")
    chart.axes([(i + 0.5, name) for i, name in enumerate(drawn)], [(v, f"{v:g}") for v in (0.0, 0.5, 1.0)])
    for index, name in enumerate(drawn):
        value = quality.metrics[name][0]
        colour = VIOLATION_COLOUR if name in violated else CURRENT_COLOUR
        state = " - VIOLATION" if name in violated else ""
        chart.bar((index + 0.2, index + 0.8), (0.0, value), colour, f"{name} {value:.4g}{state}")
        if name in violated:
            chart.text(chart.plot.x(index + 0.5), chart.plot.y(value) - 4, "VIOLATION", anchor="middle")
        if name in quality.thresholds:
            limit = quality.thresholds[name][0]
            chart.line([index + 0.1, index + 0.9], [limit, limit], "#000000", f"{name} threshold {limit:.4g}")
    return chart.svg()


# --- feature importance ---------------------------------------------------------------------------------------------


def importance_section(importances: Importances) -> str:
    """A bar per feature (its mean permutation importance), a line across it for mean +- one standard deviation."""
    features = importances.features
    low = min(0.0, *(mean - std for _, mean, std in features))
    high = max(0.0, *(mean + std for _, mean, std in features)) or 1.0
    plot = Plot((0.0, float(len(features))), (low, high), width=90 * len(features) + 80, height=220)
    chart = Chart(plot, "permutation importance")
    chart.axes([(i + 0.5, name) for i, (name, _, _) in enumerate(features)], [(v, f"{v:.3g}") for v in (low, high)])
    chart.axis_titles("feature", "ROC AUC drop when shuffled")
    for index, (name, mean, std) in enumerate(features):
        chart.bar((index + 0.2, index + 0.8), (min(0.0, mean), max(0.0, mean)), CURRENT_COLOUR, f"{name} {mean:.4g}")
        chart.line([index + 0.5, index + 0.5], [mean - std, mean + std], "#000000", f"{name} +- {std:.3g}")
    rows = [(name, f"{mean:.4g}", f"{std:.3g}") for name, mean, std in features]
    intro = f"<p>{esc(importances.method)}, on {importances.rows} rows (the model's Explainability report).</p>"
    return intro + chart.svg() + html_table(("feature", "importance", "std dev"), rows)
