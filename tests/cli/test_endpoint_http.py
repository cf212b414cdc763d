"""The local endpoint's HTTP behaviour, on a stand-in model (fast): framing, timeouts, methods, many connections,
stopping with connections open, and data capture that fails. The real model's behaviour is tests/cli/test_serve.py's."""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlops.capture import CaptureWriter, read_capture, record
from mlops.endpoint import LocalEndpoint
from pipeline_defs.local.inference import InferenceCode

ENDPOINT = "test-endpoint"


def stand_in_code(model_seconds: float = 0.0) -> InferenceCode:
    """A model that answers the length of the body it got (so a truncated body shows), after `model_seconds`."""
    module = ModuleType("stand_in_inference")
    module.input_fn = lambda body, content_type: body
    module.predict_fn = lambda data, model: time.sleep(model_seconds) or len(data)
    module.output_fn = lambda prediction, accept: (f"{prediction}\n", "text/csv")
    return InferenceCode(module, model=None)


@contextlib.contextmanager
def serving(
    tmp_path: Path,
    request_timeout: float | None = None,
    capture: CaptureWriter | None = None,
    model_seconds: float = 0.0,
) -> Iterator[LocalEndpoint]:
    capture = capture or CaptureWriter(tmp_path / "capture" / ENDPOINT / "AllTraffic", 100)
    server = LocalEndpoint(stand_in_code(model_seconds), ENDPOINT, port=0, capture=capture, log=lambda line: None)
    if request_timeout is not None:
        server.request_timeout = request_timeout
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()  # also ends serve_forever
        thread.join(5)


def connect(server: LocalEndpoint, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=timeout)


def read_until_closed(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def response_of(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {name.lower(): value for name, value in headers.items()}, body


def captured_lines(server: LocalEndpoint) -> int:
    assert server.capture is not None
    return sum(len(path.read_text().splitlines()) for path in server.capture.folder.rglob("*.jsonl"))


def post(server: LocalEndpoint, body: bytes, connection: http.client.HTTPConnection | None = None) -> Any:
    connection = connection or http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
    response = connection.getresponse()
    response.read()
    return response


# Framing and timeouts ----------------------------------------------------------------------------------------------
def test_a_body_shorter_than_its_content_length_is_refused_and_not_captured(tmp_path) -> None:
    with serving(tmp_path) as server, connect(server) as connection:
        connection.sendall(b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\nContent-Length: 40\r\n\r\n1,2,3")
        connection.shutdown(socket.SHUT_WR)  # the upload was cut off
        status, headers, body = response_of(read_until_closed(connection))

        assert (status, headers["content-type"]) == (400, "application/json")
        assert json.loads(body)["error"] == "the body ended after 5 of its 40 bytes (Content-Length): send it whole"
        assert post(server, b"1,2,3").status == 200  # the server goes on
        assert captured_lines(server) == 1


def test_a_client_that_stops_sending_its_body_gets_408_when_the_request_timeout_passes(tmp_path) -> None:
    with serving(tmp_path, request_timeout=0.5) as server, connect(server) as connection:
        connection.sendall(b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\nContent-Length: 40\r\n\r\n1,2,3")
        began = time.monotonic()
        status, headers, body = response_of(read_until_closed(connection))  # the server closes after answering

        assert 0.4 < time.monotonic() - began < 5
        assert (status, headers["connection"]) == (408, "close")
        assert "the request did not arrive within 0.5 s" in json.loads(body)["error"]
        assert captured_lines(server) == 0


@pytest.mark.heavy(seconds=1)  # waits out a request timeout
def test_the_request_timeout_bounds_the_whole_request_not_each_read(tmp_path) -> None:
    """A client trickling its headers a byte at a time (each read well within the timeout) is cut off all the same."""
    request = b"GET /ping HTTP/1.1\r\nX-Slow: " + b"a" * 100
    with serving(tmp_path, request_timeout=0.5) as server, connect(server) as connection:
        began = time.monotonic()
        with contextlib.suppress(ConnectionError):
            for byte in request:
                connection.sendall(bytes([byte]))
                time.sleep(0.05)
                if time.monotonic() - began > 3:
                    break
        assert read_until_closed(connection) == b""  # closed mid-headers, nothing to answer
        assert time.monotonic() - began < 3


def test_an_idle_keep_alive_connection_is_closed_after_the_request_timeout(tmp_path) -> None:
    with serving(tmp_path, request_timeout=0.5) as server, connect(server) as connection:
        connection.sendall(b"GET /ping HTTP/1.1\r\n\r\n")
        time.sleep(0.1)
        status, _, _ = response_of(connection.recv(65536))
        began = time.monotonic()
        assert status == 200
        assert read_until_closed(connection) == b""
        assert 0.3 < time.monotonic() - began < 5


# Methods and the stdlib's own refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_line", "status", "allow", "message"),
    [
        ("PUT /invocations", 405, "POST", "PUT /invocations is not supported: use POST /invocations"),
        ("DELETE /endpoints/test-endpoint/invocations", 405, "POST", "DELETE /endpoints/test-endpoint/invocations"),
        ("PATCH /ping", 405, "GET, HEAD", "PATCH /ping is not supported: use GET /ping"),
        ("POST /ping", 405, "GET, HEAD", "POST /ping is not supported: use GET /ping"),
        ("GET /invocations", 405, "POST", "GET /invocations is not supported: use POST /invocations"),
        ("BREW /invocations", 501, None, "method BREW is not supported: use GET /ping or POST /invocations"),
        ("GET /ping extra", 400, None, "Bad request syntax ('GET /ping extra HTTP/1.1')"),
    ],
)
def test_other_methods_and_malformed_requests_get_a_status_and_one_json_line(
    tmp_path, request_line, status, allow, message
) -> None:
    with serving(tmp_path) as server, connect(server) as connection:
        connection.sendall(f"{request_line} HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc".encode())
        got, headers, body = response_of(read_until_closed(connection))

        assert (got, headers["content-type"], headers.get("allow")) == (status, "application/json", allow)
        assert body.count(b"\n") == 1 and message in json.loads(body)["error"]
        assert int(headers["content-length"]) == len(body)
        assert captured_lines(server) == 0


def test_head_ping_answers_without_a_body(tmp_path) -> None:
    with serving(tmp_path) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.request("HEAD", "/ping")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"")
        connection.request("GET", "/ping")  # the same connection: the HEAD answer was framed right
        assert connection.getresponse().status == 200


# Many connections ----------------------------------------------------------------------------------------------------
@pytest.mark.heavy(seconds=1)  # hundreds of connections
def test_many_clients_opening_a_connection_per_request_are_never_reset(tmp_path) -> None:
    clients, requests_each = 64, 10
    statuses: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(clients)

    def client() -> None:
        start.wait()
        for _ in range(requests_each):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
            try:
                statuses.append(post(server, b"1,2", connection).status)
            except OSError as error:
                failures.append(error)
            finally:
                connection.close()

    with serving(tmp_path) as server:
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert failures == [] and statuses == [200] * clients * requests_each


# Stopping ------------------------------------------------------------------------------------------------------------
@pytest.mark.heavy(seconds=1)  # waits out a stop
def test_stop_closes_idle_connections_and_answers_and_captures_the_request_in_flight(tmp_path) -> None:
    with serving(tmp_path, model_seconds=0.5) as server:
        idle = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        assert post(server, b"1", idle).status == 200  # now idle, kept alive
        busy = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        answer: list[Any] = []
        in_flight = threading.Thread(target=lambda: answer.append(post(server, b"1,2,3", busy)))
        in_flight.start()
        time.sleep(0.2)  # the request is in the model

        began = time.monotonic()
        server.stop()
        assert time.monotonic() - began > 0.2  # it waited for the model
        assert captured_lines(server) == 2
        in_flight.join(5)

        [response] = answer
        assert (response.status, response.getheader("Connection")) == (200, "close")
        assert idle.sock is not None and idle.sock.recv(1) == b""  # the server closed the idle connection


@pytest.mark.heavy(seconds=1)  # waits out a stop
def test_a_request_still_in_the_model_when_the_stop_gives_up_waiting_is_answered_503(tmp_path) -> None:
    with serving(tmp_path, model_seconds=1.0) as server:
        answer: list[Any] = []
        in_flight = threading.Thread(target=lambda: answer.append(post(server, b"1,2,3")))
        in_flight.start()
        time.sleep(0.2)  # the request is in the model

        server.stop(timeout=0.2)
        in_flight.join(5)

        [response] = answer
        assert response.status == 503  # neither a 200 without its capture line nor a line without its 200
        assert captured_lines(server) == 0


# Data capture that fails ---------------------------------------------------------------------------------------------
class FullDisk(CaptureWriter):
    def write(self, line_record: Any, when: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_request_that_cannot_be_captured_is_not_answered_200(tmp_path) -> None:
    with serving(tmp_path, capture=FullDisk(tmp_path / "capture", 100)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.request("POST", "/invocations", body=b"1,2", headers={"Content-Type": "text/csv"})
        response = connection.getresponse()
        error = json.loads(response.read())["error"]

        assert response.status == 500
        assert error == "data capture failed (No space left on device): the request is not answered, not captured"
        assert post(server, b"1,2", connection).status == 500  # the connection and the server go on


def test_a_capture_line_that_fails_half_written_leaves_no_partial_line(tmp_path) -> None:
    """A short write (here: the file-size limit, as a full disk does) must not leave half a line that a later line
    completes or follows: the file keeps whole lines only, and the failed one is not counted."""
    writer = CaptureWriter(tmp_path / ENDPOINT / "AllTraffic", 100)
    now = datetime.now(UTC)
    lines = [record(((f"{n}," * 2000).encode(), "text/csv"), (b"0.5", "text/csv"), now, f"id-{n}") for n in range(3)]
    writer.write(lines[0], now)
    [path] = tmp_path.rglob("*.jsonl")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal that kills the process
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 1000, hard))
        with pytest.raises(OSError):
            writer.write(lines[1], now)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    writer.write(lines[2], now)  # the space is back
    writer.close()

    assert path.read_bytes().endswith(b"\n")
    assert [captured.inference_id for _, captured in read_capture(tmp_path)] == ["id-0", "id-2"]
    assert writer.written == 2
