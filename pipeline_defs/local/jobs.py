"""What processing and training jobs share: the cache, their inputs, and running the job's process.

A job step (`processing.py`, `training.py`) runs as local processes with the job's interpreter (no Docker). A job is
named as SageMaker names the jobs a pipeline starts (`contract.PIPELINE_JOB_PREFIX` + execution + step). A step with
CacheConfig.Enabled first looks for a cache hit (`cache.py`, unless the run has `use_cache` off); a hit reuses that
run's properties, unless an input's content changed since (`InputChanged`). Otherwise the job runs in
steps/<step>/ of the execution, its process in a process group of its own that ends with it (`stopping.py`), and
its log in log.txt.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline_defs.contract import PIPELINE_JOB_PREFIX, PROCESSING_ROOT
from pipeline_defs.local.cache import cache_key, check_inputs_unchanged, expire_after
from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.execution import Execution
from pipeline_defs.local.expressions import evaluate
from pipeline_defs.local.forkserver import preloaded
from pipeline_defs.local.results import StepResult
from pipeline_defs.local.s3 import LocalS3, split_uri

# A processing container's path (/opt/ml/processing...), alone or as the value of a `name=` argument.
CONTAINER_PATH = re.compile(rf"(^|=){re.escape(PROCESSING_ROOT)}(?=/|$)")
# What runs a job: (execution, step name, evaluated arguments, job name, work dir, result) -> the job's properties.
Job = Callable[[Execution, str, dict[str, Any], str, Path, StepResult], dict[str, Any]]


def job_name(execution_id: str, step: str) -> str:
    """`pipelines-<execution>-<step>`, as SageMaker names a pipeline's jobs (63 characters at most)."""
    return f"{PIPELINE_JOB_PREFIX}{execution_id}-{re.sub(r'[^A-Za-z0-9-]', '-', step)}"[:63].rstrip("-")


def run_job(execution: Execution, name: str, step: dict[str, Any], result: StepResult, job: Job) -> None:
    """A job step: a cache hit, or the job run in steps/<step>/ (then recorded in the cache when it caches)."""
    workspace = execution.workspace
    name_of_job = job_name(execution.id, name)
    arguments = evaluate(step.get("Arguments", {}), execution.context(step["Type"], name_of_job))
    cache = step.get("CacheConfig") or {}
    key = cache_key(step["Type"], arguments) if cache.get("Enabled") else None
    result.cacheable = key is not None
    inputs = input_fingerprints(execution, step["Type"], arguments) if key is not None else {}
    if key is not None and workspace.use_cache:
        expiry = expire_after(cache)
        hit = workspace.cache.lookup(name, key, workspace.clock() - expiry if expiry is not None else None)
        if hit:
            check_inputs_unchanged(name, hit, inputs)
            execution.properties[name] = hit["properties"]
            result.cache_hit, result.cache_source = True, hit["execution_id"]
            result.outputs = outputs(step["Type"], hit["properties"])
            return
    workspace.progress(f"{name} ({step['Type']}) running")
    work = execution.dir / "steps" / name
    work.mkdir(parents=True)
    result.work_dir = str(work)
    properties = job(execution, name, arguments, name_of_job, work, result)
    execution.properties[name] = properties
    result.outputs = outputs(step["Type"], properties)
    if key is not None and workspace.record_cache:
        workspace.cache.record(name, key, execution.id, workspace.clock(), properties, inputs)


def input_copies(step_type: str, arguments: Mapping[str, Any], work: Path) -> dict[Path, str]:
    """{local folder: S3 URI} of every input a job reads: processing inputs, or training channels."""
    if step_type == "Training":
        return {
            work / "input" / "data" / str(channel.get("ChannelName")): channel["DataSource"]["S3DataSource"]["S3Uri"]
            for channel in arguments.get("InputDataConfig", [])
            if isinstance(channel.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri"), str)
        }
    return {
        container_path(item["S3Input"].get("LocalPath"), work): item["S3Input"]["S3Uri"]
        for item in arguments.get("ProcessingInputs", [])
        if isinstance(item.get("S3Input", {}).get("S3Uri"), str)
    }


def input_fingerprints(execution: Execution, step_type: str, arguments: Mapping[str, Any]) -> dict[str, str]:
    """{URI: content fingerprint} of the local objects a job reads (assets are content-addressed already)."""
    uris = input_copies(step_type, arguments, execution.dir).values()
    found = {uri: execution.workspace.s3.fingerprint(uri) for uri in uris}
    return {uri: fingerprint for uri, fingerprint in found.items() if fingerprint is not None}


def container_path(path: Any, work: Path) -> Path:
    """A /opt/ml/processing/... path of the container, in the step's work dir."""
    if not isinstance(path, str) or not CONTAINER_PATH.match(path):
        raise StepFailed(f"LocalPath {path!r} is not under {PROCESSING_ROOT}/")
    return work / path[len(PROCESSING_ROOT) :].lstrip("/")


def download(execution: Execution, what: str, uri: Any, destination: Path, shard: tuple[int, int] = (0, 1)) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    s3 = execution.workspace.s3
    if s3.download(uri, destination, shard) == 0:
        raise StepFailed(f"input {what}: no objects under {uri} (locally: {s3.describe(uri)})")


def execute(
    execution: Execution,
    command: list[str],
    work: Path,
    arguments: Mapping[str, Any],
    extra: Mapping[str, str],
    cwd: Path,
    result: StepResult,
) -> str:
    """Run the job's process with its environment; returns its log. A non-zero exit fails the step."""
    workspace = execution.workspace
    environment = {
        # OpenMP threads (scikit-learn's histogram boosting) sleep while they wait instead of spinning: here the jobs
        # share the machine's cores with each other and everything else, unlike on an instance of their own, and
        # spinning threads that lose their core slowed Train up to tenfold (README, "Scale and memory").
        "OMP_WAIT_POLICY": "PASSIVE",
        **os.environ,
        **{key: str(value) for key, value in arguments.get("Environment", {}).items()},
        **extra,
        "AWS_REGION": workspace.region,
        "AWS_DEFAULT_REGION": workspace.region,
        "REGISTRY_BACKEND": "local",
        "LOCAL_REGISTRY_DIR": str(workspace.registry.root),
    }
    timeout = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    log_path = work / "log.txt"
    workspace.stopping.check()  # a stop asked for while the inputs were copied: the job never starts
    result.interpreter = command[0]
    begin = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            preloaded(command, environment),
            cwd=cwd,
            env=environment,
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            errors, timed_out = workspace.stopping.wait(process, timeout)
        finally:
            result.job_seconds = time.perf_counter() - begin
        log.write(errors)
    workspace.stopping.check()
    if timed_out:
        raise StepFailed(f"stopped after MaxRuntimeInSeconds={timeout} (log: {log_path})")
    if process.returncode != 0:
        last = next((line for line in reversed(errors.splitlines()) if line.strip()), "no error output")
        last = in_s3_terms(last.strip(), result.type, arguments, work)
        if "codec can't decode" in last:  # the script did not say which file: name the data objects that are not text
            undecodable = not_utf8_csv(workspace.s3, input_copies(result.type, arguments, work).values())
            last += f" ({', '.join(undecodable)}: not UTF-8 text)" if undecodable else ""
        raise StepFailed(f"exited with code {process.returncode}: {last} (log: {log_path})")
    return log_path.read_text()


def in_s3_terms(message: str, step_type: str, arguments: Mapping[str, Any], work: Path) -> str:
    """`message` with each local copy of an input named by the S3 object it was copied from."""
    copies = sorted(input_copies(step_type, arguments, work).items(), key=lambda item: -len(str(item[0])))
    for local, uri in copies:  # the deepest folder first
        message = message.replace(f"{local}/", f"{uri.rstrip('/')}/").replace(str(local), uri)
    return message


def not_utf8_csv(s3: LocalS3, uris: Iterable[str]) -> list[str]:
    """The CSV objects under `uris` (in local buckets) whose bytes are not UTF-8 text, as S3 URIs."""
    found = []
    for uri in uris:
        if split_uri(uri)[0] in s3.asset_buckets:
            continue
        for key, path in s3.objects(uri):
            try:
                if key.endswith(".csv"):
                    path.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                found.append(f"s3://{split_uri(uri)[0]}/{key}")
    return found


def outputs(step_type: str, properties: Mapping[str, Any]) -> dict[str, str]:
    """{name: S3 URI} of what a job produced, for the run summary."""
    if step_type == "Training":
        return {"model": properties.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")}
    if step_type == "Transform":
        capture = properties.get("DataCaptureConfig") or {}
        return {"scores": properties.get("TransformOutput", {}).get("S3OutputPath", "")} | (
            {"capture": capture["DestinationS3Uri"]} if "DestinationS3Uri" in capture else {}
        )
    job_outputs = properties.get("ProcessingOutputConfig", {}).get("Outputs", [])
    return {item.get("OutputName"): item.get("S3Output", {}).get("S3Uri", "") for item in job_outputs}
