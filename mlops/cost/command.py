"""`mlops cost execution|experiment|summary|prices|tags`: the five actions and their arguments.

Each action makes its AWS clients, reads what it needs through mlops/cost/reads.py (SageMaker), explorer.py (Cost
Explorer) or prices.py (the Price List snapshot), and renders the result with report.py (text, --json, --csv, --html).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client, require_credentials
from mlops.common import SINCE_HELP, UsageError, pipeline_name, shown, since_start
from mlops.cost import explorer, report
from mlops.cost.estimate import ExecutionCost
from mlops.cost.prices import load_snapshot, pricing_endpoint_region, refresh, snapshot_path, write_snapshot
from mlops.cost.reads import (
    endpoint_estimate,
    estimate_execution,
    executions_since,
    experiment_of,
    list_executions,
)
from mlops.html_report import check_page_path, write_page
from mlops.report.aws import EXECUTION_ARN
from pipeline_defs.graph import PIPELINES

ACTIONS = ("execution", "experiment", "summary", "prices", "tags")
DEFAULT_DAYS = 30


def utc_now() -> datetime:
    return datetime.now(UTC)


def pricing_client(region: str) -> Any:
    """The Price List API lives in three regions only (us-east-1, eu-central-1, ap-south-1)."""
    import boto3

    require_credentials()
    return boto3.client("pricing", region_name=pricing_endpoint_region(region))


def window_start(args: argparse.Namespace, now: datetime) -> datetime:
    """Where the window of `--since` starts (the one grammar of mlops.common.since_start); default 30 days ago."""
    return since_start(args.since, now) or now - timedelta(days=DEFAULT_DAYS)


# --- the actions ----------------------------------------------------------------------------------------------------


def _output(
    args: argparse.Namespace, record: dict[str, Any], lines: list[str], executions: list[ExecutionCost]
) -> None:
    if args.json:
        print(json.dumps(record, indent=2, default=str))
    elif args.csv:
        print(report.steps_csv(executions), end="")
    else:
        print("\n".join(lines))


def _reconcile(
    args: argparse.Namespace, config: EnvironmentConfig, executions: list[ExecutionCost], since: datetime, now: datetime
) -> explorer.Reconciliation:
    """One Cost Explorer query over the window; a summary shows every experiment billed, the others theirs only."""
    start = min([since, *(e.started for e in executions)]).date()
    request = explorer.cost_and_usage_request(config, start, now.date() + timedelta(days=1))
    pages = explorer.fetch_cost_and_usage(client("ce", config), request, args.state_dir / "cost", now)
    estimated: dict[str, float] = {}
    for execution in executions:
        estimated[execution.experiment_id] = estimated.get(execution.experiment_id, 0.0) + execution.total_usd
    last_usage = max((e.last_activity for e in executions), default=None)
    billed = explorer.billed_by_experiment(pages)
    return explorer.reconcile(estimated, billed, last_usage, now, only_estimated=args.action != "summary")


def _execution(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    now, prices = utc_now(), load_snapshot(config.region, args.prices_dir)
    sagemaker = client("sagemaker", config)
    if args.target and args.latest:
        raise UsageError("give an execution ARN or --pipeline P --latest, not both")
    if args.target:
        match = EXECUTION_ARN.fullmatch(args.target)
        if not match:
            raise UsageError(
                f"{args.target!r} is not a pipeline execution ARN (arn:aws:sagemaker:...:pipeline/P/execution/ID)"
            )
        try:
            described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=args.target)
        except (BotoCoreError, ClientError) as error:
            raise AwsCallFailed(f"describing {args.target} failed: {error}") from None
        summary = {**described, "StartTime": described.get("CreationTime")}
        name = match.group(1)
    elif args.latest and args.pipeline:
        name = pipeline_name(config, args.pipeline)
        since = window_start(args, now)
        latest = list_executions(sagemaker, name, since)[:1]
        if not latest:
            raise UsageError(f"{name} has no execution since {since:%Y-%m-%d} (try --since 90d)")
        summary = latest[0]
    else:
        raise UsageError("give an execution ARN, or --pipeline training|evaluation --latest")
    experiment = experiment_of(sagemaker, summary["PipelineExecutionArn"])
    execution = estimate_execution(sagemaker, summary, name, experiment, prices, now)
    record: dict[str, Any] = {"label": report.label(prices), **report.execution_record(execution)}
    lines = [*report.execution_lines(execution), report.label(prices)]
    if args.reconcile:
        reconciliation = _reconcile(args, config, [execution], execution.started, now)
        record["reconciliation"] = report.reconciliation_record(reconciliation)
        lines += report.reconciliation_lines(reconciliation)
    _output(args, record, lines, [execution])
    return 0


def _experiment(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.target:
        raise UsageError("name the experiment: `mlops cost experiment <experiment-id>`")
    now, prices = utc_now(), load_snapshot(config.region, args.prices_dir)
    since = window_start(args, now)
    sagemaker = client("sagemaker", config)
    pipelines = [args.pipeline] if args.pipeline else list(PIPELINES)
    found = executions_since(sagemaker, config, pipelines, since, args.target)
    executions = [estimate_execution(sagemaker, s, name, e, prices, now) for s, name, e in found]
    total = sum(e.total_usd for e in executions)
    record: dict[str, Any] = {
        "label": report.label(prices),
        "experiment": args.target,
        "since": since.isoformat(),
        "total_usd": round(total, 6),
        "executions": [report.execution_record(e) for e in executions],
    }
    lines = [
        f"experiment {args.target}: {len(executions)} execution(s) since {since:%Y-%m-%d}, total {report.money(total)}"
    ]
    for execution in executions:
        lines += ["", *report.execution_lines(execution)]
    lines.append(report.label(prices))
    if args.reconcile:
        reconciliation = _reconcile(args, config, executions, since, now)
        record["reconciliation"] = report.reconciliation_record(reconciliation)
        lines += report.reconciliation_lines(reconciliation)
    _output(args, record, lines, executions)
    return 0


def _summary(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    now, prices = utc_now(), load_snapshot(config.region, args.prices_dir)
    since = window_start(args, now)
    sagemaker = client("sagemaker", config)
    pipelines = [args.pipeline] if args.pipeline else list(PIPELINES)
    found = executions_since(sagemaker, config, pipelines, since, None)
    executions = [estimate_execution(sagemaker, s, name, e, prices, now) for s, name, e in found]
    endpoints = endpoint_estimate(sagemaker, config, prices, since, now)
    by_pipeline, by_experiment = report.Totals.of(executions, "pipeline"), report.Totals.of(executions, "experiment_id")
    endpoint_usd = sum(c.usd for c in endpoints)
    total = sum(e.total_usd for e in executions) + endpoint_usd
    record: dict[str, Any] = {
        "label": report.label(prices),
        "since": since.isoformat(),
        "total_usd": round(total, 6),
        "by_pipeline": [{"pipeline": k, "executions": c, "usd": round(u, 6)} for k, c, u in by_pipeline.rows],
        "by_experiment": [{"experiment": k, "executions": c, "usd": round(u, 6)} for k, c, u in by_experiment.rows],
        "endpoint": [report.endpoint_record(c) for c in endpoints],
        "executions": [report.execution_record(e) for e in executions],
    }
    money = report.money
    lines = [f"{config.name_prefix} since {since:%Y-%m-%d}: {len(executions)} execution(s), total {money(total)}", ""]
    lines += report.table(("pipeline", "executions", "estimate"), [(k, c, money(u)) for k, c, u in by_pipeline.rows])
    experiment_rows = [(k, c, money(u)) for k, c, u in by_experiment.rows]
    lines += ["", *report.table(("experiment", "executions", "estimate"), experiment_rows)]
    endpoint_rows = [
        (c.endpoint, c.variant, c.instance_type, c.instance_count, f"{c.hours:.1f}", money(c.usd)) for c in endpoints
    ]
    lines += [""] + (
        report.table(("endpoint", "variant", "instance", "count now", "instance-h", "estimate"), endpoint_rows)
        if endpoints
        else [f"endpoint {config.endpoint_name}: not deployed"]
    )
    lines.append(report.label(prices))
    if args.reconcile:
        reconciliation = _reconcile(args, config, executions, since, now)
        record["reconciliation"] = report.reconciliation_record(reconciliation)
        lines += report.reconciliation_lines(reconciliation)
    if args.html:
        page = report.html_page(
            f"{config.name_prefix} cost since {since:%Y-%m-%d}", executions, endpoints, report.label(prices), now
        )
        write_page(args.html, page)
        print(f"wrote {shown(args.html)}", file=sys.stderr)
    _output(args, record, lines, executions)
    return 0


def _prices(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    region = args.region or config.region
    if args.refresh:
        snapshot = refresh(pricing_client(region), region, utc_now())
        path = snapshot_path(region, args.prices_dir)
        write_snapshot(snapshot, path)
        print(
            f"wrote {shown(path)} (prices published {snapshot['publicationDate']}): review it with git diff",
            file=sys.stderr,
        )
    prices = load_snapshot(region, args.prices_dir)
    if args.json:
        print(json.dumps(json.loads(prices.path.read_text()), indent=2))
        return 0
    rows = [
        (c, t, f"${p:.4f}/h") for c, types in sorted(prices.instance_hour.items()) for t, p in sorted(types.items())
    ]
    rows += [(c, "ML storage", f"${p:.3f}/GB-month") for c, p in sorted(prices.storage_gb_month.items())]
    print(f"{region} on-demand prices, published {prices.publication_date} ({shown(prices.path)})")
    print(f"source: {prices.source}")
    print("\n".join(report.table(("component", "instance", "price"), rows)))
    return 0


def _tags(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    ce = client("ce", config)
    statuses = explorer.tag_statuses(ce)
    inactive = [key for key, status in statuses.items() if status == "Inactive"]
    problems = explorer.activate_tags(ce, inactive) if args.activate and inactive else []
    activated = [key for key in inactive if args.activate and not any(p.startswith(f"{key}:") for p in problems)]
    if args.json:
        print(json.dumps({"statuses": statuses, "activated": activated, "errors": problems}, indent=2))
    else:
        print("\n".join(report.table(("tag key", "status"), sorted(statuses.items()))))
        unseen = [key for key, status in statuses.items() if status == "not seen yet"]
        if unseen:
            print(f"not seen yet: {', '.join(unseen)} - keys appear up to 24 h after they first tag billed usage")
        if inactive and not args.activate:
            print(f"inactive: {', '.join(inactive)} - activate with: `mlops cost tags --activate` (payer account)")
        if activated:
            print(f"activated: {', '.join(activated)} (takes up to 24 h; not retroactive)")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def command_cost(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if args.json and args.csv:
        raise UsageError("choose one of --json and --csv")
    if args.html and args.action != "summary":
        raise UsageError("--html draws the summary: `mlops cost summary --html <file>`")
    if args.html:
        check_page_path(args.html)
    handlers = {
        "execution": _execution,
        "experiment": _experiment,
        "summary": _summary,
        "prices": _prices,
        "tags": _tags,
    }
    return handlers[args.action](args, config)


def add_arguments(cost: argparse.ArgumentParser) -> None:
    cost.add_argument("action", choices=ACTIONS)
    cost.add_argument("target", nargs="?", help="execution: its ARN; experiment: the experiment id")
    cost.add_argument("--pipeline", choices=PIPELINES, help="one pipeline (default: both)")
    cost.add_argument("--latest", action="store_true", help="execution: the pipeline's newest execution")
    cost.add_argument("--since", help=f"window start: {SINCE_HELP} (default {DEFAULT_DAYS}d)")
    cost.add_argument("--reconcile", action="store_true", help="add one Cost Explorer query ($0.01 a page, cached)")
    cost.add_argument("--csv", action="store_true", help="step rows as CSV on stdout")
    cost.add_argument(
        "--html", type=Path, metavar="FILE", help="summary: write a page with cost per experiment over time"
    )
    cost.add_argument(
        "--refresh", action="store_true", help="prices: fetch from the Price List API, rewrite the snapshot"
    )
    cost.add_argument("--region", help="prices: the region (default: the unit's)")
    cost.add_argument("--activate", action="store_true", help="tags: activate the inactive cost tags (payer account)")
    cost.add_argument("--prices-dir", type=Path, help="where the price snapshots are (default: config/prices)")
