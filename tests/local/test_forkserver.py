"""A job started through the preloaded server behaves as the same job started as a fresh interpreter: its arguments,
folder, environment, streams and exit; signals reach it; nothing it started outlives it or its killed client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from pipeline_defs.local.forkserver import CLIENT, SWITCH, preloaded
from pipeline_defs.local.step_runtime import steps_python
from tests.local.builders import alive, wait_for

pytestmark = pytest.mark.heavy(seconds=2)  # starts the step runtime's server (its imports take a second)

REPORTING_SCRIPT = """
import json, os, random, sys
print(json.dumps({
    "name": __name__, "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "stdin": sys.stdin.read(),
    "variable": os.environ.get("JOB_VAR"), "parent": os.getppid(), "session": os.getsid(0) == os.getpid(),
    "random": random.random(),
}))
print("to stderr", file=sys.stderr)
sys.exit(3)
"""


def start(command: list[str], folder: Path, **variables: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "JOB_VAR": "job", **variables}
    return subprocess.Popen(
        preloaded(command, environment),
        cwd=folder,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "code" / "job.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_job_through_the_server_sees_what_a_fresh_interpreter_would(tmp_path: Path) -> None:
    path = script(tmp_path, REPORTING_SCRIPT)
    command = [steps_python(), str(path), "--flag", "a b"]
    assert preloaded(command, os.environ)[:4] == [steps_python(), "-I", "-S", str(CLIENT)]

    reports = []
    for _ in range(2):
        job = start(command, tmp_path)
        out, err = job.communicate("input text", timeout=60)
        assert job.returncode == 3 and err == "to stderr\n"
        reports.append(json.loads(out))
    job = start(command, tmp_path, **{SWITCH: "off"})
    fresh = json.loads(job.communicate("input text", timeout=60)[0])

    for report in reports:
        assert report["parent"] != fresh["parent"]  # forked by the server, not started by the client
        for field in ("name", "argv", "cwd", "path0", "variable", "stdin", "session"):
            assert report[field] == fresh[field], field
    assert fresh["argv"] == [str(path), "--flag", "a b"] and fresh["path0"] == str(path.parent)
    assert reports[0]["random"] != reports[1]["random"]  # each job's own random state


@pytest.mark.parametrize(
    ("text", "code", "printed"),
    [
        ("raise ValueError('bad row')", 1, "ValueError: bad row"),
        ("import sys; sys.exit('error: one line')", 1, "error: one line"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM, ""),
    ],
)
def test_a_job_ends_with_the_code_and_message_python_would(tmp_path: Path, text: str, code: int, printed: str) -> None:
    job = start([steps_python(), str(script(tmp_path, text))], tmp_path)
    err = job.communicate(timeout=60)[1]
    assert job.returncode == code and printed in err


def test_a_signal_to_the_client_reaches_the_job(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    text = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    job = start([steps_python(), str(script(tmp_path, text))], tmp_path)
    assert wait_for(ready.exists, 30)
    os.killpg(job.pid, signal.SIGTERM)  # as `stopping.py` signals a job's group
    job.communicate(timeout=30)
    assert job.returncode == 7


@pytest.mark.parametrize("ending", ["exits", "client killed"])
def test_nothing_a_job_started_outlives_it(tmp_path: Path, ending: str) -> None:
    pids = tmp_path / "pids"
    text = (
        "import os, pathlib, subprocess, sys, time\n"
        "helper = subprocess.Popen(['sleep', '60'])\n"
        f"pathlib.Path({str(pids)!r}).write_text(f'{{os.getpid()}} {{helper.pid}}')\n"
        f"time.sleep({0 if ending == 'exits' else 60})\n"
    )
    job = start([steps_python(), str(script(tmp_path, text))], tmp_path)
    assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, 30)
    if ending == "client killed":
        os.killpg(job.pid, signal.SIGKILL)  # a timeout or a second stop signal
    job.communicate(timeout=30)
    started = [int(pid) for pid in pids.read_text().split()]
    assert wait_for(lambda: not any(alive(pid) for pid in started), 10)


def test_without_its_server_the_client_runs_the_script_itself(tmp_path: Path) -> None:
    path = script(tmp_path, REPORTING_SCRIPT)
    command = [steps_python(), "-I", "-S", str(CLIENT), str(tmp_path / "no-socket"), str(path), "x"]
    job = subprocess.run(command, cwd=tmp_path, input="", capture_output=True, text=True, timeout=60)
    assert job.returncode == 3 and json.loads(job.stdout)["argv"] == [str(path), "x"]


def test_jobs_with_other_interpreter_settings_get_a_server_started_with_them(tmp_path: Path) -> None:
    command = [steps_python(), str(tmp_path / "job.py")]
    one = preloaded(command, {**os.environ, "OMP_NUM_THREADS": "1", "JOB_VAR": "a"})
    same = preloaded(command, {**os.environ, "OMP_NUM_THREADS": "1", "JOB_VAR": "b"})
    other = preloaded(command, {**os.environ, "OMP_NUM_THREADS": "2"})
    assert one[4] == same[4] != other[4]  # the socket: per interpreter-level settings, not per job variable
    assert preloaded([steps_python(), "-c", "pass"], os.environ) == [steps_python(), "-c", "pass"]
