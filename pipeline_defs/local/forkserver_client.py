"""A job's process when the job runs through a preloaded server (`forkserver.py`): `python -I -S forkserver_client.py
SOCKET SCRIPT ARGUMENT...`, started as the job itself would have been.

It sends the server its standard streams, working folder, environment and `SCRIPT ARGUMENT...`, passes each SIGTERM,
SIGINT or SIGHUP it gets on to the forked process's group, and ends as that process ended: its exit code, or killed by
the same signal. When the server cannot take the job, it runs the script itself (`exec python SCRIPT ARGUMENT...`).
Standard library only; starts in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys


def main(socket_path: str, argv: list[str]) -> None:
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(socket_path)
        payload = json.dumps({"argv": argv, "cwd": os.getcwd(), "environment": dict(os.environ)}).encode()
        message = len(payload).to_bytes(8, "big") + payload
        sent = socket.send_fds(connection, [message], [0, 1, 2])
        connection.sendall(message[sent:])
        replies = connection.makefile("rb")
        pid = int(replies.readline())
    except Exception:  # no server, one that ended, or an interpreter without send_fds: a fresh interpreter runs it
        os.execv(sys.executable, [sys.executable, *argv])
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda received, frame: _signal_group(pid, received))
    ended = replies.readline()
    code = int(ended) if ended.strip() else 1  # no answer: the server was killed, and the job with it
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def _signal_group(group: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the job has ended already
        os.killpg(group, number)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
