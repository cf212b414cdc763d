"""Training jobs in script mode, run as local processes with the image's runtime (no Docker).

The `sagemaker_submit_directory` tarball is unpacked and `sagemaker_program` runs with SM_CHANNEL_<NAME>,
SM_MODEL_DIR, SM_OUTPUT_DATA_DIR, SM_CURRENT_HOST, SM_HOSTS, ... and the hyperparameters as `--key value`, on the step
runtime, or on the XGBoost runtime for SageMaker's XGBoost image (step_runtime.job_python). A job of N > 1 instances
(ResourceConfig.InstanceCount) runs N processes at once, each in steps/<step>/algo-<i>/ with its channels (a
ShardedByS3Key channel gives instance i every N-th object in key order from the i-th on, as for processing), and
LEADER_ADDRESS_VARIABLE names a free local host:port where algo-1 can listen for the others (on SageMaker they reach
algo-1 by its host name). The model dir of algo-1 becomes <S3OutputPath>/<job>/output/model.tar.gz
(ModelArtifacts.S3ModelArtifacts); another instance that writes a model file fails the step, since only algo-1's is
kept. MetricDefinitions are read from algo-1's log into FinalMetricDataList.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import tarfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.execution import Execution
from pipeline_defs.local.jobs import download, execute, run_job
from pipeline_defs.local.results import StepResult
from pipeline_defs.local.step_runtime import job_python

# Where the first instance of a multi-instance job can listen for the others: "127.0.0.1:<free port>" (read by
# steps/train_xgboost.py, which cannot import this package: a test checks both sides agree).
LEADER_ADDRESS_VARIABLE = "LOCAL_LEADER_ADDRESS"


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
    count = arguments.get("ResourceConfig", {}).get("InstanceCount", 1)
    if not isinstance(count, int) or count < 1:
        raise StepFailed(f"ResourceConfig.InstanceCount {count!r} is not a positive integer")
    hosts = [f"algo-{number}" for number in range(1, count + 1)]
    instances = {host: work if count == 1 else work / host for host in hosts}
    python = job_python(arguments.get("AlgorithmSpecification", {}).get("TrainingImage"), execution.workspace.python)
    user_hyperparameters = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    command = [python, str(code / program)]
    for key, value in user_hyperparameters.items():
        command += [f"--{key}", str(value)]
    shared = {
        "SM_CHANNELS": json.dumps(
            sorted(channel.get("ChannelName") for channel in arguments.get("InputDataConfig", []))
        ),
        "SM_HPS": json.dumps(user_hyperparameters),
        "SM_HOSTS": json.dumps(hosts),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_DIR": submit,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])),
        **({LEADER_ADDRESS_VARIABLE: f"127.0.0.1:{_free_port()}"} if count > 1 else {}),
        **{f"SM_HP_{key.upper().replace('-', '_')}": str(value) for key, value in user_hyperparameters.items()},
    }

    def run_instance(index: int) -> str:
        host, folder = hosts[index], instances[hosts[index]]
        channels = _download_channels(execution, arguments, folder, (index, count))
        model_dir, output_dir = folder / "model", folder / "output"
        (output_dir / "data").mkdir(parents=True)
        model_dir.mkdir()
        environment = {
            **shared,
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DIR": str(output_dir),
            "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
            "SM_INPUT_DIR": str(folder / "input"),
            "SM_CURRENT_HOST": host,
            **{f"SM_CHANNEL_{channel.upper()}": str(path) for channel, path in channels.items()},
        }
        try:
            return execute(execution, command, folder, arguments, environment, code, result)
        except StepFailed as error:
            raise type(error)(f"{host}: {error}" if count > 1 else str(error)) from error

    if count == 1:
        logs = [run_instance(0)]
    else:  # the instances of a job run at the same time, each its own process group
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix=name) as pool:
            logs = [finished.result() for finished in [pool.submit(run_instance, index) for index in range(count)]]
    for host in hosts[1:]:
        written = sorted(path.name for path in (instances[host] / "model").rglob("*") if path.is_file())
        if written:
            raise StepFailed(f"{host} wrote {written} to its model folder: only algo-1's model folder is kept")
    leader = instances[hosts[0]]
    return {
        **arguments,
        "TrainingJobName": job,
        "TrainingJobArn": execution.workspace.job_arn("training-job", job),
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "ModelArtifacts": {
            "S3ModelArtifacts": _upload_model(execution, arguments, job, leader / "model", leader / "output")
        },
        "FinalMetricDataList": _metrics(arguments, logs[0], execution.workspace.clock().isoformat()),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _download_channels(
    execution: Execution, arguments: Mapping[str, Any], work: Path, shard: tuple[int, int]
) -> dict[str, Path]:
    """{channel: local folder} of the job's S3Prefix input channels, downloaded (a ShardedByS3Key channel: this
    instance's `shard` = (index, count) of its objects)."""
    channels = {}
    for channel in arguments.get("InputDataConfig", []):
        channel_name = channel.get("ChannelName")
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailed(f"channel '{channel_name}': only S3Prefix S3DataSource channels run locally")
        channels[channel_name] = work / "input" / "data" / channel_name
        sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
        download(
            execution,
            f"channel {channel_name}",
            source.get("S3Uri"),
            channels[channel_name],
            shard if sharded else (0, 1),
        )
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
