"""Job processes end with the process that runs them, however it ends: the watchdog (this file, run as a script).

Each job's process leads its own session (so the terminal's Ctrl-C reaches `mlops`, not the step). When `mlops` is
killed outright (SIGKILL, the OOM killer), nothing would stop its jobs: they would be re-parented and run on, writing
into a run nobody records. A parent-death signal (Linux's prctl PR_SET_PDEATHSIG) is not enough: it reaches a job's
own process but not the processes the job started, it fires when the *thread* that started the job ends (steps and
instances start from worker threads), it needs a preexec_fn (unsafe in a process with threads) and it is Linux only.

So a run that starts a job also starts one watchdog: this file, run by the same interpreter in isolated mode (it
imports only the standard library) in a session of its own, so no signal meant for `mlops` or a job reaches it. The
runner writes "+<group>" to its stdin when a job's process group starts and "-<group>" once the group is gone. Only
the runner holds the pipe's write end, so the watchdog sees its input end when the runner closes it after the run,
or when the kernel closes it because the runner died, in whatever way: it then SIGKILLs every group still listed and
exits. After a run that ended normally, none is listed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable


class Watchdog:
    """The runner's side: the watchdog starts with the first group it is told about, and ends at `close`."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def watch(self, group: int) -> None:
        """Kill process group `group` should the runner die before it says `forget(group)`."""
        self._tell(f"+{group}\n")

    def forget(self, group: int) -> None:
        self._tell(f"-{group}\n")

    def close(self) -> None:
        """The watchdog ends (killing whatever group it still watches: none, after a run that ended normally)."""
        with self._lock:
            if self._process is not None and self._process.stdin is not None:
                self._process.stdin.close()
                self._process.wait()
            self._process = None

    def _tell(self, line: str) -> None:
        with self._lock:
            if self._process is None:
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-S", __file__],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,  # it holds none of the runner's output open (a reader waits for its end)
                    stderr=subprocess.DEVNULL,
                    bufsize=0,  # each line in one write: the watchdog never reads half of one
                    start_new_session=True,
                )
            if self._process.stdin is not None:
                with contextlib.suppress(OSError):  # a watchdog killed by hand: the jobs still end as they would
                    self._process.stdin.write(line.encode())


def kill_group(group: int, number: signal.Signals) -> None:
    """Signal every process of a group; one that has already ended is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, number)


def watch(lines: Iterable[bytes]) -> set[int]:
    """Kills (SIGKILL) the groups still listed when `lines` ends; returns them."""
    groups: set[int] = set()
    for line in lines:
        group = int(line[1:])
        if line.startswith(b"+"):
            groups.add(group)
        else:
            groups.discard(group)
    for group in groups:
        kill_group(group, signal.SIGKILL)
    return groups


if __name__ == "__main__":
    watch(sys.stdin.buffer)
