"""`mlops step load STEP --execution ID|latest [--pipeline P] (--local [--state-dir S] | --env E) --to DIR`.

Pulls one step of a finished execution into a folder as it ran: the code it ran (the step script and the step
library), a copy of each of its inputs, and its arguments, then writes `step.py` and `step.ipynb`, which call the
step script's own `run()` on them (the code in the repository stays the truth; the notebook pulls the step in with
its real inputs, as Kedro's `%load_node` does). Running either writes the step's outputs under DIR/output and prints
what its `run()` returned; with the same runtime (the step runtime, `.venv-steps/bin/python`) a deterministic step
reproduces them.

Locally the inputs come from the work dir of the execution that ran the step (a cache hit's source execution); with
--env from the job's S3 inputs (mlops/step_load_aws.py). The arguments are the job's own: a processing job's container
arguments, a training job's hyperparameters and channels, parsed by the script's own `parse_args` in the step runtime.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.common import UsageError, pipeline_name, shown
from mlops.report.local import find_execution
from pipeline_defs.contract import PROCESSING_ROOT
from pipeline_defs.graph import PIPELINES
from pipeline_defs.local.processing import processing_command
from pipeline_defs.local.step_runtime import steps_python

SCRIPT, NOTEBOOK, RECORD = "step.py", "step.ipynb", "loaded.json"
# Run in the step runtime: the step script's parse_args on the job's arguments, as {name: [kind, value]}.
_PARSE = """
import importlib.util, json, pathlib, sys
sys.path.insert(0, str(pathlib.Path(sys.argv[1]).parent))  # a training script's step library is beside it
spec = importlib.util.spec_from_file_location("loaded_step", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
parsed = vars(module.parse_args(sys.argv[2:]))
kinds = {name: ["path", str(value)] if isinstance(value, pathlib.PurePath) else ["value", value]
         for name, value in parsed.items()}
print(json.dumps(kinds))
"""


@dataclass(frozen=True)
class LoadedStep:
    """A step as it ran: where its code and inputs are (relative to DIR) and its arguments."""

    pipeline: str
    execution: str  # the execution asked for
    ran_in: str  # the execution whose job ran it (a cache hit's source)
    step: str
    step_type: str
    script: str  # the step script, relative to DIR
    argv: list[str]  # its command-line arguments, with paths relative to DIR
    environment: dict[str, str]  # what the script reads from its environment (a training job's channels)


HELP = "copy a step of an execution (its code, inputs and arguments) into a folder, with a script and notebook"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("load",))
    parser.add_argument("step", help="the step's name in the pipeline, e.g. Train or Evaluate")
    parser.add_argument("--execution", required=True, help="an execution id (an ARN with --env), or latest")
    parser.add_argument("--pipeline", choices=PIPELINES, default="training", help="whose execution (training)")
    parser.add_argument("--local", action="store_true", help="a local execution (<state dir>); else --env E: AWS")
    parser.add_argument("--to", type=Path, required=True, metavar="DIR", help="a new or empty folder to load it into")
    parser.set_defaults(env=None)  # AWS only when asked for: --env E (or --local)


def command_step(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local and args.env is None:
        raise UsageError("say where the execution is: --local (this machine's state dir) or --env E (AWS)")
    check_empty_folder(args.to)
    if args.local:
        loaded = load_local(args.state_dir, config, args.pipeline, args.execution, args.step, args.to)
    else:
        from mlops.step_load_aws import load_from_aws  # boto3 and S3 only when asked for

        loaded = load_from_aws(config, args.pipeline, args.execution, args.step, args.to)
    arguments = parsed_arguments(loaded, args.to)
    write_entry_points(loaded, arguments, args.to)
    if args.json:
        print(json.dumps({"folder": str(args.to), "script": SCRIPT, "notebook": NOTEBOOK, **loaded.__dict__}))
    else:
        print(
            f"loaded {loaded.step} of {loaded.execution} into {shown(args.to)}: run it with "
            f"`cd {shown(args.to)} && ../.venv-steps/bin/python {SCRIPT}` (the step runtime), or open {NOTEBOOK}"
            if args.to.parent.resolve() == Path.cwd()
            else f"loaded {loaded.step} of {loaded.execution} into {shown(args.to)}: run {SCRIPT} there with the "
            f"step runtime (.venv-steps/bin/python), or open {NOTEBOOK}"
        )
    return 0


def check_empty_folder(folder: Path) -> None:
    """DIR must be new or empty: nothing already there is ever overwritten."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"--to {shown(folder)} exists and is not an empty folder: name a new folder")


def step_record(record: Mapping[str, Any], step: str) -> dict[str, Any]:
    """The step's entry in an execution record; UsageError naming the steps it has when it did not succeed there."""
    steps = {entry["name"]: entry for entry in record.get("steps", [])}
    found = steps.get(step)
    if found is None:
        raise UsageError(f"no step {step} in execution {record['execution_id']}: it has {', '.join(steps) or 'none'}")
    if found.get("status") != "Succeeded":
        raise UsageError(f"step {step} did not succeed in execution {record['execution_id']} ({found.get('status')})")
    if found.get("type") not in ("Processing", "Training"):
        raise UsageError(f"step {step} is a {found.get('type')} step: only processing and training steps run code")
    if not found.get("properties"):
        raise UsageError(f"execution {record['execution_id']} predates recorded step arguments: run the pipeline again")
    chosen: dict[str, Any] = found
    return chosen


def load_local(
    state_dir: Path, config: EnvironmentConfig, pipeline: str, execution: str, step: str, folder: Path
) -> LoadedStep:
    record_path = find_execution(state_dir, config, None if execution == "latest" else execution, pipeline)
    record = json.loads(record_path.read_text())
    found = step_record(record, step)
    # A cache hit ran in its source execution; a step a selective run reused, in the execution it was reused from.
    ran_in = found.get("cache_source") or found.get("reused_from") or record["execution_id"]
    work = state_dir / "executions" / pipeline_name(config, pipeline) / ran_in / "steps" / step
    if not work.is_dir():
        raise UsageError(f"the work dir of {step} in execution {ran_in} is gone (pruned?): run the pipeline again")
    copies = {"code": "code", "input/data": "input/data"} if found["type"] == "Training" else {"input": "input"}
    if any((work / host).is_dir() for host in ("algo-1", "algo-2")):  # each instance had its own shard of the inputs
        raise UsageError(
            f"step {step} ran on several instances, each on a share of its inputs: load a single-instance step"
        )
    for source, destination in copies.items():
        if (work / source).is_dir():
            shutil.copytree(work / source, folder / destination, symlinks=False, dirs_exist_ok=True)
    script, argv, environment = job_arguments(found["type"], found["properties"])
    return LoadedStep(
        record["pipeline"], record["execution_id"], ran_in, step, found["type"], script, argv, environment
    )


def job_arguments(step_type: str, properties: Mapping[str, Any]) -> tuple[str, list[str], dict[str, str]]:
    """(the script, its arguments, its environment) of a job, every path relative to the loaded folder."""
    if step_type == "Training":
        hyperparameters = properties.get("HyperParameters", {})
        program = str(hyperparameters.get("sagemaker_program", "")).strip('"')
        argv = [
            item
            for key, value in hyperparameters.items()
            if not key.startswith("sagemaker_")
            for item in (f"--{key}", str(value).strip('"'))
        ]
        channels = [str(channel.get("ChannelName")) for channel in properties.get("InputDataConfig", [])]
        environment = {f"SM_CHANNEL_{name.upper()}": f"input/data/{name}" for name in channels}
        environment |= {"SM_MODEL_DIR": "output/model", "SM_OUTPUT_DATA_DIR": "output/data"}
        return f"code/{program}", argv, environment
    inside = re.compile(rf"(^|=){re.escape(PROCESSING_ROOT)}/")  # a container path, alone or as `name=path`
    command = [inside.sub(r"\g<1>", str(item)) for item in processing_command(properties)]
    return command[0], command[1:], {}


def parsed_arguments(loaded: LoadedStep, folder: Path) -> dict[str, list[Any]]:
    """{name: ["path" | "value", value]}: the script's own parse_args on the job's arguments, in the step runtime."""
    done = subprocess.run(
        [steps_python(), "-c", _PARSE, loaded.script, *loaded.argv],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", **loaded.environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        raise UsageError(f"{loaded.script} did not accept the job's arguments ({last}): is it a step script?")
    parsed: dict[str, list[Any]] = json.loads(done.stdout)
    return parsed


def write_entry_points(loaded: LoadedStep, arguments: Mapping[str, list[Any]], folder: Path) -> None:
    """step.py and step.ipynb: the step script's run() on the loaded inputs; loaded.json: what was loaded."""
    keywords = ",\n".join(
        f"    {name}={f'Path({value!r})' if kind == 'path' else repr(value)}"
        for name, (kind, value) in arguments.items()
    )
    header = (
        f'"""Step {loaded.step} of {loaded.pipeline} execution {loaded.execution}, loaded by `mlops step load`.\n\n'
        f"Its code is {loaded.script} (as it ran), its inputs the copies under input/; run() writes its outputs under\n"
        'output/ (run it from this folder, with the step runtime: .venv-steps/bin/python)."""\n'
    )
    setup = (
        "import importlib.util\nimport os\nimport sys\nfrom pathlib import Path\n\n"
        "os.chdir(Path(__file__).resolve().parent if '__file__' in globals() else Path.cwd())\n"
        f"sys.path.insert(0, {str(Path(loaded.script).parent)!r})  # the step library beside the script\n"
        f"spec = importlib.util.spec_from_file_location('step', {loaded.script!r})\n"
        "step = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(step)\n"
    )
    call = f"result = step.run(\n{keywords},\n)\nprint(result)\n"
    (folder / SCRIPT).write_text(f"{header}\n{setup}\n{call}")
    cells = [("markdown", header.strip().strip('"')), ("code", setup), ("code", call)]
    notebook = {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
            | ({"execution_count": None, "outputs": []} if kind == "code" else {})
            for kind, source in cells
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / NOTEBOOK).write_text(json.dumps(notebook, indent=1) + "\n")
    (folder / "output").mkdir(exist_ok=True)
    write_record(loaded, folder, arguments)


def write_record(loaded: LoadedStep, folder: Path, arguments: Mapping[str, list[Any]] | None = None) -> None:
    """loaded.json: what was loaded (the script, its job's arguments and environment; parsed, when known)."""
    (folder / RECORD).write_text(json.dumps({**loaded.__dict__, "arguments": arguments}, indent=2) + "\n")
