"""The report page: the gate, ROC curves and score histograms, model quality against its thresholds, and every
feature's baseline vs current distribution with its violations. Colour never carries meaning alone: violations are
also written out, and overlaid series differ by fill (baseline: filled; current: outlined) or dash (incumbent)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import datetime

from mlops.html_report import PALETTE, Chart, Plot, esc, html_table, legend, page
from mlops.report.documents import Document
from mlops.report.inputs import Curves, DataQuality, Drift, FeatureStatistics, ModelQuality, ScoreHistogram, Violation
from mlops.report.sources import Report

BASELINE_COLOUR, CURRENT_COLOUR, VIOLATION_COLOUR = "#8c8c8c", PALETTE[0], "#b00020"
ROLE_STYLE = {"candidate": (PALETTE[0], ""), "incumbent": (PALETTE[1], "6,4")}  # colour, dash
LABEL_COLOURS = (PALETTE[0], PALETTE[1])  # label 0, label 1
MOST_CATEGORIES = 10  # more values of a categorical feature are drawn as one "(other values)" group
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


def number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def note(text: str) -> str:
    return f"<p class='note'>{esc(text)}</p>"


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
    names = list(quality.thresholds) or [name for name in monitored_metrics() if name in quality.metrics]
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


def monitored_metrics() -> tuple[str, ...]:
    """The metrics the model-quality monitor checks, from their one owner (evaluate.py, which writes the constraints):
    drawn when a page has no thresholds to name them. Imported here, only then, because the evaluator's imports
    (scikit-learn) take a second or more that no other page or command should pay."""
    return tuple(importlib.import_module("pipeline_defs.steps.evaluate").MONITORED_METRICS)


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


# --- features -------------------------------------------------------------------------------------------------------


def features_section(data: DataQuality) -> str:
    baseline = {f.name: f for f in data.baseline}
    current = {f.name: f for f in data.current or []}
    names = list(baseline) + [name for name in current if name not in baseline]
    names += sorted({v.subject for v in data.violations} - set(names))
    by_feature: dict[str, list[Violation]] = {name: [] for name in names}
    for violation in data.violations:
        by_feature[violation.subject].append(violation)
    intro = f"<p>Baseline: {esc(data.baseline_source)}. "
    intro += (
        f"{len(data.violations)} violation(s) in {sum(1 for v in by_feature.values() if v)} feature(s).</p>"
        if data.current is not None
        else "The baseline this run computed (no current data to compare).</p>"
    )
    summary = [
        (
            name,
            _kind(baseline.get(name) or current.get(name)),
            *_drift_cells(data.drift.get(name)),
            _status(by_feature[name]),
        )
        for name in names
    ]
    table = html_table(
        ("feature", "type", "distance", "threshold", "status"), summary, [bool(by_feature[n]) for n in names]
    )
    legend_names = ["baseline (filled grey bars)"] + (["current (outlined bars)"] if data.current is not None else [])
    cards = [
        feature_card(name, baseline.get(name), current.get(name), by_feature[name], data.drift.get(name))
        for name in names
    ]
    return intro + table + legend(legend_names, (BASELINE_COLOUR, CURRENT_COLOUR)) + "\n".join(cards)


def _kind(feature: FeatureStatistics | None) -> str:
    return feature.inferred_type if feature else "-"


def _drift_cells(drift: Drift | None) -> tuple[str, str]:
    return (f"{drift.distance:.4f}", f"{drift.threshold:g}") if drift else ("-", "-")


def _status(violations: Sequence[Violation]) -> str:
    return "VIOLATION: " + ", ".join(v.check for v in violations) if violations else "ok"


def feature_card(
    name: str,
    baseline: FeatureStatistics | None,
    current: FeatureStatistics | None,
    violations: Sequence[Violation],
    drift: Drift | None,
) -> str:
    marked = " violated" if violations else ""
    parts = [f"<section class='feature{marked}' data-feature='{esc(name)}'><h3>{esc(name)}</h3>"]
    parts += [f"<p class='violation'>VIOLATION {esc(v.check)}: {esc(v.description)}</p>" for v in violations]
    if drift:
        verdict = "drifted" if drift.drifted else "within the threshold"
        parts.append(f"<p>drift distance {drift.distance:.4f} vs threshold {drift.threshold:g}: {verdict}</p>")
    series = [(label, stats) for label, stats in (("baseline", baseline), ("current", current)) if stats is not None]
    if not series:
        parts.append(note("no statistics for this feature"))
    elif series[0][1].numeric:
        parts.append(numeric_chart(name, series))
    else:
        parts.append(categorical_chart(name, series))
    return "".join(parts) + "</section>"


def numeric_chart(name: str, series: Sequence[tuple[str, FeatureStatistics]]) -> str:
    """Each side's 10 buckets over their own ranges on one axis; bar area = share of that side's rows."""
    bounds = [bound for _, stats in series for low, high, _ in stats.buckets for bound in (low, high)] or [0.0, 1.0]
    low, high = min(bounds), max(bounds)
    narrowest = ((high - low) or 1.0) / 100  # a constant feature's buckets have no width: draw them this wide
    bars = []
    for label, stats in series:
        total = sum(count for _, _, count in stats.buckets) or 1
        for lower, upper, count in stats.buckets:
            width = max(upper - lower, narrowest)
            bars.append((label, lower, lower + width, count / total / width, count, count / total))
    top = max((bar[3] for bar in bars), default=0.0) or 1.0
    chart = Chart(
        Plot((low, max(high, low + narrowest)), (0.0, top), width=320, height=200, left=44), f"{name} distribution"
    )
    chart.axes([(value, f"{value:.4g}") for value in (low, (low + high) / 2, high)], [(0.0, "0")])
    chart.axis_titles(name, "share / bucket width")
    for label, lower, upper, height, count, share in bars:
        colour = BASELINE_COLOUR if label == "baseline" else CURRENT_COLOUR
        tip = f"{label} {lower:.4g} to {upper:.4g}: {count} rows ({share:.1%})"
        chart.bar((lower, upper), (0.0, height), colour, tip, outline=label != "baseline")
    return chart.svg()


def categorical_chart(name: str, series: Sequence[tuple[str, FeatureStatistics]]) -> str:
    """Each value's share of the rows, baseline (left) beside current (right); rare values beyond the tenth pooled."""
    shares = {label: _category_shares(stats) for label, stats in series}
    order = sorted({v for s in shares.values() for v in s}, key=lambda v: (-shares[series[0][0]].get(v, 0.0), v))
    values = order[:MOST_CATEGORIES] + (["(other values)"] if len(order) > MOST_CATEGORIES else [])
    for label_shares in shares.values():
        label_shares["(other values)"] = sum(label_shares.get(v, 0.0) for v in order[MOST_CATEGORIES:])
    top = max((share for s in shares.values() for share in s.values()), default=0.0) or 1.0
    plot = Plot((0.0, float(len(values) or 1)), (0.0, top), width=max(320, 64 * len(values) + 60), height=200, left=44)
    chart = Chart(plot, f"{name} distribution")
    chart.axes([(i + 0.5, value[:9]) for i, value in enumerate(values)], [(0.0, "0"), (top, f"{top:.0%}")])
    chart.axis_titles(name, "share of rows")
    for index, value in enumerate(values):
        for side, (label, _) in enumerate(series):
            share = shares[label].get(value, 0.0)
            colour = BASELINE_COLOUR if label == "baseline" else CURRENT_COLOUR
            span = (index + 0.1 + 0.4 * side, index + 0.5 + 0.4 * side)
            chart.bar(span, (0.0, share), colour, f"{label} {value}: {share:.1%}", outline=label != "baseline")
    return chart.svg()


def _category_shares(stats: FeatureStatistics) -> dict[str, float]:
    total = sum(count for _, count in stats.categories) or 1
    return {value: count / total for value, count in stats.categories}
