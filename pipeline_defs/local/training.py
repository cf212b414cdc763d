"""Training jobs in script mode, run as a local process with the current interpreter (no Docker).

The `sagemaker_submit_directory` tarball is unpacked and `sagemaker_program` runs with SM_CHANNEL_<NAME>,
SM_MODEL_DIR, SM_OUTPUT_DATA_DIR, ... and the hyperparameters as `--key value`; the model dir becomes
<S3OutputPath>/<job>/output/model.tar.gz (ModelArtifacts.S3ModelArtifacts). MetricDefinitions are read from its log
into FinalMetricDataList.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.execution import Execution
from pipeline_defs.local.jobs import download, execute, run_job
from pipeline_defs.local.results import StepResult


def run_training(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
    run_job(execution, name, step, result, training_job)


def training_job(
    execution: Execution, name: str, arguments: dict[str, Any], job: str, work: Path, result: StepResult
) -> dict[str, Any]:
    hyperparameters = arguments.get("HyperParameters", {})
    program, submit = hyperparameters.get("sagemaker_program"), hyperparameters.get("sagemaker_submit_directory")
    if not program or not submit:
        raise StepFailed("only script mode runs locally: HyperParameters need sagemaker_program and ..._directory")
    code = work / "code"
    with tarfile.open(fileobj=io.BytesIO(execution.workspace.s3.read_bytes(submit)), mode="r:*") as tar:
        tar.extractall(code, filter="data")
    if not (code / program).is_file():
        raise StepFailed(f"sagemaker_program {program} is not in {submit}")
    channels = _download_channels(execution, arguments, work)
    model_dir, output_dir = work / "model", work / "output"
    (output_dir / "data").mkdir(parents=True)
    model_dir.mkdir()
    user_hyperparameters = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    environment = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(output_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
        "SM_INPUT_DIR": str(work / "input"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(user_hyperparameters),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_DIR": submit,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])),
        **{f"SM_CHANNEL_{channel.upper()}": str(path) for channel, path in channels.items()},
        **{f"SM_HP_{key.upper().replace('-', '_')}": str(value) for key, value in user_hyperparameters.items()},
    }
    command = [execution.workspace.python, str(code / program)]
    for key, value in user_hyperparameters.items():
        command += [f"--{key}", str(value)]
    log = execute(execution, command, work, arguments, environment, code, result)
    return {
        **arguments,
        "TrainingJobName": job,
        "TrainingJobArn": execution.workspace.job_arn("training-job", job),
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": _upload_model(execution, arguments, job, model_dir, output_dir)},
        "FinalMetricDataList": _metrics(arguments, log, execution.workspace.clock().isoformat()),
    }


def _download_channels(execution: Execution, arguments: Mapping[str, Any], work: Path) -> dict[str, Path]:
    """{channel: local folder} of the job's S3Prefix input channels, downloaded."""
    channels = {}
    for channel in arguments.get("InputDataConfig", []):
        channel_name = channel.get("ChannelName")
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailed(f"channel '{channel_name}': only S3Prefix S3DataSource channels run locally")
        channels[channel_name] = work / "input" / "data" / channel_name
        download(execution, f"channel {channel_name}", source.get("S3Uri"), channels[channel_name])
    return channels


def _upload_model(
    execution: Execution, arguments: Mapping[str, Any], job: str, model_dir: Path, output_dir: Path
) -> str:
    """Upload the model (and output data) as SageMaker does; returns ModelArtifacts.S3ModelArtifacts."""
    s3 = execution.workspace.s3
    output_path = arguments.get("OutputDataConfig", {}).get("S3OutputPath")
    if not isinstance(output_path, str) or not output_path.startswith("s3://"):
        raise StepFailed(f"OutputDataConfig.S3OutputPath must be an S3 URI, got {output_path!r}")
    prefix = f"{output_path.rstrip('/')}/{job}/output"
    if arguments.get("OutputDataConfig", {}).get("CompressionType", "GZIP") == "NONE":
        model_uri = f"{prefix}/model/"
        s3.upload(model_dir, model_uri)
    else:
        model_uri = f"{prefix}/model.tar.gz"
        s3.upload_tarball(model_dir, model_uri)
    if any((output_dir / "data").iterdir()):
        s3.upload_tarball(output_dir / "data", f"{prefix}/output.tar.gz")
    return model_uri


def _metrics(arguments: Mapping[str, Any], log: str, finished: str) -> list[dict[str, Any]]:
    """FinalMetricDataList: the last value each MetricDefinitions regex found in the job's log."""
    metrics = []
    for definition in arguments.get("AlgorithmSpecification", {}).get("MetricDefinitions", []):
        values = re.findall(definition["Regex"], log)
        if values:
            value = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            metrics.append({"MetricName": definition["Name"], "Value": float(value), "Timestamp": finished})
    return metrics
