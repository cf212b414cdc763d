"""Step processes that start in milliseconds: a step-runtime process that has imported the step scripts' libraries
once (numpy, pandas, scikit-learn: most of a step's second of start-up) forks a process for each job.

The runner's side (`preloaded`) rewrites a job's command `[python, script, *arguments]` into
`[python, -I, -S, forkserver_client.py, SOCKET, script, *arguments]`: the job is started exactly as before (by
`subprocess.Popen`, with its environment, working folder, standard streams and session), but the started process is a
small client that hands all of it to this server, which forks a process that runs the script as `python script` would
(`__main__`, sys.argv, sys.path[0], a session of its own). The client waits for that process, passes on the signals it
receives (SIGTERM, SIGINT, SIGHUP) and ends as it ended (exit code, or the same signal); when the client is killed, the
server kills the forked process's group; when that process exits, the rest of its group is killed, as a step's group
is after a plain run (`stopping.py`). Anything that keeps the server from starting a job makes the client run the
script itself, as before.

A server serves jobs whose interpreter-level environment (the variables read while an interpreter and its libraries
start: PYTHON*, OMP_*, ...) is the one it started with, so the preloaded libraries saw the job's own settings; other
variables are each job's own. One server per interpreter and such environment, per `mlops` process; it ends when that
process does (its input closes), killing the jobs it still runs. MLOPS_FORKSERVER=off runs every job as a fresh
interpreter instead (to rule the server out when a step behaves unexpectedly).

Run as a script by the step interpreter: `python forkserver.py LISTENING_FD MODULE...`. Standard library only.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import random
import runpy
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SWITCH = "MLOPS_FORKSERVER"
CLIENT = Path(__file__).with_name("forkserver_client.py")
# What the step scripts import that takes long: imported once by the server, before it serves any job.
PRELOADED_MODULES = (
    "numpy",
    "pandas",
    "joblib",
    "scipy.stats",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.inspection",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.preprocessing",
)
# Variables an interpreter or a library reads once, as it starts or loads: a job is served by a server started with
# the same ones.
INTERPRETER_VARIABLES = ("PYTHON", "OMP_", "KMP_", "GOMP_", "OPENBLAS_", "MKL_", "GOTO", "LD_", "MALLOC_")

_servers: dict[tuple[str, tuple[tuple[str, str], ...]], _Server] = {}
_servers_lock = threading.Lock()


def preloaded(command: list[str], environment: Mapping[str, str]) -> list[str]:
    """`command` (`[python, script, *arguments]`, run with `environment`) as started through a preloaded server of
    `python`; `command` itself when it is not a script run or the server is switched off."""
    if len(command) < 2 or command[1].startswith("-") or environment.get(SWITCH, os.environ.get(SWITCH)) == "off":
        return command
    settings = tuple(sorted((k, v) for k, v in environment.items() if k.startswith(INTERPRETER_VARIABLES)))
    with _servers_lock:
        server = _servers.get((command[0], settings))
        if server is None or not server.running():
            server = _servers[(command[0], settings)] = _Server(command[0], environment)
    return [command[0], "-I", "-S", str(CLIENT), server.socket_path, *command[1:]]


class _Server:
    """The runner's handle on one server: its socket (made here, so a client can connect at once) and its input."""

    def __init__(self, python: str, environment: Mapping[str, str]) -> None:
        self._folder = tempfile.mkdtemp(prefix="mlops-forkserver-")
        self.socket_path = os.path.join(self._folder, "socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(self.socket_path)
            listener.listen(64)
            self._process = subprocess.Popen(
                [python, __file__, str(listener.fileno()), *PRELOADED_MODULES],
                stdin=subprocess.PIPE,  # only this process holds its write end: the server ends when this one does
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(environment),
                pass_fds=(listener.fileno(),),
                start_new_session=True,  # no terminal signal reaches it; a stop reaches the jobs through their clients
            )
        atexit.register(self.close)

    def running(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        shutil.rmtree(self._folder, ignore_errors=True)


# The server: runs in the step interpreter.


def serve(listener: socket.socket, modules: list[str]) -> None:
    """Fork a process per client until this process's input ends; then kill the groups of the jobs still running."""
    for name in modules:
        with contextlib.suppress(Exception):  # a runtime without one of them: its jobs import what they need
            importlib.import_module(name)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda number, frame: None)  # a handler, so the wakeup byte is written
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_read, selectors.EVENT_READ, "reap")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "input")
    jobs: dict[int, socket.socket] = {}  # the forked process's pid: its client's connection
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                _accept(listener, jobs, selector)
            elif key.data == "reap":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 512)
                _reap(jobs, selector)
            elif key.data == "input":
                if not os.read(sys.stdin.fileno(), 512):
                    for pid in jobs:
                        _kill_group(pid)
                    shutil.rmtree(os.path.dirname(listener.getsockname()), ignore_errors=True)  # after a killed runner
                    return
            elif not key.fileobj.recv(1):  # type: ignore[union-attr]  # a connection: its client ended before its job
                selector.unregister(key.fileobj)
                _kill_group(key.data)


def _accept(listener: socket.socket, jobs: dict[int, socket.socket], selector: selectors.BaseSelector) -> None:
    connection = listener.accept()[0]
    pid = _fork(connection)
    if pid is None:
        connection.close()
        return
    jobs[pid] = connection
    selector.register(connection, selectors.EVENT_READ, pid)


def _fork(connection: socket.socket) -> int | None:
    """Receive a client's job and fork its process (which never returns); its pid, or None for a broken request."""
    try:
        first, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
        size = int.from_bytes(first[:8], "big")
        payload = first[8:]
        while len(payload) < size:
            chunk = connection.recv(size - len(payload))
            if not chunk:
                raise ConnectionError("the request ended early")
            payload += chunk
        job = json.loads(payload)
        if len(fds) != 3:
            raise ConnectionError("no standard streams")
    except (OSError, ValueError):
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _run_job(job, fds)  # never returns
    for fd in fds:
        os.close(fd)
    connection.sendall(f"{pid}\n".encode())
    return pid


def _run_job(job: dict[str, Any], fds: list[int]) -> None:
    """In the forked process: become `python script` with the job's streams, folder, environment and arguments."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.closerange(3, 1 << 16)  # the server's socket, pipes and other clients' connections
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["environment"])
        sys.argv = list(job["argv"])
        sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))  # where `python script` looks first
        random.seed()  # as a fresh interpreter: no two jobs share the server's random state
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        code = _run_script(sys.argv[0])
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run_script(path: str) -> int:
    """The exit code `python path` would end with."""
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # the script's own failure: its traceback on stderr, exit code 1, as python does
        traceback.print_exc()
        return 1
    return 0


def _reap(jobs: dict[int, socket.socket], selector: selectors.BaseSelector) -> None:
    """Tell each ended job's client how it ended; what its process left running in its group is killed."""
    while jobs:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _kill_group(pid)
        connection = jobs.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(KeyError):  # still listened to, unless its client has ended
                selector.unregister(connection)
            with contextlib.suppress(OSError):
                connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            connection.close()


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


if __name__ == "__main__":
    del sys.path[0]  # this file's folder: none of its modules may stand in for a library's (nor reach the jobs)
    serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[2:])
