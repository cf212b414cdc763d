"""Local runs on record in MLflow (`mlops.tracking`): a parent run per execution with a nested run per step whose
metrics equal the run's, read back with the MLflow client; never twice, never failing a run, safe when concurrent;
`mlops ui --local` answers over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlops import tracking
from pipeline_defs.local import LocalS3, RunResult
from tests.cli.conftest import cli, one_error_line
from tests.local.builders import pipeline, processing, score_of

pytestmark = pytest.mark.heavy(seconds=3)  # MLflow: its import alone takes seconds in every process


@pytest.fixture(autouse=True)
def tracking_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_TRACKING")


SEARCH = "api/2.0/mlflow/experiments/search?max_results=5"


def two_steps() -> dict:
    first = processing("First", "--score", "0.25")
    second = processing("Second", "--score", score_of("First"))
    return pipeline(first, second)


def client(state_dir: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking.store_uri(state_dir))


def logged(state_dir: Path, execution: str) -> list:
    found = client(state_dir)
    [experiment] = [e for e in found.search_experiments() if e.name == "exp"]
    return found.search_runs([experiment.experiment_id], filter_string=f"tags.`mlops.execution_id` = '{execution}'")


def test_an_execution_is_a_parent_run_with_a_nested_run_per_step_carrying_its_metrics(run, state_dir) -> None:
    result: RunResult = run(two_steps())

    run_id = tracking.log_execution(state_dir, result, LocalS3(state_dir / "s3"))

    runs = logged(state_dir, result.execution_id)
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_id == run_id and parent.info.status == "FINISHED"
    # Beside the execution, for its report page's link to the run.
    recorded = json.loads((Path(result.execution_dir) / tracking.RUN_RECORD).read_text())
    assert recorded["run_id"] == run_id and recorded["experiment_id"] == parent.info.experiment_id
    assert parent.data.tags["mlops.pipeline"] == "demo-pipeline" and parent.data.params["ExperimentId"] == "exp"
    steps = {r.data.tags["mlflow.runName"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id}
    assert set(steps) == {"First", "Second"}
    for name, step in steps.items():
        expected = {
            key.removeprefix(f"{name}."): value for key, value in result.metrics.items() if key.startswith(name)
        }
        assert {k: v for k, v in step.data.metrics.items() if k != "seconds"} == expected
    assert steps["Second"].data.metrics["Report.score"] == 0.25
    artifacts = client(state_dir).list_artifacts(steps["First"].info.run_id, "out")
    assert [Path(a.path).name for a in artifacts] == ["report.json"]  # the report, not the data.csv beside it


def test_logging_an_execution_again_adds_nothing(run, state_dir) -> None:
    result = run(two_steps())
    s3 = LocalS3(state_dir / "s3")
    first = tracking.log_execution(state_dir, result, s3)
    assert tracking.log_execution(state_dir, result, s3) == first
    assert len(logged(state_dir, result.execution_id)) == 3


def test_an_experiment_is_a_run_nested_under_the_execution_it_was_judged_on(run, state_dir) -> None:
    result = run(two_steps())
    parent = tracking.log_execution(state_dir, result, LocalS3(state_dir / "s3"))
    evaluation = {"candidate_score": 0.84, "comparison": {"lower_bound": -0.05, "rows": 392}, "summary": "text"}
    judged = {"experiment": "logistic-1", "execution": result.execution_id, "passed": True, "evaluation": evaluation}

    run_id = tracking.log_experiment(state_dir, "exp", judged)

    [experiment] = [r for r in logged(state_dir, result.execution_id) if r.info.run_id == run_id]
    assert experiment.data.tags["mlflow.parentRunId"] == parent and experiment.data.tags["mlops.role"] == "experiment"
    assert experiment.data.metrics == {
        "Evaluation.candidate_score": 0.84,
        "Evaluation.comparison.lower_bound": -0.05,
        "Evaluation.comparison.rows": 392.0,
    }
    assert experiment.data.params == {"experiment": "logistic-1", "passed": "True"}


def test_a_broken_store_is_one_warning_and_never_fails_the_run(run, state_dir, capsys) -> None:
    result = run(two_steps())
    (state_dir / "mlflow").mkdir()
    (state_dir / "mlflow" / "mlflow.db").write_text("not a database")

    assert tracking.log_execution(state_dir, result, LocalS3(state_dir / "s3")) is None

    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: not tracked in MLflow (") and line.endswith("the run itself is unaffected")


@pytest.mark.heavy(seconds=8)  # two processes importing MLflow
def test_concurrent_runs_both_land_in_the_store(run, state_dir) -> None:
    """Two processes log at once: the store's lock makes them take turns; both executions are on record."""
    results = [run(two_steps()), run(two_steps())]
    script = (
        "import json, sys; from pathlib import Path; from mlops import tracking; "
        "from pipeline_defs.local import LocalS3, RunResult, StepResult; "
        "d = json.loads(sys.argv[2]); d['steps'] = [StepResult(**s) for s in d['steps']]; "
        "print(tracking.log_execution(Path(sys.argv[1]), RunResult(**d), LocalS3(Path(sys.argv[1]) / 's3')))"
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(state_dir), json.dumps(r.to_dict())], stdout=subprocess.PIPE, text=True
        )
        for r in results
    ]
    outputs = [writer.communicate(timeout=120)[0].strip() for writer in writers]
    assert all(writer.returncode == 0 for writer in writers) and "None" not in outputs
    for result in results:
        assert len(logged(state_dir, result.execution_id)) == 3


@pytest.mark.heavy(seconds=10)  # an MLflow server's start
def test_mlops_ui_serves_the_store_over_http(run, state_dir) -> None:
    result = run(two_steps())
    tracking.log_execution(state_dir, result, LocalS3(state_dir / "s3"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "mlops.cli", "ui", "--local", "--state-dir", str(state_dir), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + 90, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5"
                ) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert answer is not None, server.stdout.read().decode() if server.poll() is not None else "no answer in 90 s"
        assert "exp" in {experiment["name"] for experiment in answer["experiments"]}
        # SIGTERM (as a terminal's Ctrl-C, or a supervisor): the server stops with it, the command exits 0.
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
        assert server.returncode == 0 and "MLflow UI stopped (SIGTERM)" in output, output
        with socket.socket() as again:  # nothing left listening (SO_REUSEADDR: a closed connection's TIME_WAIT is not)
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
            again.listen()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def test_the_ui_needs_a_store_local_and_a_free_port(run, state_dir, tmp_path, capsys) -> None:
    code, _, err = cli(capsys, "ui", "--local", "--state-dir", str(tmp_path))
    assert code == 2 and "no MLflow store in" in one_error_line(err)
    tracking.log_execution(state_dir, run(two_steps()), LocalS3(state_dir / "s3"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, _, err = cli(capsys, "ui", "--local", "--state-dir", str(state_dir), "--port", port)
    assert code == 2 and f"port {port} on 127.0.0.1 is in use: pass --port with a free one" in one_error_line(err)
    code, _, err = cli(capsys, "ui", "--state-dir", str(tmp_path))
    assert code == 2 and "pass --local" in one_error_line(err)
