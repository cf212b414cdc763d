"""`mlops report (EXECUTION | --latest [--pipeline P] | --monitoring-run RUN | --compare A B) (--local | --env E)
--html FILE`.

Reads only the JSON reports a run's steps wrote (nothing is added to the jobs) and writes one self-contained HTML page,
atomically. Local executions and monitoring runs come from the state dir (--local); an execution in AWS (--env, by ARN)
from SageMaker and S3 (mlops/report/aws.py).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from config import EnvironmentConfig
from mlops.aws import client
from mlops.common import UsageError, pipeline_name, shown
from mlops.html_report import check_page_path, write_page
from mlops.report.aws import aws_execution, latest_execution, s3_reader
from mlops.report.compare import render_comparison
from mlops.report.local import find_execution, find_monitoring_run, local_execution, local_reader, monitoring_report
from mlops.report.page import render
from mlops.report.sources import Report, execution_report
from pipeline_defs.graph import PIPELINES
from pipeline_defs.local import LocalS3


def add_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("execution", nargs="?", help="a local execution id (mlops run --local prints it), or an ARN")
    report.add_argument("--pipeline", choices=PIPELINES, help="with --latest: whose newest execution")
    report.add_argument("--latest", action="store_true", help="the newest execution (of --pipeline; locally: of both)")
    report.add_argument(
        "--monitoring-run", metavar="RUN", help="a local monitoring run instead: its id, folder or s3:// URI"
    )
    report.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two executions side by side (ids or ARNs)")
    report.add_argument("--local", action="store_true", help="a local run (<state dir>); else --env E: AWS")
    report.add_argument("--html", type=Path, required=True, metavar="FILE", help="the page to write")
    report.set_defaults(env=None)  # AWS only when asked for: --env E (or --local)


def command_report(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    chosen = [bool(args.execution), args.latest, args.monitoring_run is not None, args.compare is not None]
    if sum(chosen) != 1:
        raise UsageError(
            "report on one thing: an EXECUTION, --latest [--pipeline P], --monitoring-run RUN or --compare A B"
        )
    if args.pipeline and not args.latest:
        raise UsageError("--pipeline picks whose newest execution --latest reports on: add --latest")
    if not args.local and args.env is None:
        raise UsageError("say where the run is: --local (this machine's state dir) or --env E (an execution in AWS)")
    check_page_path(args.html)
    if args.compare is not None:
        return _compare(args, config)
    report = (
        local_report(config, args.state_dir, args.execution, args.pipeline, args.monitoring_run)
        if args.local
        else _aws_report(args, config)
    )
    write_report(report, args.html)
    data, quality = report.data_quality, report.model_quality
    summary = {
        "html": str(args.html),
        "title": report.title,
        "data_quality_violations": len(data.violations) if data else None,
        "model_quality_violations": len(quality.violations) if quality else None,
    }
    print(json.dumps(summary, indent=2) if args.json else shown(args.html))
    return 0


def local_report(
    config: EnvironmentConfig,
    state_dir: Path,
    execution: str | None = None,
    pipeline: str | None = None,
    monitoring_run: str | None = None,
) -> Report:
    """The report of a local execution (its id; None: the newest, of `pipeline` if given) or monitoring run."""
    s3 = LocalS3(state_dir / "s3")
    if monitoring_run is not None:
        return monitoring_report(find_monitoring_run(state_dir, config, monitoring_run), s3)
    return execution_report(local_execution(find_execution(state_dir, config, execution, pipeline)), local_reader(s3))


def write_report(report: Report, html: Path) -> None:
    """The page of `report`, written atomically to `html`."""
    write_page(html, render(report, datetime.now(UTC)))


def _aws_report(args: argparse.Namespace, config: EnvironmentConfig) -> Report:
    if args.monitoring_run is not None:
        raise UsageError("--monitoring-run draws a run of mlops monitor --local: add --local")
    if args.latest and not args.pipeline:
        raise UsageError("in AWS, --latest needs --pipeline training|evaluation")
    sagemaker = client("sagemaker", config)
    arn = args.execution or latest_execution(sagemaker, pipeline_name(config, args.pipeline))
    return execution_report(aws_execution(sagemaker, arn), s3_reader(client("s3", config)))


def _compare(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    """Two executions on one page (local ids with --local, ARNs with --env)."""
    if args.local:
        first, second = (local_report(config, args.state_dir, execution) for execution in args.compare)
    else:
        sagemaker, s3 = client("sagemaker", config), client("s3", config)
        first, second = (execution_report(aws_execution(sagemaker, arn), s3_reader(s3)) for arn in args.compare)
    write_page(args.html, render_comparison(first, second, datetime.now(UTC)))
    print(json.dumps({"html": str(args.html), "compared": args.compare}, indent=2) if args.json else shown(args.html))
    return 0
