"""mlops: run the pipelines locally, manage the local model registry, render graphs, start runs, replay dead letters.

    mlops run training|evaluation|scoring --local [--param K=V ...] [--no-cache] [--jobs N] [--assembly cdk.out]
              [--env dev] [--state-dir .local] [--from STEP | --steps A,B [--source EXECUTION]]
    mlops cache clear [--pipeline training|evaluation|scoring] [--state-dir .local]
    mlops executions prune --keep N [--pipeline training|evaluation|scoring] [--dry-run] [--state-dir .local]
    mlops registry list|show N|approve [N] --reason TEXT|reject [N] --reason TEXT|diff N M (--env E | --local)
    mlops graph training|evaluation|scoring [--assembly cdk.out] [--env dev]
    mlops steps [--assembly cdk.out]
    mlops ui --local [--port 5000] [--state-dir .local]
    mlops start training|evaluation|scoring --env <env> [--experiment <id>] [--input-data-uri s3://...]
                [--param NAME=VALUE] [--from STEP | --steps A,B [--source ARN]]
    mlops demo [--assembly cdk.out] [--state-dir .local/demo]
    mlops dlq replay --env <env> [--trigger training|scoring] [--dry-run] [--max N]
                     [--queue-url URL --function-name NAME]
    mlops promote --env <env> (--version N | --latest-approved | --arn ARN) [--local [--state-dir .local]]
    mlops serve --local [--version N | --promoted] [--port 8080] [--sampling-percentage 100] [--state-dir .local]
    mlops cost execution|experiment|summary|prices|tags [ARN | EXPERIMENT] [--pipeline P --latest] [--since D]
               [--reconcile] [--csv] [--html FILE] [--refresh --region R] [--activate]
    mlops invoke (--local [--port 8080] | --env <env>) [--endpoint NAME] [--content-type T] [--accept T]
                 [--inference-id ID] [FILE | -]
    mlops ground-truth put FILE (--env <env> | --local [--state-dir .local]) [--hour YYYY-MM-DDTHH]
    mlops monitor --local [--version N] [--since YYYY-MM-DD|Nh|Nd] [--fail-on-violation] [--state-dir .local]
    mlops dataset put DIR --id ID (--env <env> | --local [--no-run] [--state-dir .local] [--assembly cdk.out])
    mlops report (EXECUTION | --latest [--pipeline P] | --monitoring-run RUN) (--local [--state-dir D] | --env E)
                 --html FILE
    mlops diff --env <env> [--assembly cdk.out]
    mlops lifecycle sync (--env <env> | --local [--state-dir .local]) [--status Deployed|PendingDeployment]
    mlops step load STEP --execution ID|latest [--pipeline P] (--local [--state-dir S] | --env E) --to DIR
    mlops experiment run FILE.py:FUNCTION --on ID|latest (--local [--state-dir S] | --env E [--instance-type T]
        [--no-wait])

`run` executes the definition `cdk synth` wrote into the assembly (pipeline_defs.local), with no Docker and no AWS
account; the local buckets are <state dir>/s3/local-landing and .../local-artifacts. `start`, `dlq`, `promote` (without
--local), `invoke --env`, `ground-truth put --env`, `report --env` and `cost` call AWS.
Every command takes `--json` for scripts. Progress goes to stderr, results to stdout.
Exit codes: 0 done (`demo`: the demonstration went as expected), 1 a pipeline run or an AWS call failed,
2 bad usage or input (one `error:` line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from config import ConfigError, EnvironmentConfig, load_config
from config.settings import ENVIRONMENT_NAMES
from mlops import diff, experiment, lifecycle, step_load, tracking
from mlops.aws import AwsCallFailed
from mlops.cache import command_cache, damaged_index_message
from mlops.common import SINCE_HELP, UsageError, default_assembly, default_state_dir, positive, shown, step_names
from mlops.cost.command import add_arguments as add_cost_arguments
from mlops.cost.command import command_cost
from mlops.dataset import command_dataset
from mlops.demo import command_demo
from mlops.dlq import command_dlq
from mlops.executions import command_executions
from mlops.graph import command_graph
from mlops.ground_truth import command_ground_truth
from mlops.invoke import command_invoke
from mlops.monitor import command_monitor
from mlops.promote import command_promote
from mlops.registry import command_registry
from mlops.report.command import add_arguments as add_report_arguments
from mlops.report.command import command_report
from mlops.run import command_run
from mlops.serve import command_serve
from mlops.start import command_start
from mlops.steps import command_steps
from pipeline_defs.graph import PIPELINES
from pipeline_defs.local import LocalRunError
from pipeline_defs.local.cache import DamagedCacheIndex

Command = Callable[[argparse.Namespace, EnvironmentConfig], int]
# Commands that may create their --state-dir; every other command only reads an existing one (check_state_dir).
STATE_CREATING_COMMANDS = frozenset({"demo", "dataset", "cost"})
COMMANDS: dict[str, Command] = {
    "run": command_run,
    "registry": command_registry,
    "graph": command_graph,
    "start": command_start,
    "steps": command_steps,
    "ui": tracking.command_ui,
    "lifecycle": lifecycle.command_lifecycle,
    "diff": diff.command_diff,
    "demo": command_demo,
    "dlq": command_dlq,
    "promote": command_promote,
    "serve": command_serve,
    "invoke": command_invoke,
    "ground-truth": command_ground_truth,
    "monitor": command_monitor,
    "cache": command_cache,
    "executions": command_executions,
    "cost": command_cost,
    "dataset": command_dataset,
    "report": command_report,
    "step": step_load.command_step,
    "experiment": experiment.command_experiment,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mlops", description=(__doc__ or "").splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--env", default="dev", help="environment of the unit (default: dev)")
        sub.add_argument("--sandbox", help="a developer sandbox of dev")
        sub.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        return sub

    def state_dir_option(sub: argparse.ArgumentParser, folder: str | None = None) -> None:
        default = default_state_dir() / folder if folder else default_state_dir()
        sub.add_argument("--state-dir", type=Path, default=default, help=f"local buckets, registry, cache ({default})")

    def assembly_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--assembly", type=Path, help="cdk synth output (default: cdk.out; a sandbox's: cdk.out.<sandbox>)"
        )

    def selection_options(sub: argparse.ArgumentParser, source: str) -> None:
        chosen = sub.add_mutually_exclusive_group()
        chosen.add_argument("--from", dest="from_step", metavar="STEP", help="run STEP and every step after it")
        chosen.add_argument(
            "--steps", type=step_names, metavar="A,B", help="run exactly these steps (and any between two of them)"
        )
        sub.add_argument(
            "--source",
            metavar=source.split()[-1].upper(),
            help=f"with --from/--steps: the {source} whose outputs stand in for the others (default: the newest "
            "that succeeded)",
        )

    def jobs_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--jobs", type=positive, default=None, help="independent steps run at once (default: the core count)"
        )

    run = command("run", "run a pipeline's synthesized definition on this machine")
    run.add_argument("pipeline", choices=PIPELINES)
    run.add_argument("--local", action="store_true", help="required: run locally (mlops start runs in AWS)")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline parameter")
    run.add_argument("--no-cache", action="store_true", help="run every step (and record fresh cache entries)")
    selection_options(run, "local execution id")
    assembly_option(run)
    state_dir_option(run)
    jobs_option(run)

    registry = command("registry", "list, show, approve, reject or diff model versions (SageMaker, or --local)")
    registry.add_argument("action", choices=("list", "show", "approve", "reject", "diff"))
    registry.add_argument("versions", nargs="*", type=int, metavar="N", help="version(s): show N, diff N M")
    registry.add_argument("--version", type=int, help="same as N (approve/reject default: newest pending)")
    registry.add_argument(
        "--reason", "--description", dest="reason", help="ApprovalDescription to record (required with --env)"
    )
    registry.add_argument("--local", action="store_true", help="the local registry under --state-dir")
    registry.add_argument("--group", help="model package group (default: the unit's)")
    state_dir_option(registry)

    ui = command("ui", tracking.UI_HELP)
    tracking.add_ui_arguments(ui)
    state_dir_option(ui)

    steps = command("steps", "how long each step's code and each experiment stood unchanged (stable: pipeline-ready)")
    assembly_option(steps)

    graph = command("graph", "print a pipeline's DAG as mermaid")
    graph.add_argument("pipeline", choices=PIPELINES)
    assembly_option(graph)

    start = command("start", "start the deployed pipeline in AWS (StartPipelineExecution)")
    start.add_argument("pipeline", choices=PIPELINES)
    start.add_argument(
        "--experiment", help="ExperimentId: tags every job and names the output path (--from/--steps: the source's)"
    )
    start.add_argument("--input-data-uri", help="InputDataUri (required for training)")
    start.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="another pipeline parameter (repeatable)"
    )
    selection_options(start, "pipeline execution ARN")

    diff.add_arguments(command("diff", diff.HELP))
    lifecycle_command = command("lifecycle", lifecycle.HELP)
    lifecycle.add_arguments(lifecycle_command)
    state_dir_option(lifecycle_command)

    demo = command("demo", "train on the bundled sample, approve, re-train (cached), evaluate on drifted data")
    assembly_option(demo)
    state_dir_option(demo, "demo")

    dlq = command("dlq", "re-send the dataset trigger's dead letters to its function (AWS)")
    dlq.add_argument("action", choices=("replay",))
    dlq.add_argument("--trigger", choices=("training", "scoring"), default="training", help="whose queue (training)")
    dlq.add_argument("--queue-url", help="the dead-letter queue (default: the Orchestration stack's output)")
    dlq.add_argument("--function-name", help="the start-pipeline function (default: the stack's output)")
    dlq.add_argument("--max", type=int, default=100, dest="max_messages", help="most messages to handle (100)")
    dlq.add_argument("--dry-run", action="store_true", help="report what would be replayed; change nothing")

    promote = command("promote", "pin an Approved version as what the unit serves (config/deployments.json)")
    chosen = promote.add_mutually_exclusive_group()
    chosen.add_argument("--version", type=int, help="the version of the unit's model package group")
    chosen.add_argument("--latest-approved", action="store_true", help="the newest Approved version")
    chosen.add_argument("--arn", help="a model package version ARN")
    promote.add_argument("--local", action="store_true", help="from the local registry, into <state dir>")
    promote.add_argument(
        "--deployments", type=Path, help="the pin file (default: config/deployments.json; --local: <state dir>)"
    )
    state_dir_option(promote)

    serve = command("serve", "serve a registered model version on 127.0.0.1 like its endpoint, with data capture")
    serve.add_argument("--local", action="store_true", help="required: serve on this machine")
    served = serve.add_mutually_exclusive_group()
    served.add_argument("--version", type=int, help="model package version (default: the newest Approved one)")
    served.add_argument(
        "--promoted", action="store_true", help="the version mlops promote --local pinned in <state dir>"
    )
    serve.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0 picks a free one)")
    serve.add_argument(
        "--sampling-percentage", type=int, default=100, help="data capture sampling, 0..100 (default 100; 0: off)"
    )
    assembly_option(serve)
    state_dir_option(serve)

    invoke = command("invoke", "send one request to the unit's endpoint: the deployed one (--env) or --local")
    invoke.add_argument("file", nargs="?", help="CSV or JSON request body (default, or -: stdin)")
    invoke.add_argument("--local", action="store_true", help="call mlops serve --local on 127.0.0.1")
    invoke.add_argument("--port", type=int, default=8080, help="the local endpoint's port (default 8080)")
    invoke.add_argument("--endpoint", help="endpoint name (default: the unit's, e.g. churn-dev-endpoint)")
    invoke.add_argument("--content-type", help="default: application/json for a .json file, else text/csv")
    invoke.add_argument("--accept", help="response type (default: the content type)")
    invoke.add_argument("--inference-id", help="InferenceId: recorded in the data capture, joins ground truth")

    ground_truth = command("ground-truth", "put labels (by inference id) where model-quality monitoring reads them")
    ground_truth.add_argument("action", choices=("put",))
    ground_truth.add_argument("file", help=".jsonl ground-truth records or .csv with the header inference_id,label")
    ground_truth.add_argument("--local", action="store_true", help="into the local landing bucket (<state dir>)")
    ground_truth.add_argument("--hour", help="UTC hour the labels were collected, YYYY-MM-DDTHH (default: now)")
    ground_truth.set_defaults(env=None)  # --env or --local: neither is assumed
    state_dir_option(ground_truth)

    monitor = command("monitor", "check the local endpoint's captured traffic against its version's baselines")
    monitor.add_argument("--local", action="store_true", help="required: the local endpoint's capture (<state dir>)")
    monitor.add_argument("--version", type=int, help="model package version (default: the one promoted --local)")
    monitor.add_argument("--since", help=f"only requests since {SINCE_HELP} (default: all)")
    monitor.add_argument("--fail-on-violation", action="store_true", help="exit 1 when there is any violation")
    state_dir_option(monitor)

    cache = command("cache", "forget the local step cache: the next run re-runs every step")
    cache.add_argument("action", choices=("clear",))
    cache.add_argument("--pipeline", choices=PIPELINES, help="default: both pipelines")
    state_dir_option(cache)

    executions = command("executions", "delete all but the newest N local executions (their work dirs and logs)")
    executions.add_argument("action", choices=("prune",))
    executions.add_argument("--keep", type=int, required=True, metavar="N", help="executions to keep per pipeline")
    executions.add_argument("--pipeline", choices=PIPELINES, help="default: both pipelines")
    executions.add_argument("--dry-run", action="store_true", help="report what would be removed; remove nothing")
    state_dir_option(executions)
    cost = command("cost", "estimate what runs, experiments and the endpoint cost; reconcile with the bill (AWS)")
    add_cost_arguments(cost)
    state_dir_option(cost)

    dataset = command("dataset", "put a folder into the landing bucket as a new dataset, marker last (starts training)")
    dataset.add_argument("action", choices=("put",))
    dataset.add_argument("dir", help="the folder whose files are the dataset")
    dataset.add_argument("--id", required=True, help="the new dataset id (letters, digits, . _ -), e.g. 2025-06-02")
    dataset.add_argument("--local", action="store_true", help="the local landing bucket, then the local training run")
    dataset.add_argument("--no-run", action="store_true", help="with --local: only put the files, start no run")
    dataset.set_defaults(env=None)  # AWS only when asked for: --env E (or --local)
    assembly_option(dataset)
    state_dir_option(dataset)
    jobs_option(dataset)

    for name, module in (("step", step_load), ("experiment", experiment)):  # each declares its own arguments
        module.add_arguments(sub := command(name, module.HELP))
        state_dir_option(sub)

    report = command("report", "draw one HTML page of a local execution's or monitoring run's reports (charts)")
    add_report_arguments(report)
    state_dir_option(report)
    return root


def check_state_dir(args: argparse.Namespace) -> None:
    """A command that reads local state refuses a --state-dir that does not exist (a typo must not start an empty one).

    The commands that create state may create it: `demo` (its own folder), `dataset put --local` (the first dataset)
    and `cost` (its Cost Explorer cache). The others read it - runs need a dataset put first - and commands that can
    work in AWS check it only with --local."""
    if "state_dir" not in args or args.command in STATE_CREATING_COMMANDS or not getattr(args, "local", True):
        return
    if not args.state_dir.exists():  # one that is a file is each command's to refuse, in its own words
        raise UsageError(
            f"--state-dir {shown(args.state_dir)} does not exist: check the path (state is created by mlops demo, or "
            "by the first mlops dataset put ... --local)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.env not in (None, *ENVIRONMENT_NAMES):
            raise UsageError(
                f"unknown environment {args.env!r}: use --env with one of {', '.join(ENVIRONMENT_NAMES)} "
                "(each is defined in config/environments.py)"
            )
        config = load_config(args.env, args.sandbox)
        if "assembly" in args and args.assembly is None:
            args.assembly = default_assembly(config)
        check_state_dir(args)
        try:
            return COMMANDS[args.command](args, config)
        except DamagedCacheIndex as error:  # the engine cannot word the command that fixes it: this CLI can
            raise UsageError(damaged_index_message(error, config)) from None
    except (UsageError, LocalRunError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except AwsCallFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `mlops ... | head`: the reader left; no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:  # outside a run (a run handles SIGINT itself and records the run as Stopped)
        print("error: interrupted", file=sys.stderr)
        return 1
    except OSError as error:  # the file system refused something (full disk, permissions): no traceback for that
        where = f" ({error.filename})" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
