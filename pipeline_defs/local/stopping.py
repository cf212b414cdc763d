"""How a run's job processes end: at their own end, at their timeout, on a stop, and with the runner.

Each job's process leads its own process group (a new session: the terminal's Ctrl-C reaches `mlops`, not the step).
`Stopping` turns SIGINT/SIGTERM during a run into a stop: every running step's group gets SIGTERM, then SIGKILL after
`STOP_GRACE_SECONDS` (or at a second signal), the step ends as `RunStopped`, and no later step starts. A job's group is
killed when its own process exits, so nothing it started outlives it; and should the runner itself be killed, the
run's watchdog (`watchdog.py`) kills the groups still running.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from types import FrameType

from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.watchdog import Watchdog, kill_group

# How long a stopped step may take to exit on SIGTERM before its process group is killed (SageMaker's StopProcessingJob
# likewise sends SIGTERM, then SIGKILL).
STOP_GRACE_SECONDS = 5.0
# How often a waiting runner looks whether a stop's grace period is over.
_POLL_SECONDS = 0.2


class RunStopped(StepFailed):
    """The run was asked to stop (SIGINT/SIGTERM) while this step ran or before it started."""


class Stopping:
    """SIGINT/SIGTERM during a run: stop every running job's process group; no later step starts."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.requested_at = 0.0
        self._groups: set[int] = set()
        self._lock = threading.Lock()
        self._watchdog = Watchdog()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """For the block (a run): SIGINT and SIGTERM stop it, and no job process outlives this process.

        Signal handlers are installed only from the main thread (the only one that can install them).
        """
        with contextlib.closing(self._watchdog):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {number: signal.signal(number, self._handle) for number in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        again = self.signal_name is not None
        if not again:
            self.signal_name, self.requested_at = signal.Signals(number).name, time.monotonic()
        self._signal_groups(signal.SIGKILL if again else signal.SIGTERM)

    def check(self) -> None:
        """RunStopped once a stop was asked for."""
        if self.signal_name is not None:
            raise RunStopped(f"stopped by {self.signal_name}")

    def wait(self, process: subprocess.Popen[str], timeout: float | None) -> tuple[str, bool]:
        """(the job's stderr, whether it ran out of time) once its process group is gone.

        The group is killed at the timeout, after a stop's grace period, and when the job's own process has exited
        (so a background process it left behind can neither hold its stderr open nor outlive the step).
        """
        with self._lock:
            self._groups.add(process.pid)
        self._watchdog.watch(process.pid)
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        timed_out = False
        try:
            while True:
                try:
                    return process.communicate(timeout=_POLL_SECONDS)[1], timed_out
                except subprocess.TimeoutExpired:
                    now = time.monotonic()
                    timed_out = timed_out or (deadline is not None and now >= deadline and process.poll() is None)
                    stop_overdue = self.signal_name is not None and now - self.requested_at >= STOP_GRACE_SECONDS
                    if timed_out or stop_overdue or process.poll() is not None:
                        kill_group(process.pid, signal.SIGKILL)
        finally:
            with self._lock:
                self._groups.discard(process.pid)
            kill_group(process.pid, signal.SIGKILL)  # nothing a step started outlives it
            self._watchdog.forget(process.pid)

    def _signal_groups(self, number: signal.Signals) -> None:
        with self._lock:
            groups = list(self._groups)
        for group in groups:
            kill_group(group, number)
