"""A runner killed outright (SIGKILL: no handler runs) takes its running jobs with it: every process of each job's
group ends, on one instance and on several (each instance waited on from a worker thread)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_defs.local.watchdog import watch
from tests.helpers import REPO_ROOT
from tests.local.builders import alive, pipeline, processing, wait_for

# Starts a helper process (in the job's group), writes "<its pid> <helper pid>" to PIDS_DIR/<its pid>, then sleeps.
pytestmark = pytest.mark.heavy(seconds=3)  # runners in processes of their own, killed, then waited on

SLEEPING_STEP = """
import os, pathlib, subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
pids = pathlib.Path(os.environ["PIDS_DIR"], str(os.getpid()))
pids.with_suffix(".tmp").write_text(f"{os.getpid()} {helper.pid}")
pids.with_suffix(".tmp").rename(pids)  # whole or not at all: the test reads it once it exists
time.sleep(120)
"""
RUN = """
import json, sys
from pathlib import Path
from pipeline_defs.local import LocalRunner
definition, state_dir = json.loads(sys.argv[1]), Path(sys.argv[2])
LocalRunner(definition, pipeline_name="p", state_dir=state_dir, region="eu-west-1").run()
"""


@pytest.mark.parametrize("instances", [1, 2])
def test_the_jobs_of_a_killed_runner_end_with_it(state_dir: Path, tmp_path: Path, instances: int) -> None:
    (state_dir / "s3" / "local-artifacts" / "code" / "report.py").write_text(SLEEPING_STEP)
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    step = processing("Sleep", environment={"PIDS_DIR": str(pids_dir)})
    step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = instances
    runner = subprocess.Popen(
        [sys.executable, "-c", RUN, json.dumps(pipeline(step)), str(state_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    pids: list[int] = []
    try:
        started = wait_for(lambda: len([p for p in pids_dir.iterdir() if not p.suffix]) == instances, 60)
        assert started, runner.communicate(timeout=5)
        pids = [int(pid) for path in pids_dir.iterdir() if not path.suffix for pid in path.read_text().split()]
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)

        assert len(pids) == 2 * instances
        assert wait_for(lambda: not any(alive(pid) for pid in pids), 5), [pid for pid in pids if alive(pid)]
    finally:
        runner.kill()
        runner.communicate()
        for pid in pids:  # nothing outlives the test, whatever it found
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_the_watchdog_kills_only_the_groups_still_running_when_its_input_ends() -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        lines = [f"+{ended.pid}\n".encode(), f"+{running.pid}\n".encode(), f"-{ended.pid}\n".encode()]
        assert watch(lines) == {running.pid}
        assert running.wait(timeout=5) == -signal.SIGKILL
    finally:
        running.kill()
        running.wait()
