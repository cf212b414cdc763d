"""How cost figures are shown: text tables, CSV, JSON-ready dicts and a self-contained HTML page with an SVG chart."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops.cost.estimate import EndpointCost, ExecutionCost, StepCost
from mlops.cost.explorer import Reconciliation
from mlops.cost.prices import PriceSnapshot
from mlops.html_report import PALETTE, Chart, Plot, esc, html_table, legend, page

STEP_COLUMNS = (
    "execution",
    "experiment",
    "step",
    "kind",
    "job",
    "status",
    "instances",
    "billed_seconds",
    "storage_gb",
    "compute_usd",
    "storage_usd",
    "total_usd",
    "note",
)


def label(prices: PriceSnapshot) -> str:
    return (
        f"estimate at on-demand list prices ({prices.region} snapshot of {prices.publication_date}); "
        "savings plans, credits and private pricing show only on the bill (--reconcile)"
    )


def money(usd: float) -> str:
    return f"${usd:,.4f}" if usd < 10 else f"${usd:,.2f}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Left-aligned text columns, two spaces apart."""
    cells = [list(map(str, header))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]


def step_note(step: StepCost) -> str:
    notes = [step.note] if step.note else []
    if step.reused_from:
        notes = [f"cached from {step.reused_from.rsplit('/', 1)[-1]}: paid there"]
    if step.running:
        notes.append("RUNNING: counted to now")
    if step.spot:
        notes.append("managed spot (billed seconds are net of savings)")
    return "; ".join(notes)


def step_record(execution: ExecutionCost, step: StepCost) -> dict[str, Any]:
    return {
        "execution": execution.arn,
        "experiment": execution.experiment_id,
        "step": step.step,
        "kind": step.kind,
        "job": step.job,
        "status": step.status,
        "instances": " + ".join(map(str, step.fleets)),
        "billed_seconds": round(step.billed_seconds, 3),
        "storage_gb": step.storage_gb,
        "compute_usd": round(step.compute_usd, 6),
        "storage_usd": round(step.storage_usd, 6),
        "total_usd": round(step.total_usd, 6),
        "note": step_note(step),
        "reused_from": step.reused_from,
        "running": step.running,
        "spot": step.spot,
    }


def execution_record(execution: ExecutionCost) -> dict[str, Any]:
    return {
        "execution": execution.arn,
        "pipeline": execution.pipeline,
        "experiment": execution.experiment_id,
        "status": execution.status,
        "started": execution.started.isoformat(),
        "total_usd": round(execution.total_usd, 6),
        "running": execution.running,
        "steps": [step_record(execution, step) for step in execution.steps],
    }


def execution_lines(execution: ExecutionCost) -> list[str]:
    short = execution.arn.rsplit("/", 1)[-1]
    head = (
        f"{execution.pipeline} execution {short}: experiment {execution.experiment_id or '-'}, {execution.status}, "
        f"started {execution.started:%Y-%m-%d %H:%M} UTC"
    )
    rows = [
        (
            s.step,
            s.kind,
            " + ".join(map(str, s.fleets)) or "-",
            f"{s.billed_seconds:.0f}",
            money(s.compute_usd),
            money(s.storage_usd),
            money(s.total_usd),
            step_note(s),
        )
        for s in execution.steps
    ]
    header = ("step", "kind", "instances", "billed s", "compute", "storage", "total", "note")
    running = " (still running: grows until it ends)" if execution.running else ""
    return [
        head,
        *("  " + line for line in table(header, rows)),
        f"  execution total: {money(execution.total_usd)}{running}",
    ]


def steps_csv(executions: Sequence[ExecutionCost]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=STEP_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for execution in executions:
        for step in execution.steps:
            writer.writerow(step_record(execution, step))
    return out.getvalue()


def endpoint_record(cost: EndpointCost) -> dict[str, Any]:
    return {
        "endpoint": cost.endpoint,
        "variant": cost.variant,
        "instance_type": cost.instance_type,
        "instance_count": cost.instance_count,
        "instance_hours": round(cost.hours, 3),
        "usd": round(cost.usd, 6),
    }


@dataclass(frozen=True)
class Totals:
    """Dollars summed by one key (pipeline or experiment), top spenders first."""

    rows: list[tuple[str, int, float]]  # key, executions, USD

    @classmethod
    def of(cls, executions: Sequence[ExecutionCost], key: str) -> Totals:
        sums: dict[str, tuple[int, float]] = {}
        for execution in executions:
            name = getattr(execution, key) or "-"
            count, usd = sums.get(name, (0, 0.0))
            sums[name] = (count + 1, usd + execution.total_usd)
        return cls(sorted(((k, c, u) for k, (c, u) in sums.items()), key=lambda row: (-row[2], row[0])))


def reconciliation_lines(reconciliation: Reconciliation) -> list[str]:
    rows = [
        (
            r["experiment"],
            money(r["estimated_usd"]),
            money(r["billed_usd"]),
            money(r["difference_usd"]) if r["difference_usd"] >= 0 else "-" + money(-r["difference_usd"]),
            f"{r['billed_hours']:.2f}",
        )
        for r in reconciliation.rows
    ]
    lines = ["billed (Cost Explorer, UnblendedCost) beside the estimate:"]
    lines += ["  " + line for line in table(("experiment", "estimated", "billed", "billed - est.", "billed h"), rows)]
    untagged = money(reconciliation.untagged_usd)
    lines.append(f"  untagged SageMaker cost (experiment-id$: endpoint, storage, inactive tag): {untagged}")
    lines += [f"warning: {warning}" for warning in reconciliation.warnings]
    return lines


def reconciliation_record(reconciliation: Reconciliation) -> dict[str, Any]:
    return {
        "experiments": reconciliation.rows,
        "untagged_usd": reconciliation.untagged_usd,
        "warnings": reconciliation.warnings,
    }


# --- the picture ----------------------------------------------------------------------------------------------------


def daily_by_experiment(
    executions: Sequence[ExecutionCost],
) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """(days, experiments top spender first, {(day, experiment): USD}) by the day each execution started."""
    cells: dict[tuple[str, str], float] = {}
    for execution in executions:
        cell = (f"{execution.started:%Y-%m-%d}", execution.experiment_id or "-")
        cells[cell] = cells.get(cell, 0.0) + execution.total_usd
    days = sorted({day for day, _ in cells})
    experiments = [row[0] for row in Totals.of(executions, "experiment_id").rows]
    return days, experiments, cells


def svg_chart(executions: Sequence[ExecutionCost], width: int = 760, height: int = 320) -> tuple[str, list[str]]:
    """(SVG of stacked bars: USD per day by experiment, the experiments in legend order)."""
    days, experiments, cells = daily_by_experiment(executions)
    top = max((sum(cells.get((day, e), 0.0) for e in experiments) for day in days), default=0.0) or 1.0
    plot = Plot((0.0, float(max(len(days), 1))), (0.0, top), width=width, height=height, left=70, right=10, top=10)
    chart = Chart(plot, "USD per day by experiment")
    chart.axes(
        x_ticks=[(index + 0.5, day[5:]) for index, day in enumerate(days)],
        y_ticks=[(fraction * top, money(fraction * top)) for fraction in (0.0, 0.5, 1.0)],
    )
    for index, day in enumerate(days):
        stacked = 0.0
        for number, experiment in enumerate(experiments):
            usd = cells.get((day, experiment), 0.0)
            if usd <= 0:
                continue
            colour = PALETTE[number % len(PALETTE)]
            chart.bar(
                (index + 0.15, index + 0.85), (stacked, stacked + usd), colour, f"{day} {experiment}: {money(usd)}"
            )
            stacked += usd
    return chart.svg(), experiments


def html_page(
    title: str, executions: Sequence[ExecutionCost], endpoints: Sequence[EndpointCost], note: str, generated: datetime
) -> str:
    """One HTML file, no scripts or external files: stacked bars of USD per day by experiment, then the tables."""
    chart, experiments = svg_chart(executions)
    runs = html_table(
        ("started (UTC)", "pipeline", "experiment", "status", "estimate"),
        (
            (f"{e.started:%Y-%m-%d %H:%M}", e.pipeline, e.experiment_id or "-", e.status, money(e.total_usd))
            for e in sorted(executions, key=lambda e: e.started)
        ),
    )
    endpoint = html_table(
        ("endpoint", "variant", "instance", "instance-hours", "estimate"),
        ((c.endpoint, c.variant, c.instance_type, f"{c.hours:.1f}", money(c.usd)) for c in endpoints),
    )
    return page(
        title,
        f"<p>{esc(note)}. Generated {generated:%Y-%m-%d %H:%M} UTC.</p>\n"
        f"<h2>USD per day (by execution start), by experiment</h2>\n{chart}\n{legend(experiments)}\n"
        f"<h2>Executions</h2>\n{runs}\n<h2>Endpoint</h2>\n{endpoint}",
    )
