"""Model and Transform steps: CreateModel of a registered package, and batch transform with batch capture, run here.

Model: `Containers[0].ModelPackageName` (a package ARN) is looked up in the local registry; the step's properties are
the request plus `ModelName` (`pipelines-<execution>-<step>`, as the jobs are named) and `ModelArn`.

Transform: the model is the Model step of this execution whose ModelName the arguments name. Its package is loaded by
the code the local endpoint uses (`inference.py`: model_fn once per instance; input_fn -> predict_fn -> output_fn per
request). Supported as SageMaker documents them, anything else fails the step by name:
- TransformInput: an S3Prefix of uncompressed objects, SplitType Line (one record a line) or None (an object is one
  request); BatchStrategy MultiRecord packs consecutive records into a request up to MaxPayloadInMB, SingleRecord
  sends one record a request;
- TransformResources.InstanceCount N: the objects are split among N instances in key order (instance i takes every
  N-th object from the i-th on; SageMaker documents only that each object goes to one instance), which run at once;
- DataProcessing on CSV records (a record is the array of its cells): InputFilter picks what the model sees, JoinSource
  Input joins each answer to its whole input record (input cells, then the answer's), OutputFilter picks what is
  written; the JSONPaths `$`, `$[i]`, `$[i,j,...]` and `$[a:b]` (negative indexes count from the end);
- TransformOutput: `<S3OutputPath>/<object key below the input prefix>.out`, records joined by lines (AssembleWith);
- DataCaptureConfig: batch capture's layout - under DestinationS3Uri, `input/yyyy/mm/dd/hh/<id>.json` and
  `output/yyyy/mm/dd/hh/<id>.json` (the hour the job started, UTC), each a manifest
  `[{"prefix": "s3://.../"}, "<relative key>", ...]` of the objects read and written (batch capture stores
  manifests, not copies); GenerateInferenceId appends an inference id (a UUID) and the job's start time
  (yyyy-mm-ddThh:mm:ssZ) to every output record.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_defs.local.errors import LocalRunError, StepFailed
from pipeline_defs.local.execution import Execution
from pipeline_defs.local.expressions import evaluate
from pipeline_defs.local.inference import InferenceCode, InferenceProcess, ModelCodeError, load_package
from pipeline_defs.local.jobs import job_name, run_job
from pipeline_defs.local.results import StepResult
from pipeline_defs.local.s3 import LocalS3, split_uri

if TYPE_CHECKING:
    from datetime import datetime

_INDEX_LIST = re.compile(r"\$\[(-?\d+(?:,\s*-?\d+)*)\]")
_SLICE = re.compile(r"\$\[(-?\d*):(-?\d*)\]")
_BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
_MB = 1024 * 1024


def run_model(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
    arguments = evaluate(step.get("Arguments", {}), execution.context("Model"))
    containers = arguments.get("Containers") or [arguments.get("PrimaryContainer") or {}]
    arn = containers[0].get("ModelPackageName")
    if not isinstance(arn, str) or len(containers) != 1:
        raise StepFailed("only a model of one registered package (Containers[0].ModelPackageName) runs locally")
    package = package_by_arn(execution.workspace.registry.root, arn)
    model = job_name(execution.id, name)
    execution.properties[name] = {
        **arguments,
        "ModelName": model,
        "ModelArn": execution.workspace.job_arn("model", model),
        "ModelPackage": package,
    }
    result.message = f"{model}: {arn}"


def package_by_arn(registry_root: Path, arn: str) -> dict[str, Any]:
    """The local registry's version with this ARN (`<root>/<group>/<version, 6 digits>.json`)."""
    match = re.fullmatch(r"arn:aws[a-z-]*:sagemaker:[^:]*:\d{12}:model-package/([^/]+)/(\d+)", arn)
    path = registry_root / match.group(1) / f"{int(match.group(2)):06d}.json" if match else None
    if path is None or not path.is_file():
        raise StepFailed(f"model package {arn} is not in the local registry {registry_root}")
    package: dict[str, Any] = json.loads(path.read_text())
    return package


def run_transform(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
    run_job(execution, name, step, result, transform_job)


def transform_job(
    execution: Execution, name: str, arguments: dict[str, Any], job: str, work: Path, result: StepResult
) -> dict[str, Any]:
    workspace = execution.workspace
    started = workspace.clock()
    package = _model_package(execution, arguments.get("ModelName"))
    settings = TransformSettings(arguments)
    objects = workspace.s3.objects(settings.input_uri)
    if not objects:
        raise StepFailed(f"TransformInput: no objects under {settings.input_uri}")
    count = settings.instance_count
    shares = [objects[index::count] for index in range(count)]
    start_time = started.strftime("%Y-%m-%dT%H:%M:%SZ")

    def run_instance(index: int) -> list[tuple[str, int]]:
        if not shares[index]:
            return []
        # The model in a process of the step runtime, as the container loads it (the endpoint's own loader).
        code = load_package(package, workspace.s3, work / f"algo-{index + 1}", workspace.python)
        written = []
        try:
            for key, path in shares[index]:
                workspace.stopping.check()
                relative = key[len(split_uri(settings.input_uri)[1]) :].lstrip("/")
                lines = list(settings.transformed(code, path.read_text(encoding="utf-8"), start_time, key))
                target = workspace.s3.path(f"{settings.output_path}/{relative}.out")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
                written.append((relative, len(lines)))
        finally:
            code.close()
        return written

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix=name) as pool:
        try:
            written = [item for share in pool.map(run_instance, range(count)) for item in share]
        except LocalRunError:
            raise
        except ModelCodeError as error:  # the model's own code, in its process: its exception's class and message
            raise StepFailed(f"the model's inference code failed: {error.type_name}: {error}") from error
        except Exception as error:  # the model process itself (it ended, or answered garbage)
            raise StepFailed(f"the model's inference code failed: {type(error).__name__}: {error}") from error
    capture = arguments.get("DataCaptureConfig")
    if capture:
        write_batch_capture(workspace.s3, capture["DestinationS3Uri"], started, settings, [k for k, _ in written])
    result.job_seconds = (workspace.clock() - started).total_seconds()
    rows = sum(lines for _, lines in written)
    result.message = f"{rows} records of {len(written)} objects on {count} instance(s)"
    return {
        **arguments,
        "TransformJobName": job,
        "TransformJobArn": workspace.job_arn("transform-job", job),
        "TransformJobStatus": "Completed",
        "TransformStartTime": started.isoformat(),
        "TransformEndTime": workspace.clock().isoformat(),
    }


def _model_package(execution: Execution, model_name: Any) -> dict[str, Any]:
    for properties in execution.properties.values():
        if properties.get("ModelName") == model_name and "ModelPackage" in properties:
            package: dict[str, Any] = properties["ModelPackage"]
            return package
    raise StepFailed(f"ModelName {model_name!r} is no model a Model step of this execution created")


class TransformSettings:
    """The parts of a CreateTransformJob request the local transform honours, checked once."""

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        source = arguments.get("TransformInput", {})
        s3_source = source.get("DataSource", {}).get("S3DataSource", {})
        if s3_source.get("S3DataType", "S3Prefix") != "S3Prefix" or source.get("CompressionType", "None") != "None":
            raise StepFailed("TransformInput: only uncompressed S3Prefix input runs locally")
        self.input_uri: str = s3_source.get("S3Uri", "")
        self.content_type = source.get("ContentType")
        self.split = source.get("SplitType", "None")
        if self.split not in ("Line", "None"):
            raise StepFailed(f"TransformInput.SplitType {self.split!r}: only Line and None run locally")
        output = arguments.get("TransformOutput", {})
        self.output_path: str = str(output.get("S3OutputPath", "")).rstrip("/")
        self.accept = output.get("Accept")
        self.strategy = arguments.get("BatchStrategy", "MultiRecord")
        if self.strategy not in _BATCH_STRATEGIES:
            raise StepFailed(f"BatchStrategy {self.strategy!r} is not one of {', '.join(_BATCH_STRATEGIES)}")
        self.max_payload = int(arguments.get("MaxPayloadInMB", 6)) * _MB
        self.instance_count = arguments.get("TransformResources", {}).get("InstanceCount", 1)
        if not isinstance(self.instance_count, int) or self.instance_count < 1:
            raise StepFailed(f"TransformResources.InstanceCount {self.instance_count!r} is not a positive integer")
        processing = arguments.get("DataProcessing", {})
        self.input_filter = processing.get("InputFilter", "$")
        self.output_filter = processing.get("OutputFilter", "$")
        self.join_input = processing.get("JoinSource", "None") == "Input"
        for path in (self.input_filter, self.output_filter):
            select(["a"], path)  # an unsupported path fails here, before any request
        capture = arguments.get("DataCaptureConfig") or {}
        self.generate_ids = bool(capture.get("GenerateInferenceId"))

    def transformed(
        self, code: InferenceCode | InferenceProcess, text: str, start_time: str, where: str
    ) -> Iterator[str]:
        """The output lines of one input object."""
        records = [line for line in text.splitlines() if line.strip()] if self.split == "Line" else [text]
        for batch in self._batches(records):
            inputs = [_cells(record) for record in batch]
            body = "".join(_line(select(cells, self.input_filter)) + "\n" for cells in inputs)
            response, _ = code.invoke(body.encode("utf-8"), self.content_type, self.accept)
            answers = [line for line in response.decode("utf-8").splitlines() if line.strip()]
            if len(answers) != len(batch):
                raise StepFailed(f"{where}: the model answered {len(answers)} records for {len(batch)}")
            for cells, answer in zip(inputs, answers, strict=True):
                joined = [*cells, *_cells(answer)] if self.join_input else _cells(answer)
                kept = select(joined, self.output_filter)
                if self.generate_ids:
                    kept = [*kept, str(uuid.uuid4()), start_time]
                yield _line(kept)

    def _batches(self, records: list[str]) -> Iterator[list[str]]:
        if self.strategy == "SingleRecord":
            yield from ([record] for record in records)
            return
        batch: list[str] = []
        size = 0
        for record in records:
            if batch and size + len(record) + 1 > self.max_payload:
                yield batch
                batch, size = [], 0
            batch.append(record)
            size += len(record.encode("utf-8")) + 1
        if batch:
            yield batch


def select(cells: list[str], path: str) -> list[str]:
    """The cells a JSONPath picks from a CSV record; StepFailed for a path the local transform does not support."""
    if path == "$":
        return cells
    if match := _INDEX_LIST.fullmatch(path):
        try:
            return [cells[int(index)] for index in match.group(1).split(",")]
        except IndexError:
            raise StepFailed(f"JSONPath {path} is outside a record of {len(cells)} cells") from None
    if match := _SLICE.fullmatch(path):
        low, high = (int(part) if part else None for part in match.groups())
        return cells[low:high]
    raise StepFailed(f"JSONPath {path!r}: locally only $, $[i], $[i,j,...] and $[a:b] select CSV cells")


def _cells(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


def write_batch_capture(
    s3: LocalS3, destination: str, started: datetime, settings: TransformSettings, relative_keys: list[str]
) -> None:
    """The input and output manifests of batch capture, in the hour folder the job started in."""
    hour = started.strftime("%Y/%m/%d/%H")
    name = f"{uuid.uuid4()}.json"
    manifests = {
        "input": [{"prefix": settings.input_uri.rstrip("/") + "/"}, *relative_keys],
        "output": [{"prefix": f"{settings.output_path}/"}, *(f"{key}.out" for key in relative_keys)],
    }
    for folder, manifest in manifests.items():
        target = s3.path(f"{destination.rstrip('/')}/{folder}/{hour}/{name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
