"""Processing jobs: each instance of the job runs its python entrypoint as a local process (no Docker).

The job's inputs are copied into steps/<step>/input/..., its ContainerEntrypoint (a python script) runs with every
/opt/ml/processing path (`contract.PROCESSING_ROOT`) in its arguments pointing into steps/<step>/, with the job's
Environment plus REGISTRY_BACKEND=local and LOCAL_REGISTRY_DIR (`jobs.execute`); its outputs are then "uploaded". A job
of N > 1 instances runs N processes at once, each in steps/<step>/algo-<i>/ with its resourceconfig.json
(current_host, hosts); a ShardedByS3Key input gives instance i every N-th object in key order from the i-th on
(SageMaker documents only "about 1/N of the objects each"); every instance's outputs are uploaded to the same prefix,
and two instances writing the same object fail the step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.execution import Execution
from pipeline_defs.local.jobs import CONTAINER_PATH, container_path, download, execute, run_job
from pipeline_defs.local.results import StepResult

# SageMaker writes each processing instance's host and the job's hosts to /opt/ml/config/resourceconfig.json; locally
# the file is in the instance's folder and this variable names it (read by steps/preprocess.py, which cannot import
# this package: a test checks both sides agree).
RESOURCE_CONFIG_VARIABLE = "LOCAL_RESOURCE_CONFIG"


def run_processing(execution: Execution, name: str, step: dict[str, Any], result: StepResult) -> None:
    run_job(execution, name, step, result, processing_job)


def processing_job(
    execution: Execution, name: str, arguments: dict[str, Any], job: str, work: Path, result: StepResult
) -> dict[str, Any]:
    """The job on each of its instances (`InstanceCount`, each in its own folder when there are several), at once."""
    command = processing_command(arguments)
    count = arguments.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1)
    if not isinstance(count, int) or count < 1:
        raise StepFailed(f"ProcessingResources.ClusterConfig.InstanceCount {count!r} is not a positive integer")
    hosts = [f"algo-{number}" for number in range(1, count + 1)]
    instances = {host: work if count == 1 else work / host for host in hosts}
    job_outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for index, (host, folder) in enumerate(instances.items()):
        prepare_instance(execution, arguments, folder, (index, count))
        resource_config = folder / "config" / "resourceconfig.json"
        resource_config.parent.mkdir(parents=True, exist_ok=True)
        resource_config.write_text(json.dumps({"current_host": host, "hosts": hosts}))

    def run_instance(host: str) -> None:
        folder = instances[host]
        in_folder = [CONTAINER_PATH.sub(rf"\g<1>{folder}", str(a)) for a in command]
        extra = {RESOURCE_CONFIG_VARIABLE: str(folder / "config" / "resourceconfig.json")}
        try:
            execute(execution, [execution.workspace.python, *in_folder], folder, arguments, extra, folder, result)
        except StepFailed as error:
            raise type(error)(f"{host}: {error}" if count > 1 else str(error)) from error

    if count == 1:
        run_instance(hosts[0])
    else:  # the instances of a job run at the same time, each its own process group
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix=name) as pool:
            for finished in [pool.submit(run_instance, host) for host in hosts]:
                finished.result()  # the first failed instance (in host order) fails the step
    upload_outputs(execution, job_outputs, instances)
    return {
        **arguments,
        "ProcessingJobName": job,
        "ProcessingJobArn": execution.workspace.job_arn("processing-job", job),
        "ProcessingJobStatus": "Completed",
    }


def processing_command(arguments: Mapping[str, Any]) -> list[Any]:
    """The container's entrypoint (which must run a python script) without the interpreter, then its arguments."""
    application = arguments.get("AppSpecification", {})
    entrypoint = application.get("ContainerEntrypoint") or []
    if not entrypoint or Path(entrypoint[0]).name not in ("python", "python3"):
        raise StepFailed(f"ContainerEntrypoint {entrypoint} is not a python script; only those run locally")
    return [*entrypoint[1:], *application.get("ContainerArguments", [])]


def prepare_instance(execution: Execution, arguments: Mapping[str, Any], folder: Path, shard: tuple[int, int]) -> None:
    """One instance's inputs (its `shard` = (index, count) of a ShardedByS3Key input's objects) and output folders."""
    for item in arguments.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if source is None:
            raise StepFailed(f"input '{item.get('InputName')}': only S3Input inputs are supported locally")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix" or source.get("S3CompressionType", "None") != "None":
            raise StepFailed(f"input '{item.get('InputName')}': only uncompressed S3Prefix inputs run locally")
        sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
        destination = container_path(source.get("LocalPath"), folder)
        download(execution, item.get("InputName"), source.get("S3Uri"), destination, shard if sharded else (0, 1))
    for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
        container_path(item.get("S3Output", {}).get("LocalPath"), folder).mkdir(parents=True, exist_ok=True)


def upload_outputs(execution: Execution, job_outputs: list[dict[str, Any]], instances: Mapping[str, Path]) -> None:
    """Every instance's output folders to their S3 URIs; two instances writing the same object fail the step (in
    SageMaker the last upload would silently win)."""
    for item in job_outputs:
        output = item.get("S3Output", {})
        written: dict[str, str] = {}
        for host, folder in instances.items():
            local = container_path(output.get("LocalPath"), folder)
            for path in (p for p in local.rglob("*") if p.is_file()):
                relative = path.relative_to(local).as_posix()
                if relative in written:
                    raise StepFailed(
                        f"instances {written[relative]} and {host} both wrote {item.get('OutputName')}/{relative}:"
                        " each instance must name its files uniquely (e.g. after its host)"
                    )
                written[relative] = host
            execution.workspace.s3.upload(local, output.get("S3Uri"))
