"""Processing and training jobs, run as local processes with the current interpreter (no Docker).

- Processing: the job's inputs are copied into steps/<step>/input/..., its ContainerEntrypoint (a python script)
  runs with every /opt/ml/processing path (`contract.PROCESSING_ROOT`) in its arguments pointing into
  steps/<step>/, with the job's Environment plus REGISTRY_BACKEND=local and LOCAL_REGISTRY_DIR; its outputs are
  then "uploaded". A job of N > 1 instances runs N processes at once, each in steps/<step>/algo-<i>/ with its
  resourceconfig.json (current_host, hosts); a ShardedByS3Key input gives instance i every N-th object in key order
  from the i-th on (SageMaker documents only "about 1/N of the objects each"); every instance's outputs are uploaded
  to the same prefix, and two instances writing the same object fail the step.
- Training (script mode): `training.py`.

A job is named as SageMaker names the jobs a pipeline starts (`contract.PIPELINE_JOB_PREFIX` + execution + step).
A step with CacheConfig.Enabled first looks for a cache hit (`cache.py`, unless the runner runs with `use_cache`
off); a hit reuses that run's properties, unless an input's content changed since (`InputChanged`).

Each job's process leads its own process group (a new session: the terminal's Ctrl-C reaches `mlops`, not the step).
`Stopping` turns SIGINT/SIGTERM during a run into a stop: every running step's group gets SIGTERM, then SIGKILL after
`STOP_GRACE_SECONDS` (or at a second signal), the step ends as `RunStopped`, and no later step starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline_defs.contract import PIPELINE_JOB_PREFIX, PROCESSING_ROOT
from pipeline_defs.local.assembly import LOCAL_ACCOUNT
from pipeline_defs.local.cache import cache_key, check_inputs_unchanged, expire_after
from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.execution import Execution
from pipeline_defs.local.expressions import evaluate
from pipeline_defs.local.results import StepResult
from pipeline_defs.local.s3 import LocalS3, split_uri

_CONTAINER_PATH = re.compile(rf"(^|=){re.escape(PROCESSING_ROOT)}(?=/|$)")
# What runs a job: (execution, step name, evaluated arguments, job name, work dir, result) -> the job's properties.
Job = Callable[[Execution, str, dict[str, Any], str, Path, StepResult], dict[str, Any]]
# How long a stopped step may take to exit on SIGTERM before its process group is killed (SageMaker's StopProcessingJob
# likewise sends SIGTERM, then SIGKILL).
STOP_GRACE_SECONDS = 5.0
# How often a waiting runner looks whether a stop's grace period is over.
_POLL_SECONDS = 0.2
# SageMaker writes each processing instance's host and the job's hosts to /opt/ml/config/resourceconfig.json; locally
# the file is in the instance's folder and this variable names it (read by steps/preprocess.py, which cannot import
# this package: a test checks both sides agree).
RESOURCE_CONFIG_VARIABLE = "LOCAL_RESOURCE_CONFIG"


def job_name(execution_id: str, step: str) -> str:
    """`pipelines-<execution>-<step>`, as SageMaker names a pipeline's jobs (63 characters at most)."""
    return f"{PIPELINE_JOB_PREFIX}{execution_id}-{re.sub(r'[^A-Za-z0-9-]', '-', step)}"[:63].rstrip("-")


def run_job(execution: Execution, name: str, step: dict[str, Any], result: StepResult, job: Job) -> None:
    """A job step: a cache hit, or the job run in steps/<step>/ (then recorded in the cache when it caches)."""
    runner = execution.runner
    name_of_job = job_name(execution.id, name)
    arguments = evaluate(step.get("Arguments", {}), execution.context(step["Type"], name_of_job))
    cache = step.get("CacheConfig") or {}
    key = cache_key(step["Type"], arguments) if cache.get("Enabled") else None
    result.cacheable = key is not None
    inputs = input_fingerprints(execution, step["Type"], arguments) if key is not None else {}
    if key is not None and runner.use_cache:
        expiry = expire_after(cache)
        hit = runner.cache.lookup(name, key, runner.clock() - expiry if expiry is not None else None)
        if hit:
            check_inputs_unchanged(name, hit, inputs)
            execution.properties[name] = hit["properties"]
            result.cache_hit, result.cache_source = True, hit["execution_id"]
            result.outputs = outputs(step["Type"], hit["properties"])
            return
    runner.progress(f"{name} ({step['Type']}) running")
    work = execution.dir / "steps" / name
    work.mkdir(parents=True)
    result.work_dir = str(work)
    properties = job(execution, name, arguments, name_of_job, work, result)
    execution.properties[name] = properties
    result.outputs = outputs(step["Type"], properties)
    if key is not None:
        runner.cache.record(name, key, execution.id, runner.clock(), properties, inputs)


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
    found = {uri: execution.runner.s3.fingerprint(uri) for uri in uris}
    return {uri: fingerprint for uri, fingerprint in found.items() if fingerprint is not None}


# Processing ------------------------------------------------------------------------------------------------------
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
        in_folder = [_CONTAINER_PATH.sub(rf"\g<1>{folder}", str(a)) for a in command]
        extra = {RESOURCE_CONFIG_VARIABLE: str(folder / "config" / "resourceconfig.json")}
        try:
            execute(execution, [execution.runner.python, *in_folder], folder, arguments, extra, folder, result)
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
        "ProcessingJobArn": arn(execution, "processing-job", job),
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
            execution.runner.s3.upload(local, output.get("S3Uri"))


def container_path(path: Any, work: Path) -> Path:
    """A /opt/ml/processing/... path of the container, in the step's work dir."""
    if not isinstance(path, str) or not _CONTAINER_PATH.match(path):
        raise StepFailed(f"LocalPath {path!r} is not under {PROCESSING_ROOT}/")
    return work / path[len(PROCESSING_ROOT) :].lstrip("/")


# Shared by both job types ----------------------------------------------------------------------------------------
def download(execution: Execution, what: str, uri: Any, destination: Path, shard: tuple[int, int] = (0, 1)) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    s3 = execution.runner.s3
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
    runner = execution.runner
    environment = {
        **os.environ,
        **{key: str(value) for key, value in arguments.get("Environment", {}).items()},
        **extra,
        "AWS_REGION": runner.region,
        "AWS_DEFAULT_REGION": runner.region,
        "REGISTRY_BACKEND": "local",
        "LOCAL_REGISTRY_DIR": str(runner.registry.root),
    }
    timeout = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    log_path = work / "log.txt"
    runner.stopping.check()  # a stop asked for while the inputs were copied: the job never starts
    begin = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            errors, timed_out = runner.stopping.wait(process, timeout)
        finally:
            result.job_seconds = time.perf_counter() - begin
        log.write(errors)
    runner.stopping.check()
    if timed_out:
        raise StepFailed(f"stopped after MaxRuntimeInSeconds={timeout} (log: {log_path})")
    if process.returncode != 0:
        last = next((line for line in reversed(errors.splitlines()) if line.strip()), "no error output")
        last = in_s3_terms(last.strip(), result.type, arguments, work)
        if "codec can't decode" in last:  # the script did not say which file: name the data objects that are not text
            undecodable = not_utf8_csv(runner.s3, input_copies(result.type, arguments, work).values())
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


# Stopping a run --------------------------------------------------------------------------------------------------
class RunStopped(StepFailed):
    """The run was asked to stop (SIGINT/SIGTERM) while this step ran or before it started."""


class Stopping:
    """SIGINT/SIGTERM during a run: stop every running job's process group; no later step starts."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.requested_at = 0.0
        self._groups: set[int] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM for the block (only the main thread can install signal handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.signal(number, self._handle) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        again = self.signal_name is not None
        if not again:
            self.signal_name, self.requested_at = signal.Signals(number).name, time.monotonic()
        self._signal_groups(signal.SIGKILL if again else signal.SIGTERM)

    def check(self) -> None:
        """RunStopped once a stop was asked for."""
        if self.signal_name is not None:
            raise RunStopped(f"stopped by {self.signal_name}")

    def wait(self, process: subprocess.Popen[str], timeout: float | None) -> tuple[str, bool]:
        """(the job's stderr, whether it ran out of time) once its process group is gone.

        The group is killed at the timeout, after a stop's grace period, and when the job's own process has exited
        (so a background process it left behind can neither hold its stderr open nor outlive the step).
        """
        with self._lock:
            self._groups.add(process.pid)
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        timed_out = False
        try:
            while True:
                try:
                    return process.communicate(timeout=_POLL_SECONDS)[1], timed_out
                except subprocess.TimeoutExpired:
                    now = time.monotonic()
                    timed_out = timed_out or (deadline is not None and now >= deadline and process.poll() is None)
                    stop_overdue = self.signal_name is not None and now - self.requested_at >= STOP_GRACE_SECONDS
                    if timed_out or stop_overdue or process.poll() is not None:
                        _kill_group(process.pid, signal.SIGKILL)
        finally:
            with self._lock:
                self._groups.discard(process.pid)
            _kill_group(process.pid, signal.SIGKILL)  # nothing a step started outlives it

    def _signal_groups(self, number: signal.Signals) -> None:
        with self._lock:
            groups = list(self._groups)
        for group in groups:
            _kill_group(group, number)


def _kill_group(group: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, number)


def arn(execution: Execution, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{execution.runner.region}:{LOCAL_ACCOUNT}:{kind}/{name.lower()}"


def outputs(step_type: str, properties: Mapping[str, Any]) -> dict[str, str]:
    """{name: S3 URI} of what a job produced, for the run summary."""
    if step_type == "Training":
        return {"model": properties.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")}
    job_outputs = properties.get("ProcessingOutputConfig", {}).get("Outputs", [])
    return {item.get("OutputName"): item.get("S3Output", {}).get("S3Uri", "") for item in job_outputs}
