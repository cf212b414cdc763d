"""A registered model loaded as SageMaker's scikit-learn serving container loads it: one implementation for the local
endpoint (`mlops serve --local`, mlops/endpoint.py) and the local runner's batch transform (`transform.py`).

    code = load_package(package, s3, work_dir)      # untars model and code, imports SAGEMAKER_PROGRAM, calls model_fn
    body, content_type = code.invoke(request, "text/csv", "text/csv")   # input_fn -> predict_fn -> output_fn

The package's ModelDataUrl (model.tar.gz) is untarred into a model dir and its SAGEMAKER_SUBMIT_DIRECTORY tarball into
a code dir; SAGEMAKER_PROGRAM is imported from there as a fresh module (never a cached import of the same name) and
model_fn(model_dir) is called once.
"""

from __future__ import annotations

import importlib.util
import io
import tarfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline_defs.local.errors import LocalRunError
from pipeline_defs.local.s3 import LocalS3

_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")


class InferenceCode:
    """The package's inference module and the model its model_fn loaded."""

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


def load_package(package: Mapping[str, Any], s3: LocalS3, work_dir: Path) -> InferenceCode:
    """Unpack a DescribeModelPackage-shaped package's model and code into `work_dir` and call its model_fn."""
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
    module = _fresh_module(script)
    missing = [name for name in _FUNCTIONS if not callable(getattr(module, name, None))]
    if missing:
        raise LocalRunError(f"{program} does not define {', '.join(missing)} (serving it locally needs all four)")
    return InferenceCode(module, module.model_fn(str(model_dir)))


def _untar(content: bytes, destination: Path, uri: str) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:*") as tar:
            tar.extractall(destination, filter="data")
    except tarfile.TarError as error:
        raise LocalRunError(f"{uri} is not a tarball: {error}") from None


def _fresh_module(script: Path) -> ModuleType:
    """The script as a new module object (never a cached import of the same name): what the container imports."""
    name = f"_local_endpoint_{script.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise LocalRunError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
