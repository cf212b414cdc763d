"""`mlops step load ... --env E`: a step of an execution in AWS, from its job's description and S3 inputs.

The step's job (a cache hit's: the job it reused) is described (DescribeProcessingJob / DescribeTrainingJob: the same
fields the local engine records), then each input is downloaded under DIR where the job had it, with a progress line
on stderr. The unit's buckets are encrypted with its KMS key: GetObject decrypts with the caller's kms:Decrypt on it,
so nothing here names the key. What only a real account confirms (the caller's permissions): README, "Experiments".
"""

from __future__ import annotations

import io
import sys
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.aws import call, client
from mlops.common import UsageError, pipeline_name
from mlops.cost.paging import execution_steps, items
from mlops.report.aws import latest_execution
from mlops.step_load import LoadedStep, job_arguments
from pipeline_defs.local.jobs import input_copies
from pipeline_defs.local.s3 import split_uri

CHUNK = 1 << 20


def execution_arn(sagemaker: Any, config: EnvironmentConfig, pipeline: str, execution: str) -> str:
    if execution == "latest":
        return latest_execution(sagemaker, pipeline_name(config, pipeline))
    if not execution.startswith("arn:"):
        raise UsageError(f"--execution {execution!r}: in AWS give the execution's ARN, or latest")
    return execution


def execution_parameters(sagemaker: Any, arn: str) -> dict[str, str]:
    """{name: value as text} of every parameter the execution ran with (ListPipelineParametersForExecution)."""
    listed = items(
        sagemaker,
        "list_pipeline_parameters_for_execution",
        "PipelineParameters",
        f"reading the parameters of {arn}",
        PipelineExecutionArn=arn,
    )
    return {str(entry["Name"]): str(entry["Value"]) for entry in listed}


def step_job(
    sagemaker: Any, arn: str, step: str, listed: list[dict[str, Any]] | None = None
) -> tuple[str, dict[str, Any]]:
    """(step type, job description) of a succeeded processing or training step of the execution `arn` (`listed`:
    its steps, when already listed)."""
    steps = {entry["StepName"]: entry for entry in (listed or execution_steps(sagemaker, arn))}
    found = steps.get(step)
    if found is None:
        raise UsageError(f"no step {step} in {arn}: it has {', '.join(steps) or 'none'}")
    if found.get("StepStatus") != "Succeeded":
        raise UsageError(f"step {step} did not succeed in {arn} ({found.get('StepStatus')})")
    metadata = found.get("Metadata") or {}
    if "ProcessingJob" in metadata:
        name = metadata["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
        what = f"describing processing job {name} (step {step})"
        return "Processing", call(sagemaker.describe_processing_job, what, ProcessingJobName=name)
    if "TrainingJob" in metadata:
        name = metadata["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
        what = f"describing training job {name} (step {step})"
        return "Training", call(sagemaker.describe_training_job, what, TrainingJobName=name)
    raise UsageError(f"step {step} is not a processing or training step: only those run code")


def load_from_aws(config: EnvironmentConfig, pipeline: str, execution: str, step: str, folder: Path) -> LoadedStep:
    sagemaker, s3 = client("sagemaker", config), client("s3", config)
    arn = execution_arn(sagemaker, config, pipeline, execution)
    step_type, description = step_job(sagemaker, arn, step)
    copies = input_copies(step_type, description, folder)
    if step_type == "Training":
        source = str(description.get("HyperParameters", {}).get("sagemaker_submit_directory", "")).strip('"')
        with tarfile.open(fileobj=io.BytesIO(read_object(s3, source)), mode="r:*") as tar:
            tar.extractall(folder / "code", filter="data")
    download(s3, copies, progress=lambda line: print(line, end="", file=sys.stderr, flush=True))
    script, argv, environment = job_arguments(step_type, description)
    name = arn.rsplit("/", 1)[-1]
    job = description.get("ProcessingJobArn") or description.get("TrainingJobArn") or ""
    return LoadedStep(pipeline_name(config, pipeline), name, str(job), step, step_type, script, argv, environment)


def read_object(s3: Any, uri: str) -> bytes:
    bucket, key = split_uri(uri)
    body: bytes = call(s3.get_object, f"reading {uri}", f"{uri} does not exist", Bucket=bucket, Key=key)["Body"].read()
    return body


def download(s3: Any, copies: Mapping[Path, str], progress: Callable[[str], None]) -> int:
    """Every object under each S3 prefix into its folder (a single object: by its name); returns the bytes read."""
    listed = []
    for folder, uri in copies.items():
        bucket, prefix = split_uri(uri)
        for entry in items(s3, "list_objects_v2", "Contents", f"listing {uri}", Bucket=bucket, Prefix=prefix):
            key = entry["Key"]
            relative = Path(key).name if key == prefix else key[len(prefix) :].lstrip("/")
            if relative and not key.endswith("/"):
                listed.append((bucket, key, folder / relative, int(entry.get("Size", 0))))
        if not any(item[2].is_relative_to(folder) for item in listed):
            raise UsageError(f"no objects under {uri}: the input is gone (expired or deleted)")
    total, done = sum(size for *_, size in listed), 0
    for bucket, key, destination, _ in listed:
        destination.parent.mkdir(parents=True, exist_ok=True)
        body = call(s3.get_object, f"reading s3://{bucket}/{key}", Bucket=bucket, Key=key)["Body"]
        with destination.open("wb") as file:
            while chunk := body.read(CHUNK):
                file.write(chunk)
                done += len(chunk)
                progress(f"\rdownloading {len(listed)} object(s): {done / 1e6:.1f} of {total / 1e6:.1f} MB")
    progress("\n" if listed else "")
    return done
