"""Local runs on record in MLflow: an MLflow store under the state dir that `mlops ui --local` serves.

    <state dir>/mlflow/mlflow.db            the tracking store (SQLite, MLflow's own schema)
    <state dir>/mlflow/artifacts/<exp>/...  the runs' artifacts

After each local execution (`mlops run --local`, the demo's runs) and each `mlops monitor --local` run, the CLI logs:
one MLflow experiment per ExperimentId, a parent run per execution (its parameters, its status, tags for the
execution id, pipeline, dataset URI, registered version, and each step's code hash) and a nested run per step (its
type, status, cache use, duration, and the numbers of its reports as metrics, equal to the run summary's; its JSON
reports as artifacts). A monitoring run is one run in the experiment `monitoring`.

Logging reads what the run wrote, after the run: it never changes a cache key or a step's output. A store that cannot
be opened or written is one `warning:` line and the run's own outcome stands; an execution already logged is not
logged twice; concurrent runs take turns on a lock (SQLite is one file). `MLOPS_TRACKING=off` skips it (the test
suite sets it, but for the tests of this module and the README's demo line).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.contract import Parameter
from pipeline_defs.local import LocalS3, RunResult
from pipeline_defs.local.files import locked
from pipeline_defs.local.results import code_objects, numbers

STORE_DIR = "mlflow"
# Beside an execution's execution.json once it is logged: {"experiment_id", "run_id"} (its report page links it).
RUN_RECORD = "mlflow_run.json"
EXECUTION_TAG = "mlops.execution_id"
# Marks the run that stands for a whole execution (its steps' runs carry the execution id too).
ROLE_TAG = "mlops.role"
MONITORING_EXPERIMENT = "monitoring"
# Reports worth keeping beside a step's run: JSON documents and pages, not data.
ARTIFACT_SUFFIXES = (".json", ".html")
MAX_ARTIFACT_BYTES = 5_000_000


def enabled() -> bool:
    return os.environ.get("MLOPS_TRACKING", "on").lower() not in ("off", "0", "false")


def store_uri(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / STORE_DIR / 'mlflow.db').resolve()}"


def log_execution(state_dir: Path, result: RunResult, s3: LocalS3) -> str | None:
    """Log one local execution (parent run + a nested run per step); its run id, or None (skipped or failed)."""
    if not enabled():
        return None
    return _guarded(state_dir, lambda client: _log_execution(client, state_dir, result, s3))


def log_monitoring(state_dir: Path, run: Mapping[str, Any]) -> str | None:
    """Log one `mlops monitor --local` run (its outcome and numbers) in the experiment `monitoring`."""
    if not enabled():
        return None
    return _guarded(state_dir, lambda client: _log_monitoring(client, state_dir, run))


def log_experiment(state_dir: Path, name: str, judged: Mapping[str, Any]) -> str | None:
    """Log one `mlops experiment run` (its verdict and Evaluate's numbers) as a run nested under its execution's record
    in the MLflow experiment `name` (the execution's ExperimentId)."""
    if not enabled():
        return None
    return _guarded(state_dir, lambda client: _log_experiment(client, state_dir, name, judged))


def _guarded(state_dir: Path, log: Any) -> str | None:
    """Run `log(client)` under the store's lock; any failure is one warning line, never the command's failure."""
    try:
        folder = state_dir / STORE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        with locked(folder / "store"):
            run_id: str | None = log(_client(state_dir))
            return run_id
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"warning: not tracked in MLflow ({first_line}); the run itself is unaffected", file=sys.stderr)
        return None


def _client(state_dir: Path) -> Any:
    import logging

    from mlflow.tracking import MlflowClient

    # MLflow announces creating and migrating its tables at INFO: not this command's output.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    database = state_dir / STORE_DIR / "mlflow.db"
    if not database.exists():  # a copy of an empty store of this MLflow version: seconds of migrations saved
        shutil.copyfile(_empty_store(), database)
    return MlflowClient(tracking_uri=store_uri(state_dir))


def _empty_store() -> Path:
    """An empty store, its tables created by this MLflow version once per machine (cached, written atomically)."""
    from importlib.metadata import version

    from mlflow.tracking import MlflowClient

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops"
    template = cache / f"mlflow-{version('mlflow')}-empty.db"
    if not template.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as building:
            database = Path(building) / "mlflow.db"
            MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()  # creates every table
            os.replace(database, template)
    return template


def _experiment(client: Any, state_dir: Path, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    artifacts = (state_dir / STORE_DIR / "artifacts" / name).resolve().as_uri()
    return str(client.create_experiment(name, artifact_location=artifacts))


def _already_logged(client: Any, experiment: str, execution: str) -> str | None:
    """The run id of the execution's (or monitoring run's) record, if it was logged before."""
    wanted = f"tags.`{EXECUTION_TAG}` = '{execution}' and tags.`{ROLE_TAG}` = 'record'"
    runs = client.search_runs([experiment], filter_string=wanted, max_results=1)
    return str(runs[0].info.run_id) if runs else None


def _log_execution(client: Any, state_dir: Path, result: RunResult, s3: LocalS3) -> str:
    from mlflow.entities import Metric, Param, RunTag

    experiment = _experiment(client, state_dir, str(result.parameters.get(Parameter.EXPERIMENT_ID.value, "adhoc")))
    logged = _already_logged(client, experiment, result.execution_id)
    if logged is not None:
        return logged
    tags = {
        EXECUTION_TAG: result.execution_id,
        ROLE_TAG: "record",
        "mlops.pipeline": result.pipeline,
        "mlops.status": result.status,
        "mlops.dataset": str(result.parameters.get(Parameter.INPUT_DATA_URI.value, "")),
        "mlflow.runName": f"{result.pipeline} {result.execution_id}",
    }
    if result.registered:
        tags["mlops.registered_version"] = str(result.registered["version"])
    if result.source_execution:
        tags["mlops.source_execution"] = result.source_execution
    tags |= {f"mlops.code.{s.name}": " ".join(code) for s in result.steps if (code := code_objects(s.properties))}
    parent = client.create_run(experiment, tags=tags)
    parent_id = parent.info.run_id
    params = [Param(name, str(value)[:6000]) for name, value in sorted(result.parameters.items())]
    client.log_batch(parent_id, params=params, metrics=[Metric("seconds", result.seconds, 0, 0)])
    for step in result.steps:
        step_tags = {
            "mlflow.parentRunId": parent_id,
            "mlflow.runName": step.name,
            EXECUTION_TAG: result.execution_id,
            "mlops.step_type": step.type,
            "mlops.step_status": step.status,
        }
        if step.reused_from:
            step_tags["mlops.reused_from"] = step.reused_from
        child = client.create_run(experiment, tags=step_tags)
        prefix = f"{step.name}."
        metrics = [
            Metric(name.removeprefix(prefix), value, 0, 0)
            for name, value in sorted(result.metrics.items())
            if name.startswith(prefix)
        ]
        metrics.append(Metric("seconds", step.seconds, 0, 0))
        params = [Param("cache_hit", str(step.cache_hit)), Param("status", step.status)]
        client.log_batch(
            child.info.run_id, metrics=metrics, params=params, tags=[RunTag("mlops.message", step.message[:5000])]
        )
        for name, uri in step.outputs.items():
            for path in _report_files(s3, uri):
                client.log_artifact(child.info.run_id, str(path), artifact_path=name)
        client.set_terminated(child.info.run_id, status=_mlflow_status(step.status))
    client.set_terminated(parent_id, status=_mlflow_status(result.status))
    record = {"experiment_id": experiment, "run_id": parent_id, "store": STORE_DIR}
    write_atomically(Path(result.execution_dir) / RUN_RECORD, json.dumps(record) + "\n")  # its page links the run
    return str(parent_id)


def _log_monitoring(client: Any, state_dir: Path, run: Mapping[str, Any]) -> str:
    from mlflow.entities import Metric, Param

    experiment = _experiment(client, state_dir, MONITORING_EXPERIMENT)
    outputs = str(run.get("outputs", ""))
    logged = _already_logged(client, experiment, outputs)
    if logged is not None:
        return logged
    tags = {EXECUTION_TAG: outputs, ROLE_TAG: "record", "mlflow.runName": Path(outputs).name}
    created = client.create_run(experiment, tags=tags)
    numbers: dict[str, float] = {}
    for section in ("data_quality", "model_quality"):
        for key, value in (run.get(section) or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                numbers[f"{section}.{key}"] = float(value)
    params = [Param(key, str(value)) for key, value in run.items() if isinstance(value, str | int) and key != "outputs"]
    client.log_batch(created.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in numbers.items()], params=params)
    client.set_terminated(created.info.run_id)
    return str(created.info.run_id)


def _log_experiment(client: Any, state_dir: Path, name: str, judged: Mapping[str, Any]) -> str:
    from mlflow.entities import Metric, Param

    experiment = _experiment(client, state_dir, name)
    parent = _already_logged(client, experiment, str(judged["execution"]))
    tags = {EXECUTION_TAG: str(judged["execution"]), ROLE_TAG: "experiment"}
    tags |= {
        "mlflow.runName": f"experiment {judged['experiment']}",
        **({"mlflow.parentRunId": parent} if parent else {}),
    }
    created = client.create_run(experiment, tags=tags)
    metrics = [Metric(key, value, 0, 0) for key, value in numbers(judged["evaluation"], "Evaluation").items()]
    params = [Param("experiment", str(judged["experiment"])), Param("passed", str(judged["passed"]))]
    client.log_batch(created.info.run_id, metrics=metrics, params=params)
    client.set_terminated(created.info.run_id)
    return str(created.info.run_id)


def _report_files(s3: LocalS3, uri: str) -> list[Path]:
    """The step output's reports (JSON, HTML) under `uri` in the local buckets, small ones only."""
    if not uri.startswith("s3://"):
        return []
    return [
        path
        for _, path in s3.objects(uri)
        if path.suffix in ARTIFACT_SUFFIXES and path.stat().st_size <= MAX_ARTIFACT_BYTES
    ]


def _mlflow_status(status: str) -> str:
    return {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}.get(status, "FINISHED")


def command_ui(args: argparse.Namespace, config: Any) -> int:
    """`mlops ui --local [--port 5000]`: the MLflow UI on 127.0.0.1 over the state dir's store, until Ctrl-C."""
    from mlops.common import UsageError, shown
    from mlops.endpoint import MAX_PORT

    if not args.local:
        raise UsageError("mlops ui serves the local store: pass --local (in AWS, open the unit's managed MLflow)")
    if not 0 < args.port <= MAX_PORT:
        raise UsageError(f"--port {args.port}: use a port between 1 and {MAX_PORT}")
    database = args.state_dir / STORE_DIR / "mlflow.db"
    if not database.is_file():
        raise UsageError(f"no MLflow store in {shown(args.state_dir)} yet: run a pipeline there (mlops run --local)")
    with socket.socket() as probe:  # a taken port is one line here, not the server's traceback
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError:
            raise UsageError(f"port {args.port} on 127.0.0.1 is in use: pass --port with a free one") from None
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri(args.state_dir)]
    command += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    print(f"MLflow UI on http://127.0.0.1:{args.port} for {shown(args.state_dir)} (Ctrl-C stops it)", flush=True)
    return _serve_until_stopped(command)


def _serve_until_stopped(command: list[str]) -> int:
    """Run the server in a session of its own until it ends or SIGINT/SIGTERM reach this process (then it is
    stopped, and this exits 0); the runner's watchdog kills it should this process be killed outright."""
    from pipeline_defs.local.watchdog import Watchdog, kill_group

    server = subprocess.Popen(command, start_new_session=True)
    watchdog = Watchdog()
    watchdog.watch(server.pid)
    stopped_by: list[int] = []

    def stop(number: int, _frame: Any) -> None:
        stopped_by.append(number)
        kill_group(server.pid, signal.SIGTERM)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            code = server.wait(timeout=None)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            if server.poll() is None:  # not gone within 10 s of the stop: killed
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    kill_group(server.pid, signal.SIGKILL)
                    server.wait()
    finally:
        watchdog.forget(server.pid)
        watchdog.close()
    if stopped_by:
        print(f"MLflow UI stopped ({signal.Signals(stopped_by[0]).name})", file=sys.stderr)
        return 0
    if code != 0:
        print(f"error: the MLflow server ended with exit code {code} (its output is above)", file=sys.stderr)
        return 1
    return 0


UI_HELP = "the MLflow UI on 127.0.0.1 over the local runs' tracking store (<state dir>/mlflow)"


def add_ui_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--local", action="store_true", help="required: the local store")
    sub.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
