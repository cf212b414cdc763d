"""`mlops experiment run FILE.py:FUNCTION --on ID|latest (--local [--state-dir S] | --env E [--instance-type T])`.

An experiment is judged by the pipeline's own gate without becoming pipeline shape: the function receives the
execution's slices and returns a fitted estimator or the test slice's scores; the execution's Evaluate step, loaded as
it ran (`mlops step load`: its code, test slice, incumbent and arguments), scores it against the same incumbent on the
same fair rows (pipeline_defs/steps/experiment.py, in the step runtime); the training definition's own gate
conditions, evaluated on that report with the execution's parameters, give the verdict. The reports and an HTML page
go to <state dir>/experiments/<experiment id>/, moved there only when everything succeeded.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops import tracking
from mlops.common import UsageError, pipeline_name, shown
from mlops.local import read_assembly
from mlops.report.command import write_report
from mlops.report.local import find_execution, local_reader
from mlops.report.sources import EVALUATE, Execution, execution_report
from mlops.step_load import LoadedStep, load_local, write_record
from pipeline_defs.contract import Parameter
from pipeline_defs.local import LocalS3
from pipeline_defs.local.errors import ExpressionError
from pipeline_defs.local.expressions import condition_holds, evaluate, follow, resolve_parameters, text
from pipeline_defs.local.step_runtime import PROJECT_ROOT, steps_python

HELP = "judge a candidate (a function of the execution's slices) by the pipeline's own Evaluate and gate"
DRIVER = PROJECT_ROOT / "pipeline_defs" / "steps" / "experiment.py"
PROMOTING = (
    "to promote it: move the function into pipeline_defs/steps/ as a step script, declare it in the pipeline's DSL, "
    "contract and tests; `make review` shows the new step (README, 'From notebook to pipeline')"
)


@dataclass(frozen=True)
class Judgement:
    experiment: str
    execution: str
    passed: bool
    verdict: str  # one line: the gate's outcome and why
    evaluation: dict[str, Any]  # Evaluate's evaluation.json of the candidate
    folder: Path  # the experiment's reports and page
    page: Path
    tracked_in: str  # the MLflow experiment its execution is recorded in (the execution's ExperimentId)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("run",))
    parser.add_argument("function", metavar="FILE.py:FUNCTION", help="the experiment: a function of the slices")
    parser.add_argument("--on", required=True, metavar="EXECUTION", help="a training execution id, or latest")
    parser.add_argument("--local", action="store_true", help="a local execution (<state dir>); else --env E: AWS")
    parser.add_argument("--instance-type", default="ml.m5.large", help="with --env: the processing job's instance")
    parser.add_argument("--experiment-id", help="the experiment's id (default: FUNCTION-<UTC time>)")
    parser.add_argument("--assembly", type=Path, help="cdk synth output (default: cdk.out)")
    parser.add_argument(
        "--no-wait", action="store_true", help="with --env: start the job and return (its reports land in S3)"
    )
    parser.set_defaults(env=None)


def command_experiment(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local and args.env is None:
        raise UsageError("say where the execution is: --local (this machine's state dir) or --env E (AWS)")
    file, name = experiment_reference(args.function)
    experiment = args.experiment_id or f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}".replace("_", "-")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", experiment):
        raise UsageError(f"--experiment-id {experiment!r}: use letters, digits and -, at most 63 characters")
    if not args.local:
        from mlops.experiment_aws import submit  # boto3 only when asked for

        submitted = submit(args, config, file, name, experiment)
        if submitted is None:  # --no-wait: the job runs on; its verdict is in its reports
            return 0
        judged = submitted
    else:
        definition = read_assembly(args.assembly, config).definitions[pipeline_name(config, "training")]
        judged = judge_local(args.state_dir, config, args.on, {"function": f"{file}:{name}"}, experiment, definition)
    # In the state dir's store, nested under its execution's run when that execution was run and recorded here.
    tracking.log_experiment(args.state_dir, judged.tracked_in, judged.__dict__)
    print_judgement(judged, args.json)
    return 0


def experiment_reference(reference: str) -> tuple[Path, str]:
    file, _, name = reference.rpartition(":")
    if not file or not name.isidentifier():
        raise UsageError(f"{reference!r}: name the experiment as FILE.py:FUNCTION, e.g. notebooks/candidates.py:forest")
    if not Path(file).is_file():
        raise UsageError(f"{file}: no such file (the experiment's FILE.py:FUNCTION)")
    return Path(file).resolve(), name


def judge_local(
    state_dir: Path,
    config: EnvironmentConfig,
    execution: str,
    candidate: Mapping[str, str],
    experiment: str,
    definition: Mapping[str, Any],
) -> Judgement:
    """The candidate ({"function": FILE:NAME} | {"scores": CSV} | {"model_dir": DIR}) judged on a local training
    execution. Nothing is written to the state dir unless it succeeds."""
    record = json.loads(
        find_execution(state_dir, config, None if execution == "latest" else execution, "training").read_text()
    )
    slices = {step["name"]: step.get("outputs", {}) for step in record.get("steps", [])}.get("Preprocess", {})
    s3 = LocalS3(state_dir / "s3")

    def load_evaluate(folder: Path) -> LoadedStep:
        return load_local(state_dir, config, "training", record["execution_id"], "Evaluate", folder)

    paths = {name: s3.path(uri) for name, uri in slices.items() if name in ("train", "validation")}
    trial = Trial(state_dir, experiment, record["execution_id"], candidate, record.get("parameters", {}), definition)
    return judge(trial, load_evaluate, paths)


@dataclass(frozen=True)
class Trial:
    """One candidate's judgement: where its reports go, on which execution, and the gate that judges it."""

    state_dir: Path  # the reports go to <state dir>/experiments/<experiment>/
    experiment: str
    execution: str
    candidate: Mapping[str, str]  # {"function": FILE:NAME} | {"scores": CSV} | {"model_dir": DIR} (| "job": ARN)
    parameters: Mapping[str, Any]  # the execution's, which the gate's conditions read
    definition: Mapping[str, Any]  # the training definition: its gate


def judge(trial: Trial, load_evaluate: Callable[[Path], LoadedStep], slices: Mapping[str, Path]) -> Judgement:
    """The candidate judged by the driver, in the step runtime, on the execution's Evaluate as it ran (loaded into a
    folder by `load_evaluate`: `mlops step load`'s local or AWS loader); `slices`: the train and validation folders a
    {"function": ...} candidate is fitted on."""

    def run_driver(work: Path) -> None:
        write_record(load_evaluate(work / "evaluate"), work / "evaluate")  # the step parses its own arguments
        options = [f"--{key.replace('_', '-')}={value}" for key, value in trial.candidate.items()]
        if "function" in trial.candidate:
            options += [f"--train={slices['train']}", f"--validation={slices['validation']}"]
        done = subprocess.run(
            [
                steps_python(),
                str(DRIVER),
                f"--evaluate-folder={work / 'evaluate'}",
                f"--output-dir={work / 'evaluation'}",
                *options,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no error output")
            raise UsageError(f"experiment {trial.experiment}: {last.removeprefix('error: ')}")
        shutil.rmtree(work / "evaluate")  # a copy of the execution's inputs: `mlops step load` makes it again

    return record_experiment(trial, run_driver)


def record_experiment(trial: Trial, produce: Callable[[Path], None]) -> Judgement:
    """The gate's verdict on the evaluation.json that `produce(work)` leaves in work/evaluation, with the experiment's
    record and page, in <state dir>/experiments/<experiment>/: moved there only when everything succeeded (worked on
    beside the state's folders, so a failure leaves no trace). The local run and a processing job's reports
    (mlops/experiment_aws.py) both end here, so both print and write the same."""
    folder = new_experiment_folder(trial.state_dir, trial.experiment)
    with tempfile.TemporaryDirectory(dir=trial.state_dir, prefix=".experiment-") as scratch:
        work = Path(scratch)
        produce(work)
        report = json.loads((work / "evaluation" / "evaluation.json").read_text())
        passed, verdict = gate_verdict(trial.definition, trial.parameters, report)
        summary = {"experiment": trial.experiment, "execution": trial.execution, "candidate": dict(trial.candidate)}
        (work / "experiment.json").write_text(
            json.dumps({**summary, "passed": passed, "verdict": verdict}, indent=2) + "\n"
        )
        page = experiment_page(work, trial.experiment, trial.execution, verdict)
        folder.parent.mkdir(exist_ok=True)
        work.rename(folder)
    tracked_in = str(trial.parameters.get(Parameter.EXPERIMENT_ID.value, "adhoc"))  # its execution's MLflow experiment
    page_path = folder / page.name
    return Judgement(trial.experiment, trial.execution, passed, verdict, report, folder, page_path, tracked_in)


def new_experiment_folder(state_dir: Path, experiment: str) -> Path:
    """Where the experiment's reports go; UsageError when an experiment of that id already has them."""
    folder = state_dir / "experiments" / experiment
    if folder.exists():
        raise UsageError(f"experiment {experiment} already exists in {shown(folder.parent)}: pick another id")
    return folder


def print_judgement(judged: Judgement, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**judged.__dict__, "folder": str(judged.folder), "page": str(judged.page)}, indent=2))
    else:
        print(judged.evaluation["summary"])
        print(judged.verdict)
        print(f"reports: {shown(judged.folder)}; page: {shown(judged.page)}")


def experiment_page(work: Path, experiment: str, execution: str, verdict: str) -> Path:
    """The same page `mlops report` draws of an execution's Evaluate, for the experiment's reports."""
    view = Execution(
        name=experiment,
        title=f"experiment {experiment} on training execution {execution}",
        facts=[("experiment", experiment), ("execution", execution), ("gate", verdict)],
        steps=[],
        outputs={EVALUATE[0]: {EVALUATE[1]: str(work / "evaluation")}},
    )
    page = work / "report.html"
    write_report(execution_report(view, local_reader(LocalS3(work))), page)
    return page


class _ReportContext:
    """What the gate's conditions read: the execution's parameters and the candidate's evaluation.json."""

    def __init__(self, parameters: Mapping[str, Any], report: Mapping[str, Any]) -> None:
        self.parameters, self.report = parameters, report

    def get(self, reference: str) -> Any:
        root, _, name = reference.partition(".")
        if root != "Parameters":
            raise ExpressionError(f"the gate reads {reference}, which an experiment does not have")
        return self.parameters[name]

    def json_get(self, step: str, property_file: str, path: str) -> Any:
        return follow(self.report, path, f"{step}'s {property_file}")


def gate_verdict(
    definition: Mapping[str, Any], parameters: Mapping[str, Any], report: Mapping[str, Any]
) -> tuple[bool, str]:
    """The training definition's own gate (the condition step in front of its registration) on `report`."""
    steps = definition.get("Steps", [])
    gate = next(
        (
            step
            for step in steps
            if step.get("Type") == "Condition"
            and any(branch.get("Type") == "RegisterModel" for branch in step["Arguments"].get("IfSteps", []))
        ),
        None,
    )
    if gate is None:
        raise UsageError("the training definition has no condition step in front of its registration (no gate)")
    context = _ReportContext(resolve_parameters(definition.get("Parameters", []), parameters), report)
    if all(condition_holds(condition, context) for condition in gate["Arguments"].get("Conditions", [])):
        return True, f"gate {gate['Name']}: PASS (it would be registered); {PROMOTING}"
    fail = next((s for s in gate["Arguments"].get("ElseSteps", []) if s.get("Type") == "Fail"), None)
    reason = text(evaluate(fail["Arguments"].get("ErrorMessage", ""), context)) if fail else "its conditions are false"
    return False, f"gate {gate['Name']}: FAIL: {reason}"
