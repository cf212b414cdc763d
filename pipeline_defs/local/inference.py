"""A registered model served as SageMaker's scikit-learn container serves it, on the step runtime: one implementation
for the local endpoint (`mlops serve --local`, mlops/endpoint.py) and the local runner's batch transform
(`transform.py`).

    code = load_package(package, LocalS3(state_dir / "s3", assembly.assets), work_dir)   # model_fn runs once
    code.invoke(body, "text/csv", "application/json")   # -> (response body, content type)
    code.close()

The package's ModelDataUrl (model.tar.gz) is untarred into a model dir and its SAGEMAKER_SUBMIT_DIRECTORY tarball into
a code dir; SAGEMAKER_PROGRAM runs from there in a process of the step runtime (the scikit-learn image's Python and
libraries, `step_runtime.py`; `inference_worker.py`), which calls model_fn(model_dir) once and then
input_fn(body, content type) -> predict_fn -> output_fn(prediction, accept) per request, as the container does: a
model is unpickled by the library versions that trained it, never by the CLI's. `InferenceCode` runs a module in
this process instead (tests' stand-in models).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline_defs.local.errors import LocalRunError
from pipeline_defs.local.forkserver import preloaded
from pipeline_defs.local.s3 import LocalS3
from pipeline_defs.local.step_runtime import steps_python

WORKER = Path(__file__).with_name("inference_worker.py")  # run by path on the step runtime


class InferenceCode:
    """An inference module and the model its model_fn loaded, in this process (`InferenceProcess` serves a package)."""

    def __init__(self, module: ModuleType, model: Any) -> None:
        self.module = module
        self.model = model

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """(response body, its content type); the module's exceptions propagate (ValueError = bad input)."""
        data = self.module.input_fn(body, content_type)
        prediction = self.module.predict_fn(data, self.model)
        result = self.module.output_fn(prediction, accept)
        # output_fn may return the body alone (then the content type is the accept type) or (body, content type).
        response, response_type = result if isinstance(result, tuple) else (result, accept or "application/json")
        return (response.encode("utf-8") if isinstance(response, str) else bytes(response)), str(response_type)


def load_package(
    package: Mapping[str, Any], s3: LocalS3, work_dir: Path, python: str | None = None
) -> InferenceProcess:
    """Unpack a DescribeModelPackage-shaped package's model and code into `work_dir` and start its model process
    with `python` (default: the step runtime's; model_fn has run when this returns); close it when done."""
    try:
        container = package["InferenceSpecification"]["Containers"][0]
        environment = container.get("Environment", {})
        model_url, program = container["ModelDataUrl"], environment["SAGEMAKER_PROGRAM"]
        code_url = environment["SAGEMAKER_SUBMIT_DIRECTORY"]
    except (KeyError, IndexError, TypeError) as error:
        raise LocalRunError(
            f"{package.get('ModelPackageArn', 'the package')} has no {error} in InferenceSpecification.Containers[0]: "
            "it needs ModelDataUrl and the SAGEMAKER_PROGRAM / SAGEMAKER_SUBMIT_DIRECTORY environment"
        ) from None
    model_dir, code_dir = work_dir / "model", work_dir / "code"
    _untar(s3.read_bytes(model_url), model_dir, model_url)
    _untar(s3.read_bytes(code_url), code_dir, code_url)
    script = code_dir / program
    if not script.is_file():
        raise LocalRunError(f"SAGEMAKER_PROGRAM {program} is not in {code_url}")
    return InferenceProcess(script, model_dir, python)


class ModelCodeError(Exception):
    """An exception the inference script raised in the model process: its class name, message, and whether it is a
    ValueError (bad input)."""

    def __init__(self, type_name: str, message: str, bad_input: bool) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.bad_input = bad_input


class InferenceProcess:
    """The package's inference script in a process of the step runtime (`inference_worker.py`), one request at
    a time: the model is loaded by the library versions that trained it, as the scikit-learn container loads it."""

    def __init__(self, script: Path, model_dir: Path, python: str | None = None) -> None:
        self._lock = threading.Lock()
        # One OpenMP thread: a request is mostly a row or a few, and waking threads for each of the model's trees
        # cost far more than it saved (a tenth of a second a request on a busy machine).
        environment = {"OMP_NUM_THREADS": "1", **os.environ}
        self._process = subprocess.Popen(
            preloaded([python or steps_python(), str(WORKER), str(script), str(model_dir)], environment),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
            # Its own process group: a terminal's Ctrl-C stops the server, which still answers what is in flight
            # through this process; it ends when its input closes (close(), or this process ending in any way).
            start_new_session=True,
        )
        started = self._receive()
        if not started.get("ready"):
            self.close()
            raise LocalRunError(f"{script.name}: model_fn failed in the step runtime: {started.get('error')}")

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """(response body, its content type); the script's exceptions come back as ModelCodeError."""
        request = {"body": base64.b64encode(body).decode("ascii"), "content_type": content_type, "accept": accept}
        with self._lock:
            assert self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps(request) + "\n")
                self._process.stdin.flush()
            except BrokenPipeError:
                raise RuntimeError(f"the model process ended (exit code {self._process.poll()})") from None
            reply = self._receive()
        if "error" in reply:
            raise ModelCodeError(reply["type"], reply["error"], reply["bad_input"])
        return base64.b64decode(reply["body"]), reply["content_type"]

    def close(self) -> None:
        """End the model process (it stops when its input ends)."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def _receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the model process ended (exit code {self._process.wait()}); see its output above")
        reply: dict[str, Any] = json.loads(line)
        return reply


def _untar(content: bytes, destination: Path, uri: str) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:*") as tar:
            tar.extractall(destination, filter="data")
    except tarfile.TarError as error:
        raise LocalRunError(f"{uri} is not a tarball: {error}") from None
