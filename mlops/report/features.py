"""The features part of a report page: each feature's baseline and current distributions, drift and violations."""

from __future__ import annotations

from collections.abc import Sequence

from mlops.html_report import PALETTE, Chart, Plot, esc, html_table, legend, note
from mlops.report.inputs import (
    DataQuality,
    Drift,
    FeatureStatistics,
    Violation,
)

# The page's colours (page.py uses them too): baseline grey, current the first palette colour, violations red.
BASELINE_COLOUR, CURRENT_COLOUR, VIOLATION_COLOUR = "#8c8c8c", PALETTE[0], "#b00020"
MOST_CATEGORIES = 10  # more values of a categorical feature are drawn as one "(other values)" group


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
