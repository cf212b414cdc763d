"""The local endpoint: a registered model package served as SageMaker's scikit-learn container serves it.

    code = load_package(package, LocalS3(...), work_dir)   # pipeline_defs/local/inference.py: on the step runtime
    server = LocalEndpoint(code, endpoint_name="churn-dev-endpoint", port=8080, capture=CaptureWriter(...))
    server.serve_forever()      # from another thread, server.stop(): see LocalEndpoint.stop

Loading (pipeline_defs/local/inference.py, shared with the local runner's batch transform): the package's model and
inference code as the scikit-learn container loads them, in a process of the step runtime; each request goes
input_fn -> predict_fn -> output_fn.

HTTP (127.0.0.1 only): the container contract (`GET /ping`, `POST /invocations`) and the runtime API's path
(`POST /endpoints/<name>/invocations`), so boto3's sagemaker-runtime client with `endpoint_url` works unchanged.
Errors are one JSON line with an `error` key. On the runtime path they also carry what botocore reads (the
`x-amzn-ErrorType` header, `Message`, and for a failure inside the model `OriginalStatusCode`/`OriginalMessage`), so
the client raises ValidationError (400) or ModelError (424) as InvokeEndpoint does. Connections: mlops/http_server.py
(every client's time bounded by `request_timeout`, a stop that leaves no request half done).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mlops.capture import CaptureWriter, record
from mlops.http_server import StoppableHandler, StoppableHTTPServer
from pipeline_defs.contract import VARIANT_NAME
from pipeline_defs.local.inference import InferenceCode, InferenceProcess, ModelCodeError

MAX_PAYLOAD = 6 * 1024 * 1024  # InvokeEndpoint's limit for a real-time request body
MAX_PORT = 65535
INFERENCE_ID = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,63}")  # 1-64 printable characters, not starting with a space
_RUNTIME_PATH = re.compile(r"/endpoints/(?P<name>[^/]+)/invocations")


def labelled_request_rows(csv_file: Path) -> list[tuple[bytes, str]]:
    """(request body, label text) per data row of a dataset file: the body as the inference contract has it (the
    feature columns in training order, no header, no label), the label its last column ("" when missing); rows with a
    missing value ('?') are left out."""
    lines = csv_file.read_text().splitlines()[1:]
    rows = (line.rsplit(",", 1) for line in lines if line and "?" not in line)
    return [((features + "\n").encode(), label.strip()) for features, label in rows]


def request_rows(csv_file: Path) -> list[bytes]:
    """The request bodies of `labelled_request_rows`."""
    return [body for body, _ in labelled_request_rows(csv_file)]


# The server ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str]


def error_reply(status: int, message: str, error_type: str | None = None, **fields: Any) -> Reply:
    """One JSON line; with `error_type`, shaped as the runtime API's error (botocore reads the header and Message)."""
    document: dict[str, Any] = {"error": message}
    headers = {}
    if error_type:
        document |= {"Message": message, **fields}
        headers["x-amzn-ErrorType"] = error_type
    return Reply(status, (json.dumps(document) + "\n").encode("utf-8"), "application/json", headers)


class LocalEndpoint(StoppableHTTPServer):
    def __init__(
        self,
        code: InferenceCode | InferenceProcess,
        endpoint_name: str,
        port: int = 8080,
        capture: CaptureWriter | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.code = code
        self.endpoint_name = endpoint_name
        self.capture = capture
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        # Held while a line is written and when the capture closes: a request is captured, or answered that it is not.
        self._capture_lock = threading.Lock()
        self._capture_closed = False
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def invocation(self, body: bytes, headers: Mapping[str, str], runtime: bool) -> Reply:
        """Run the model on one request and capture it (when sampled); errors become one-line JSON replies.

        `headers` are keyed by lower-case name. A 200 is only ever answered for a request whose capture line (when
        sampled) is written."""
        inference_id = headers.get("x-amzn-sagemaker-inference-id")
        if inference_id is not None and not INFERENCE_ID.fullmatch(inference_id):
            return error_reply(400, "InferenceId must be 1-64 printable characters", "ValidationError")
        content_type, accept = headers.get("content-type"), headers.get("accept")
        try:
            response, response_type = self.code.invoke(body, content_type, accept)
        except Exception as error:  # the model's own code: report it, keep serving
            return self._model_error(error, runtime)
        if self.capture is not None and self.capture.sampled():
            now = datetime.now(UTC)
            captured = record((body, content_type), (response, response_type), now, inference_id)
            refusal = self._capture(captured, now, runtime)
            if refusal is not None:
                return refusal
        extra = {"x-Amzn-Invoked-Production-Variant": VARIANT_NAME} if runtime else {}
        return Reply(200, response, response_type, extra)

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, close idle connections, answer and capture the requests in flight (each connection then
        closes), then close the capture. A request still in the model after `timeout` seconds (default: twice the
        request timeout) is answered 503 when it comes out, not left answered but uncaptured."""
        timeout = 2 * self.request_timeout if timeout is None else timeout
        if still_open := self.stop_connections(timeout):
            busy = f"{still_open} connection(s) still busy after {timeout:g} s"
            self.log(f"local endpoint: {busy}: a request leaving the model now is answered 503, not captured")
        with self._capture_lock:
            self._capture_closed = True
            if self.capture is not None:
                self.capture.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):  # a client that hung up is not worth a line
            self.log(f"local endpoint: request from {client_address[0]} failed: {error!r}")

    def _capture(self, captured: Mapping[str, Any], now: datetime, runtime: bool) -> Reply | None:
        """Write the capture line; the reply to send instead of the 200 when it cannot be written."""
        with self._capture_lock:
            if self._capture_closed:
                message = "the endpoint stopped before this request was captured"
                return error_reply(503, message, "ServiceUnavailable" if runtime else None)
            assert self.capture is not None
            try:
                self.capture.write(captured, now)
            except OSError as error:
                message = f"data capture failed ({error.strerror or error}): the request is not answered, not captured"
                self.log(f"local endpoint: 500 {message}")
                return error_reply(500, message, "InternalFailure" if runtime else None)
        return None

    def _model_error(self, error: Exception, runtime: bool) -> Reply:
        # ValueError (and its kin: bad JSON, undecodable text, wrong columns) is bad input; anything else the model's.
        bad_input = error.bad_input if isinstance(error, ModelCodeError) else isinstance(error, ValueError)
        status = 400 if bad_input else 500
        name = error.type_name if isinstance(error, ModelCodeError) else type(error).__name__
        message = f"{name}: {error}".replace("\n", " ")
        self.log(f"local endpoint: {status} {message}")
        if not runtime:
            return error_reply(status, message)
        kind = "client" if status < 500 else "server"
        return error_reply(
            424,
            message,
            "ModelError",
            Message=f'Received {kind} error ({status}) from primary with message "{message}".',
            OriginalStatusCode=status,
            OriginalMessage=message,
            ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
        )


# The paths and the methods each allows; any other known method on them is answered 405 with an Allow header.
_ROUTES = {"/ping": ("GET", "HEAD"), "/invocations": ("POST",)}
_HINT = "use GET /ping or POST /invocations"


class _Handler(StoppableHandler):
    server: LocalEndpoint

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _route(self) -> None:
        path = urlsplit(self.path).path
        runtime = _RUNTIME_PATH.fullmatch(path)
        allowed = _ROUTES.get("/invocations" if runtime else path)
        if allowed is None or self.command not in allowed:
            self._refuse(path, allowed, runtime is not None)
        elif self.command == "POST":
            self._invoke(runtime)
        else:
            self._send(Reply(200, b"", "text/plain", {}))

    def _refuse(self, path: str, allowed: tuple[str, ...] | None, runtime: bool) -> None:
        """404 for a path this endpoint does not have, 405 (and Allow) for a method its path does not take."""
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            self._body(runtime)  # read and dropped, so the connection can go on (it closes when that fails)
        if allowed is None:
            self._send(error_reply(404, f"no such path: {self.command} {self.path} ({_HINT})"))
        else:
            message = f"{self.command} {path} is not supported: use {allowed[0]} {path}"
            reply = error_reply(405, message, "ValidationError" if runtime else None)
            self._send(reply, {"Allow": ", ".join(allowed)})

    def _invoke(self, runtime: re.Match[str] | None) -> None:
        body = self._body(runtime is not None)
        if isinstance(body, Reply):
            self._send(body)
        elif runtime is not None and unquote(runtime["name"]) != self.server.endpoint_name:
            name = unquote(runtime["name"])
            message = f"Endpoint {name} not found (this local endpoint is {self.server.endpoint_name})."
            self._send(error_reply(400, message, "ValidationError"))
        else:
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(self.server.invocation(body, headers, runtime is not None))

    def _body(self, runtime: bool) -> bytes | Reply:
        """The request body, or the error to answer; after an error the connection closes (the stream is lost)."""
        body = self._read_body("ValidationError" if runtime else None)
        if isinstance(body, Reply):
            self.close_connection = True
        return body

    def _read_body(self, error_type: str | None) -> bytes | Reply:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or "Transfer-Encoding" in self.headers:
            return error_reply(411, "send the body with a Content-Length header", error_type)
        if int(length) > MAX_PAYLOAD:
            return error_reply(413, f"the body is {length} bytes, over the {MAX_PAYLOAD} bytes limit", error_type)
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            timeout = f"{self.server.request_timeout:g} s"
            return error_reply(408, f"the request did not arrive within {timeout}: send it faster", error_type)
        if len(body) < int(length):
            message = f"the body ended after {len(body)} of its {length} bytes (Content-Length): send it whole"
            return error_reply(400, message, error_type)
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (a malformed request line or header, an unknown method) as one JSON line too."""
        self.close_connection = True
        if code == 501:  # no do_<method>
            message = f"method {self.command} is not supported: {_HINT}"
        self._send(error_reply(code, message or f"HTTP {code}"))

    def _send(self, reply: Reply, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in {**reply.headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: errors are logged once by the server, successful requests not at all."""
