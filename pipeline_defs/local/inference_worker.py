"""A local model process: a package's inference script, run on the step runtime as the container runs it.

    <step runtime python> inference_worker.py <inference script> <model dir>

`inference.py`'s `InferenceProcess` (the local endpoint's and the batch transform's) starts it with the step
runtime's interpreter (pipeline_defs/local/step_runtime.py: the scikit-learn image's Python and libraries), so a model
is unpickled by the library versions that trained it, never by the CLI's. Run by path there, it imports the standard
library only.

Protocol, one JSON line each way on the process's original stdout / stdin (the script's own prints go to stderr):
first {"ready": true} once model_fn returned (or {"ready": false, "error": ...}); then per request
{"body": base64, "content_type", "accept"} -> {"body": base64, "content_type"} or
{"error": message, "type": exception class name, "bad_input": whether it is a ValueError}. End of stdin ends it.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import IO, Any

FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")


def load(script: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_local_endpoint_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [name for name in FUNCTIONS if not callable(getattr(module, name, None))]
    if missing:
        raise ImportError(f"{script.name} does not define {', '.join(missing)} (the local endpoint needs all four)")
    return module


def answer(module: ModuleType, model: Any, request: dict[str, Any]) -> dict[str, Any]:
    try:
        data = module.input_fn(base64.b64decode(request["body"]), request["content_type"])
        result = module.output_fn(module.predict_fn(data, model), request["accept"])
    except Exception as error:  # the model's own code: reported to the endpoint, which keeps serving
        return {"error": str(error), "type": type(error).__name__, "bad_input": isinstance(error, ValueError)}
    # output_fn may return the body alone (then the content type is the accept type) or (body, content type).
    body, content_type = result if isinstance(result, tuple) else (result, request["accept"] or "application/json")
    body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return {"body": base64.b64encode(body).decode("ascii"), "content_type": str(content_type)}


def send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main(script: str, model_dir: str) -> int:
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the script's prints (and C libraries') go to stderr
    try:
        module = load(Path(script))
        model = module.model_fn(model_dir)
    except Exception as error:  # reported as one line by the endpoint
        send(channel, {"ready": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    send(channel, {"ready": True})
    for line in sys.stdin:
        send(channel, answer(module, model, json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
