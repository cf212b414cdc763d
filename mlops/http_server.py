"""A threaded HTTP/1.1 server that bounds every client's time and stops without leaving a request half done.

    server = StoppableHTTPServer(("127.0.0.1", 0), Handler)   # Handler subclasses StoppableHandler
    threading.Thread(target=server.serve_forever).start()
    ...
    server.stop_connections(timeout=120)   # then nothing is in flight: safe to close what the handlers write to

Stopping, in this order: no new connection is accepted (the listening socket closes); a kept-alive connection waiting
for its next request is closed; a connection whose request has arrived is answered with `Connection: close` and then
closed; `stop_connections` returns once every connection is closed.

Time: `request_timeout` seconds for a client to start its next request on a kept-alive connection, then as long again
for the whole request (request line, headers and body: a client trickling bytes cannot stretch it), and as long again
for the answer to be sent. A request that runs out of time while its headers arrive is closed without an answer; the
handler answers one whose body is late (it reads `rfile` and catches TimeoutError).
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LINGER_SECONDS = 1.0


class StoppableHTTPServer(ThreadingHTTPServer):
    # A handler stuck in the application past the stop's bound must not keep the process alive.
    daemon_threads = True
    # The listen backlog: with the stdlib's 5, a burst of clients that open a connection per request gets resets.
    request_queue_size = socket.SOMAXCONN
    request_timeout = 60.0  # InvokeEndpoint gives a model 60 s to answer; a client gets as long to send

    def __init__(self, address: tuple[str, int], handler: type[StoppableHandler]) -> None:
        self._stopping = threading.Event()
        # Written once at the stop and never read: readable from then on, it wakes every connection waiting idle.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._open_connections = 0
        self._connections_changed = threading.Condition()
        self._serving = threading.Event()
        super().__init__(address, handler)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def wake_fd(self) -> int:
        return self._wake_reader.fileno()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving.set()
        try:
            super().serve_forever(poll_interval)
        finally:
            self._serving.clear()

    def stop_connections(self, timeout: float) -> int:
        """Stop accepting, close idle connections, let the others answer and close; the connections still open
        after `timeout` seconds (0: all closed). A second call only waits."""
        if not self._stopping.is_set():
            self._stopping.set()
            self._wake_writer.send(b"\0")
            if self._serving.is_set():
                self.shutdown()
            self.server_close()
        with self._connections_changed:
            self._connections_changed.wait_for(lambda: self._open_connections == 0, timeout)
            still_open = self._open_connections
        if not still_open:
            self._wake_reader.close()
            self._wake_writer.close()
        return still_open

    def process_request(self, request: Any, client_address: Any) -> None:
        # Counted here, before its thread starts, so that a stop cannot miss a connection just accepted.
        self._count_connection(+1)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._count_connection(-1)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # handles, then closes the connection
        finally:
            self._count_connection(-1)

    def _count_connection(self, change: int) -> None:
        with self._connections_changed:
            self._open_connections += change
            self._connections_changed.notify_all()


class _DeadlineReader(io.RawIOBase):
    """The connection's reads: each bounded by what is left of `deadline` (time.monotonic()); no deadline: a read
    takes only what has already arrived (None when nothing has)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self.deadline is None:
            self.connection.settimeout(0.0)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request took longer than its time")
            self.connection.settimeout(left)
        try:
            return self.connection.recv_into(buffer)
        except BlockingIOError:
            return None


class StoppableHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients (boto3's urllib3 pool) reuse connections
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: StoppableHTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the stdlib's reader, replaced by one that keeps the request's deadline
        self._reader = _DeadlineReader(self.connection)
        self._buffered = io.BufferedReader(self._reader)
        self.rfile = self._buffered
        self._waiting = select.poll()
        self._waiting.register(self.connection, select.POLLIN)
        self._waiting.register(self.server.wake_fd, select.POLLIN)

    def handle(self) -> None:
        self.close_connection = True
        while self._next_request_arrived():
            self._answered = False
            self._reader.deadline = time.monotonic() + self.server.request_timeout
            try:
                self.handle_one_request()
            finally:
                self._reader.deadline = None
            if self.close_connection:
                if self._answered:
                    self._linger()
                return

    def send_response(self, code: int, message: str | None = None) -> None:
        self.connection.settimeout(self.server.request_timeout)  # the answer's own bound (reads set theirs)
        self._answered = True
        super().send_response(code, message)
        if self.close_connection or self.server.stopping:
            self.send_header("Connection", "close")  # also sets close_connection

    def _next_request_arrived(self) -> bool:
        """Whether a request has started on this connection (or the client closed it: handle_one_request sees that);
        False when none came within the request timeout, or the server is stopping and none is here."""
        if self._buffered.peek(1):  # already read ahead (a pipelined request), or just arrived
            return True
        ready = self._waiting.poll(self.server.request_timeout * 1000)
        return any(fd == self.connection.fileno() for fd, _ in ready)

    def _linger(self) -> None:
        """Half-close, then drop what the client still sends until it closes (a second at most): closing with its data
        unread would reset the connection, and the client could lose the answer just sent."""
        deadline = time.monotonic() + LINGER_SECONDS
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    return
