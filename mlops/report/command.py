"""`mlops report (EXECUTION_ID | --pipeline P --latest | --monitoring-run RUN) --local --html FILE`.

Reads only the JSON/CSV reports a local run wrote (nothing is added to the jobs) and writes one self-contained HTML
page, atomically. Local-only for now: the same page for an execution in AWS would read the same files from S3.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from config import EnvironmentConfig
from mlops.common import PIPELINES, UsageError, shown
from mlops.html_report import check_page_folder, write_page
from mlops.report.page import render
from mlops.report.sources import Report, execution_report, find_execution, find_monitoring_run, monitoring_report
from pipeline_defs.local import LocalS3


def add_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("execution", nargs="?", help="a local execution id (mlops run --local prints it)")
    report.add_argument("--pipeline", choices=PIPELINES, help="with --latest: whose newest execution")
    report.add_argument("--latest", action="store_true", help="the newest execution (of --pipeline, else of both)")
    report.add_argument(
        "--monitoring-run", metavar="RUN", help="a monitoring run instead: its id, folder or s3:// URI (mlops monitor)"
    )
    report.add_argument("--local", action="store_true", help="required: reports of local runs (<state dir>)")
    report.add_argument("--html", type=Path, required=True, metavar="FILE", help="the page to write")


def command_report(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError("mlops report is local-only for now: pass --local (reports of runs in AWS are not drawn yet)")
    chosen = [bool(args.execution), args.latest, args.monitoring_run is not None]
    if sum(chosen) != 1:
        raise UsageError("report on one thing: an EXECUTION_ID, --latest [--pipeline P] or --monitoring-run RUN")
    if args.pipeline and not args.latest:
        raise UsageError("--pipeline picks whose newest execution --latest reports on: add --latest")
    check_page_folder(args.html)
    s3 = LocalS3(args.state_dir / "s3")
    report: Report
    if args.monitoring_run is not None:
        report = monitoring_report(find_monitoring_run(args.state_dir, config, args.monitoring_run), s3)
    else:
        report = execution_report(find_execution(args.state_dir, config, args.execution, args.pipeline), s3)
    write_page(args.html, render(report, datetime.now(UTC)))
    data = report.data_quality
    summary = {
        "html": str(args.html),
        "title": report.title,
        "data_quality_violations": len(data.violations) if data else None,
        "model_quality_violations": len(report.model_quality.violations) if report.model_quality else None,
    }
    print(json.dumps(summary, indent=2) if args.json else shown(args.html))
    return 0
