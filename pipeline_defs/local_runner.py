"""Runs a deployed pipeline definition on this machine: no Docker, no AWS account, the same JSON CloudFormation gets.

    assembly = load_assembly(Path("cdk.out"), region="eu-west-1")
    runner = LocalRunner(assembly.definitions["churn-dev-training"], pipeline_name="churn-dev-training",
                         state_dir=Path(".local"), region="eu-west-1", assets=assembly.assets)
    result = runner.run({"InputDataUri": "s3://local-landing/datasets/sample-v1/"})

The definition comes out of the synthesized template (`tools.pipeline_diff.pipeline_definitions`), its Fn::Sub
variables replaced by local stand-ins (`local_values`: buckets `local-artifacts` / `local-landing`, dummy role and
key ARNs). Everything lives in the state dir:

    s3/<bucket>/<key>                   the buckets; the CDK asset bucket is read from the assembly's staged files
                                        (`asset.<hash>.<ext>`, found through its asset manifests), read-only
    registry/<group>/<version>.json     the model registry (pipeline_defs.local_registry)
    executions/<pipeline>/<id>/         execution.json, and steps/<step>/ with each job's dirs and log.txt
    cache/<pipeline>.json               the step cache index

Steps run in dependency order (data references and DependsOn; a branch step after its condition), one at a time:
- Processing: the job's inputs are copied into steps/<step>/input/..., its ContainerEntrypoint (a python script)
  runs with the current interpreter, every /opt/ml/processing path in its arguments pointing into steps/<step>/,
  with the job's Environment plus REGISTRY_BACKEND=local and LOCAL_REGISTRY_DIR; its outputs are then "uploaded".
- Training (script mode): the `sagemaker_submit_directory` tarball is unpacked and `sagemaker_program` runs with
  SM_CHANNEL_<NAME>, SM_MODEL_DIR, SM_OUTPUT_DATA_DIR, ... and the hyperparameters as `--key value`; the model dir
  becomes <S3OutputPath>/<job>/output/model.tar.gz (ModelArtifacts.S3ModelArtifacts). MetricDefinitions are read
  from its log into FinalMetricDataList.
- Condition, Fail and RegisterModel are evaluated here; RegisterModel writes a version into the local registry.
Any other step type is an error that names the step and its type: nothing is skipped silently.

Caching follows SageMaker: a step with CacheConfig.Enabled is a hit when the same step of the same pipeline
succeeded within ExpireAfter with equal cache-key attributes (CACHE_KEY_ATTRIBUTES, after evaluating expressions);
the hit reuses that run's step properties, so later steps read the earlier outputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_defs.expressions import (
    DefinitionError,
    ExpressionError,
    LocalRunError,
    collect,
    condition_holds,
    evaluate,
    follow,
    resolve_parameters,
    text,
)
from pipeline_defs.graph import CACHE_KEY_ATTRIBUTES, reference_errors
from pipeline_defs.local_registry import LOCAL_ACCOUNT, LocalModelRegistry

PROCESSING_ROOT = "/opt/ml/processing"
RUNNABLE_TYPES = ("Processing", "Training", "Condition", "Fail", "RegisterModel")
STATE_MARKER = ".mlops-local-state"
_DURATION = re.compile(
    r"P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE
)
_CONTAINER_PATH = re.compile(rf"(^|=){re.escape(PROCESSING_ROOT)}(?=/|$)")


class StepFailed(LocalRunError):
    """A job failed at run time (its script exited non-zero, an input was empty, ...)."""


def local_values(region: str) -> dict[str, str]:
    """Local stand-ins for the Fn::Sub variables of deployed definitions (pipeline_defs.definitions.PLACEHOLDERS)."""
    return {
        "PipelineRoleArn": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local-pipeline-execution-role",
        "DataKeyArn": f"arn:aws:kms:{region}:{LOCAL_ACCOUNT}:key/local-data-key",
        "ArtifactsBucket": "local-artifacts",
        "LandingBucket": "local-landing",
    }


# The synthesized cloud assembly ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assembly:
    directory: Path
    definitions: dict[str, dict]  # {pipeline name: definition with local values}
    assets: dict[str, Path]  # {s3://bucket/key it is published to: the staged file}


def load_assembly(directory: Path, region: str) -> Assembly:
    """Every pipeline definition and file asset of a `cdk synth` output directory."""
    # Imported here: tools/ reads templates for the review too; the runner itself only needs definitions.
    from tools.pipeline_diff import pipeline_definitions
    from tools.review import stack_templates

    directory = Path(directory)
    if not (directory / "manifest.json").is_file():
        raise LocalRunError(f"{directory} is not a cloud assembly (no manifest.json): run `cdk synth` first")
    definitions: dict[str, dict] = {}
    for template in stack_templates(directory).values():
        try:
            definitions |= pipeline_definitions(json.loads(template.read_text()), local_values(region))
        except ValueError as error:
            raise LocalRunError(f"{template.name}: {error}") from error
    assets: dict[str, Path] = {}
    for manifest in sorted(directory.rglob("*.assets.json")):
        for asset in json.loads(manifest.read_text()).get("files", {}).values():
            source = (manifest.parent / asset["source"].get("path", "")).resolve()
            if asset["source"].get("packaging", "file") != "file" or not source.is_file():
                continue  # directories are zipped on upload (Lambda code): no pipeline reads them
            for destination in asset.get("destinations", {}).values():
                assets[f"s3://{destination['bucketName']}/{destination['objectKey']}"] = source
    return Assembly(directory, definitions, assets)


# Local buckets ---------------------------------------------------------------------------------------------------
def split_uri(uri: Any) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise StepFailed(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class LocalS3:
    """s3://<bucket>/<key> is <root>/<bucket>/<key>; asset objects are the assembly's staged files (read-only)."""

    def __init__(self, root: Path, assets: Mapping[str, Path] | None = None) -> None:
        self.root = Path(root)
        self.assets = dict(assets or {})
        self.asset_buckets = {split_uri(uri)[0] for uri in self.assets}

    def path(self, uri: str) -> Path:
        """Where an object of a local bucket lives (assets are not here: they are read through `objects`)."""
        bucket, key = split_uri(uri)
        if bucket in self.asset_buckets:
            raise StepFailed(f"{uri}: the CDK asset bucket is read-only")
        return self.root / bucket / key

    def objects(self, uri: str) -> list[tuple[str, Path]]:
        """(key, file) of every object whose key starts with the URI's key, as S3 lists them, sorted by key."""
        bucket, prefix = split_uri(uri)
        if bucket in self.asset_buckets:
            return sorted((split_uri(u)[1], path) for u, path in self.assets.items() if u.startswith(uri))
        bucket_root = self.root / bucket
        folder = bucket_root / prefix.rpartition("/")[0]
        if not folder.is_dir():
            return []
        found = ((path.relative_to(bucket_root).as_posix(), path) for path in folder.rglob("*") if path.is_file())
        return sorted((key, path) for key, path in found if key.startswith(prefix))

    def download(self, uri: str, destination: Path) -> int:
        """Copy every object under the prefix `uri` into `destination` (S3Prefix semantics); returns the count."""
        _, prefix = split_uri(uri)
        objects = self.objects(uri)
        for key, source in objects:
            if key == prefix:  # the URI names one object: it lands under its own name
                relative = key.rpartition("/")[2]
            elif key[len(prefix) :].startswith("/") or prefix.endswith("/") or not prefix:
                relative = key[len(prefix) :].lstrip("/")
            else:  # a longer name in the same folder (prefix `a/b` matched `a/bc/d`): keep it relative to `a/`
                relative = key[len(prefix.rpartition("/")[0]) :].lstrip("/")
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return len(objects)

    def upload(self, source: Path, uri: str) -> None:
        """A file to the object `uri`, or every file of a directory below the prefix `uri`."""
        if source.is_file():
            target = self.path(uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            return
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            self.upload(path, f"{uri.rstrip('/')}/{path.relative_to(source).as_posix()}")

    def read_bytes(self, uri: str) -> bytes:
        _, key = split_uri(uri)
        exact = [path for object_key, path in self.objects(uri) if object_key == key]
        if not exact:
            raise StepFailed(f"{uri} does not exist (locally: {self.describe(uri)})")
        return exact[0].read_bytes()

    def describe(self, uri: str) -> str:
        """Where `uri` is on this machine, for people."""
        bucket, _ = split_uri(uri)
        if bucket in self.asset_buckets:
            return str(self.assets.get(uri, f"an asset of the assembly ({uri})"))
        return str(self.path(uri))


# Caching ---------------------------------------------------------------------------------------------------------
def parse_duration(value: str) -> timedelta:
    """An ISO 8601 duration as SageMaker's ExpireAfter takes it (`P30D`, `PT1H`, `30d`, `T16m`; Y=365 D, M=30 D)."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise DefinitionError(f"ExpireAfter {value!r} is not an ISO 8601 duration such as P30D or PT12H")
    years, months, weeks, days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(days=365 * years + 30 * months + 7 * weeks + days, hours=hours, minutes=minutes, seconds=seconds)


def cache_key(step_type: str, arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the step type's cache-key attributes (evaluated arguments)."""
    attributes = {name: arguments.get(name) for name in CACHE_KEY_ATTRIBUTES[step_type]}
    return hashlib.sha256(json.dumps(attributes, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class CacheIndex:
    """Successful step runs of one pipeline: {step, key, execution_id, finished, properties}, in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lookup(self, step: str, key: str, not_before: datetime | None) -> dict | None:
        """The newest successful run of `step` with `key` that finished at or after `not_before`."""
        matching = [
            entry
            for entry in self._entries()
            if entry["step"] == step
            and entry["key"] == key
            and (not_before is None or datetime.fromisoformat(entry["finished"]) >= not_before)
        ]
        return max(matching, key=lambda entry: entry["finished"], default=None)

    def record(self, step: str, key: str, execution_id: str, finished: datetime, properties: dict) -> None:
        entry = {
            "step": step,
            "key": key,
            "execution_id": execution_id,
            "finished": finished.isoformat(),
            "properties": properties,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"entries": [*self._entries(), entry]}, indent=1, sort_keys=True))
        os.replace(temporary, self.path)

    def _entries(self) -> list[dict]:
        return json.loads(self.path.read_text())["entries"] if self.path.is_file() else []


# Results ---------------------------------------------------------------------------------------------------------
@dataclass
class StepResult:
    name: str
    type: str
    status: str = "Executing"  # Succeeded | Failed
    cacheable: bool = False  # CacheConfig.Enabled on a step type that caches
    cache_hit: bool = False
    cache_source: str | None = None  # the execution whose outputs a cache hit reused
    seconds: float = 0.0
    job_seconds: float = 0.0  # of `seconds`, how long the job's own process ran
    message: str = ""  # failure reason, condition outcome, fail message, registered version
    outputs: dict[str, str] = field(default_factory=dict)  # {output name: S3 URI or local file}
    work_dir: str | None = None


@dataclass
class RunResult:
    pipeline: str
    execution_id: str
    parameters: dict[str, Any]
    started: str
    execution_dir: str
    status: str = "Executing"  # Succeeded | Failed
    failure_reason: str | None = None
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def step(self, name: str) -> StepResult:
        for result in self.steps:
            if result.name == name:
                return result
        raise KeyError(f"step {name} did not run in {self.execution_id}; ran: {[s.name for s in self.steps]}")

    def to_dict(self) -> dict:
        return asdict(self)


# The runner ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _PlannedStep:
    definition: dict
    needs: tuple[str, ...]  # steps that must succeed first
    branch_of: tuple[str, bool] | None  # (condition step, outcome that runs this step)

    @property
    def type(self) -> str:
        return self.definition.get("Type", "")


class LocalRunner:
    """Executes one pipeline definition; `run` may be called again (later runs can hit the cache)."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        *,
        pipeline_name: str,
        state_dir: Path,
        region: str,
        assets: Mapping[str, Path] | None = None,
        progress: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        python: str = sys.executable,
    ) -> None:
        self.definition = definition
        self.pipeline_name = pipeline_name
        self.state_dir = Path(state_dir).resolve()
        self.region = region
        self.s3 = LocalS3(self.state_dir / "s3", assets)
        self.registry = LocalModelRegistry(self.state_dir / "registry", region)
        self.cache = CacheIndex(self.state_dir / "cache" / f"{pipeline_name}.json")
        self.progress = progress or (lambda line: None)
        self.clock = clock
        self.python = python
        self.plan = plan(definition)

    @property
    def pipeline_arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:pipeline/{self.pipeline_name}"

    def run(self, parameters: Mapping[str, Any] | None = None) -> RunResult:
        """One execution. Raises DefinitionError before any step runs when the definition or a parameter is bad."""
        values = resolve_parameters(self.definition.get("Parameters", []), parameters or {})
        execution = _Execution(self, values)
        return execution.run()


def plan(definition: Mapping[str, Any]) -> dict[str, _PlannedStep]:
    """{step name: planned step} in the order the steps run; every check that needs no run happens here."""
    found: dict[str, tuple[dict, tuple[str, bool] | None]] = {}

    def walk(steps: Any, branch_of: tuple[str, bool] | None) -> None:
        if not isinstance(steps, list):
            raise DefinitionError(f"steps must be a list, got {steps!r}")
        for step in steps:
            if not isinstance(step, dict):
                raise DefinitionError(f"a step must be an object, got {step!r}")
            name, kind = step.get("Name"), step.get("Type")
            if not isinstance(name, str) or not name:
                raise DefinitionError(f"a step has no Name: {json.dumps(step)[:120]}")
            if name in found:
                raise DefinitionError(f"step name '{name}' is used more than once")
            if kind not in RUNNABLE_TYPES:
                raise DefinitionError(
                    f"step '{name}' has type '{kind}', which the local runner cannot run "
                    f"(it runs {', '.join(RUNNABLE_TYPES)})"
                )
            found[name] = (step, branch_of)
            if kind == "Condition":
                walk(step.get("Arguments", {}).get("IfSteps", []), (name, True))
                walk(step.get("Arguments", {}).get("ElseSteps", []), (name, False))

    walk(definition.get("Steps", []), None)
    # References to steps, property files, outputs, parameters and execution variables: the one checker
    # the definition tests use too.
    errors = reference_errors(definition)
    if errors:
        raise DefinitionError(errors[0])
    planned: dict[str, _PlannedStep] = {}
    for name, (step, branch_of) in found.items():
        arguments = step.get("Arguments", {})
        if step["Type"] == "Condition":  # its own values: the conditions, not the steps of its branches
            references = collect(arguments.get("Conditions", []), conditions=True)
        else:
            references = collect(arguments)
        cache = step.get("CacheConfig") or {}
        if cache.get("Enabled") and cache.get("ExpireAfter") is not None:
            parse_duration(cache["ExpireAfter"])
        needs = [*references.steps(), *step.get("DependsOn", []), *([branch_of[0]] if branch_of else [])]
        planned[name] = _PlannedStep(step, tuple(dict.fromkeys(needs)), branch_of)
    return {name: planned[name] for name in _topological_order(planned)}


def _topological_order(planned: Mapping[str, _PlannedStep]) -> list[str]:
    """Definition order, except that a step comes after every step it needs."""
    order: list[str] = []
    remaining = list(planned)
    while remaining:
        ready = next((name for name in remaining if all(need in order for need in planned[name].needs)), None)
        if ready is None:
            raise DefinitionError(
                f"the steps {', '.join(remaining)} cannot run: their references and DependsOn form a cycle"
            )
        order.append(ready)
        remaining.remove(ready)
    return order


class _Execution:
    """The state of one run: parameters, step properties, and the steps' results."""

    def __init__(self, runner: LocalRunner, parameters: dict[str, Any]) -> None:
        self.runner = runner
        self.parameters = parameters
        self.id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
        self.started = runner.clock()
        self.dir = runner.state_dir / "executions" / runner.pipeline_name / self.id
        self.properties: dict[str, dict] = {}
        self.property_files: dict[tuple[str, str], Any] = {}
        self.result = RunResult(
            pipeline=runner.pipeline_name,
            execution_id=self.id,
            parameters=parameters,
            started=self.started.isoformat(),
            execution_dir=str(self.dir),
        )

    # Pipeline ----------------------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        begin = time.perf_counter()
        self.dir.mkdir(parents=True)
        (self.runner.state_dir / STATE_MARKER).touch()
        statuses: dict[str, str] = {}
        for name, step in self.runner.plan.items():
            runnable = all(statuses.get(need) == "Succeeded" for need in step.needs)
            if step.branch_of and self.properties.get(step.branch_of[0], {}).get("Outcome") != step.branch_of[1]:
                runnable = False
            if not runnable:
                continue  # as in SageMaker: the branch not taken, or after a failure, the step never starts
            result = self._run_step(name, step)
            statuses[name] = result.status
            self.result.steps.append(result)
            if result.status == "Failed":
                self.result.status, self.result.failure_reason = "Failed", f"step {name}: {result.message}"
                break
        else:
            self.result.status = "Succeeded"
        self.result.seconds = time.perf_counter() - begin
        (self.dir / "execution.json").write_text(json.dumps(self.result.to_dict(), indent=2) + "\n")
        return self.result

    def _run_step(self, name: str, step: _PlannedStep) -> StepResult:
        result = StepResult(name=name, type=step.type)
        begin = time.perf_counter()
        try:
            handler = getattr(self, f"_run_{step.type.lower()}")
            handler(name, step.definition, result)
            result.status = "Succeeded"
        except LocalRunError as error:
            result.status, result.message = "Failed", str(error)
        result.seconds = time.perf_counter() - begin
        state = "cache hit" if result.cache_hit else result.status.lower()
        timing = f" in {result.seconds:.1f}s" if result.work_dir else ""
        detail = f": {result.message}" if result.message else ""
        self.runner.progress(f"{name} ({step.type}) {state}{timing}{detail}")
        return result

    # Jobs ----------------------------------------------------------------------------------------------------------
    def _run_processing(self, name: str, step: dict, result: StepResult) -> None:
        self._run_job(name, step, result, self._processing_job)

    def _run_training(self, name: str, step: dict, result: StepResult) -> None:
        self._run_job(name, step, result, self._training_job)

    def _run_job(self, name: str, step: dict, result: StepResult, job: Callable[..., dict]) -> None:
        job_name = f"pipelines-{self.id}-{re.sub(r'[^A-Za-z0-9-]', '-', name)}"[:63].rstrip("-")
        arguments = evaluate(step.get("Arguments", {}), self._context(step["Type"], job_name))
        cache = step.get("CacheConfig") or {}
        key = cache_key(step["Type"], arguments) if cache.get("Enabled") else None
        result.cacheable = key is not None
        if key is not None:
            expire = cache.get("ExpireAfter")
            not_before = self.runner.clock() - parse_duration(expire) if expire is not None else None
            hit = self.runner.cache.lookup(name, key, not_before)
            if hit:
                self.properties[name] = hit["properties"]
                result.cache_hit, result.cache_source = True, hit["execution_id"]
                result.outputs = _outputs(step["Type"], hit["properties"])
                return
        self.runner.progress(f"{name} ({step['Type']}) running")
        work = self.dir / "steps" / name
        work.mkdir(parents=True)
        result.work_dir = str(work)
        properties = job(name, arguments, job_name, work, result)
        self.properties[name] = properties
        result.outputs = _outputs(step["Type"], properties)
        if key is not None:
            self.runner.cache.record(name, key, self.id, self.runner.clock(), properties)

    def _processing_job(self, name: str, arguments: dict, job_name: str, work: Path, result: StepResult) -> dict:
        for item in arguments.get("ProcessingInputs", []):
            source = item.get("S3Input")
            if source is None:
                raise StepFailed(f"input '{item.get('InputName')}': only S3Input inputs are supported locally")
            if source.get("S3DataType", "S3Prefix") != "S3Prefix" or source.get("S3CompressionType", "None") != "None":
                raise StepFailed(f"input '{item.get('InputName')}': only uncompressed S3Prefix inputs run locally")
            self._download(item.get("InputName"), source.get("S3Uri"), _local(source.get("LocalPath"), work))
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            _local(item.get("S3Output", {}).get("LocalPath"), work).mkdir(parents=True, exist_ok=True)
        application = arguments.get("AppSpecification", {})
        entrypoint = application.get("ContainerEntrypoint") or []
        if not entrypoint or Path(entrypoint[0]).name not in ("python", "python3"):
            raise StepFailed(f"ContainerEntrypoint {entrypoint} is not a python script; only those run locally")
        command = [self.runner.python, *(_CONTAINER_PATH.sub(rf"\g<1>{work}", str(a)) for a in entrypoint[1:])]
        command += [_CONTAINER_PATH.sub(rf"\g<1>{work}", str(a)) for a in application.get("ContainerArguments", [])]
        self._execute(command, work, arguments, {}, work, result)
        for item in outputs:
            output = item.get("S3Output", {})
            self.runner.s3.upload(_local(output.get("LocalPath"), work), output.get("S3Uri"))
        return {
            **arguments,
            "ProcessingJobName": job_name,
            "ProcessingJobArn": self._arn("processing-job", job_name),
            "ProcessingJobStatus": "Completed",
        }

    def _training_job(self, name: str, arguments: dict, job_name: str, work: Path, result: StepResult) -> dict:
        hyperparameters = arguments.get("HyperParameters", {})
        program, submit = hyperparameters.get("sagemaker_program"), hyperparameters.get("sagemaker_submit_directory")
        if not program or not submit:
            raise StepFailed("only script mode runs locally: HyperParameters need sagemaker_program and ..._directory")
        code = work / "code"
        with tarfile.open(fileobj=io.BytesIO(self.runner.s3.read_bytes(submit)), mode="r:*") as tar:
            tar.extractall(code, filter="data")
        if not (code / program).is_file():
            raise StepFailed(f"sagemaker_program {program} is not in {submit}")
        channels = {}
        for channel in arguments.get("InputDataConfig", []):
            channel_name = channel.get("ChannelName")
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise StepFailed(f"channel '{channel_name}': only S3Prefix S3DataSource channels run locally")
            channels[channel_name] = work / "input" / "data" / channel_name
            self._download(f"channel {channel_name}", source.get("S3Uri"), channels[channel_name])
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
        command = [self.runner.python, str(code / program)]
        for key, value in user_hyperparameters.items():
            command += [f"--{key}", str(value)]
        log = self._execute(command, work, arguments, environment, code, result)

        output_path = arguments.get("OutputDataConfig", {}).get("S3OutputPath")
        if not isinstance(output_path, str) or not output_path.startswith("s3://"):
            raise StepFailed(f"OutputDataConfig.S3OutputPath must be an S3 URI, got {output_path!r}")
        prefix = f"{output_path.rstrip('/')}/{job_name}/output"
        if arguments.get("OutputDataConfig", {}).get("CompressionType", "GZIP") == "NONE":
            model_uri = f"{prefix}/model/"
            self.runner.s3.upload(model_dir, model_uri)
        else:
            model_uri = f"{prefix}/model.tar.gz"
            _write_tarball(model_dir, self.runner.s3, model_uri)
        if any((output_dir / "data").iterdir()):
            _write_tarball(output_dir / "data", self.runner.s3, f"{prefix}/output.tar.gz")
        finished = self.runner.clock().isoformat()
        metrics = []
        for definition in arguments.get("AlgorithmSpecification", {}).get("MetricDefinitions", []):
            values = re.findall(definition["Regex"], log)
            if values:
                value = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
                metrics.append({"MetricName": definition["Name"], "Value": float(value), "Timestamp": finished})
        return {
            **arguments,
            "TrainingJobName": job_name,
            "TrainingJobArn": self._arn("training-job", job_name),
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "FinalMetricDataList": metrics,
        }

    def _download(self, what: str, uri: Any, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        if self.runner.s3.download(uri, destination) == 0:
            raise StepFailed(f"input {what}: no objects under {uri} (locally: {self.runner.s3.describe(uri)})")

    def _execute(
        self, command: list[str], work: Path, arguments: dict, extra: dict, cwd: Path, result: StepResult
    ) -> str:
        """Run the job's process with its environment; returns its log. A non-zero exit fails the step."""
        environment = {
            **os.environ,
            **{key: str(value) for key, value in arguments.get("Environment", {}).items()},
            **extra,
            "AWS_REGION": self.runner.region,
            "AWS_DEFAULT_REGION": self.runner.region,
            "REGISTRY_BACKEND": "local",
            "LOCAL_REGISTRY_DIR": str(self.runner.registry.root),
        }
        timeout = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        log_path = work / "log.txt"
        begin = time.perf_counter()
        with log_path.open("w") as log:
            process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.PIPE, text=True)
            try:
                _, errors = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                _, errors = process.communicate()
                raise StepFailed(f"stopped after MaxRuntimeInSeconds={timeout} (log: {log_path})") from None
            finally:
                result.job_seconds = time.perf_counter() - begin
            log.write(errors)
        if process.returncode != 0:
            last = next((line for line in reversed(errors.splitlines()) if line.strip()), "no error output")
            raise StepFailed(f"exited with code {process.returncode}: {last.strip()} (log: {log_path})")
        return log_path.read_text()

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.runner.region}:{LOCAL_ACCOUNT}:{kind}/{name.lower()}"

    # Steps evaluated here ------------------------------------------------------------------------------------------
    def _run_condition(self, name: str, step: dict, result: StepResult) -> None:
        context = self._context("Condition")
        outcomes = [condition_holds(condition, context) for condition in step["Arguments"].get("Conditions", [])]
        outcome = all(outcomes)
        self.properties[name] = {"Outcome": outcome}
        branch = "IfSteps" if outcome else "ElseSteps"
        names = [branch_step.get("Name") for branch_step in step["Arguments"].get(branch, [])]
        result.message = f"{str(outcome).lower()}: runs {branch} ({', '.join(names) or 'none'})"

    def _run_fail(self, name: str, step: dict, result: StepResult) -> None:
        message = text(evaluate(step.get("Arguments", {}).get("ErrorMessage", ""), self._context("Fail")))
        self.properties[name] = {"ErrorMessage": message}
        raise StepFailed(message)

    def _run_registermodel(self, name: str, step: dict, result: StepResult) -> None:
        request = evaluate(step.get("Arguments", {}), self._context("RegisterModel"))
        package = self.runner.registry.register(request, self.runner.clock())
        self.properties[name] = package
        group, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
        result.message = f"{group} version {version} ({package['ModelApprovalStatus']})"
        result.outputs = {"model package": str(self.runner.registry.path(group, version))}

    # Expressions ---------------------------------------------------------------------------------------------------
    def _context(self, step_type: str, job_name: str | None = None) -> _Context:
        return _Context(self, step_type, job_name)

    def property_file(self, step: str, name: str) -> tuple[Any, str]:
        """The parsed JSON of a step's property file, and its URI."""
        definition = self.runner.plan[step].definition
        declared = next(item for item in definition.get("PropertyFiles", []) if item.get("PropertyFileName") == name)
        outputs = self.properties[step].get("ProcessingOutputConfig", {}).get("Outputs", [])
        output = next((o for o in outputs if o.get("OutputName") == declared.get("OutputName")), None)
        if output is None:
            raise ExpressionError(f"property file {name} of step {step} names output {declared.get('OutputName')!r}")
        uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/{declared.get('FilePath')}"
        if (step, name) not in self.property_files:
            try:
                document = json.loads(self.runner.s3.read_bytes(uri))
            except StepFailed:
                raise ExpressionError(
                    f"property file {name} of step {step} was not written: {uri} does not exist "
                    f"(locally: {self.runner.s3.describe(uri)})"
                ) from None
            except json.JSONDecodeError as error:
                raise ExpressionError(f"property file {name} of step {step} ({uri}) is not JSON: {error}") from None
            self.property_files[(step, name)] = document
        return self.property_files[(step, name)], uri


class _Context:
    """Answers a step's `Get` and `Std:JsonGet` during one execution."""

    def __init__(self, execution: _Execution, step_type: str, job_name: str | None) -> None:
        self.execution = execution
        self.step_type = step_type
        self.job_name = job_name

    def get(self, reference: str) -> Any:
        execution = self.execution
        root, _, rest = reference.partition(".")
        if root == "Parameters":
            return execution.parameters[rest]
        if root == "Execution":
            return self._execution_variable(rest)
        step, _, path = rest.partition(".")
        if step not in execution.properties:
            raise ExpressionError(f"{reference}: step {step} has not run in this execution")
        return follow(execution.properties[step], path, f"Steps.{step}")

    def json_get(self, step: str, property_file: str, path: str) -> Any:
        if step not in self.execution.properties:
            raise ExpressionError(f"Std:JsonGet on step {step}, which has not run in this execution")
        document, uri = self.execution.property_file(step, property_file)
        return follow(document, path, f"Std:JsonGet on property file {property_file} of step {step} ({uri})")

    def _execution_variable(self, name: str) -> Any:
        execution, runner = self.execution, self.execution.runner
        job_variable = {"ProcessingJobName": "Processing", "TrainingJobName": "Training"}.get(name)
        if job_variable:
            if self.step_type != job_variable:
                raise ExpressionError(f"Execution.{name} is defined in {job_variable.lower()} steps only")
            return self.job_name
        return {
            "PipelineName": runner.pipeline_name,
            "PipelineArn": runner.pipeline_arn,
            "PipelineExecutionId": execution.id,
            "PipelineExecutionArn": f"{runner.pipeline_arn}/execution/{execution.id}",
            "StartDateTime": execution.started.isoformat(),
            "CurrentDateTime": runner.clock().isoformat(),
        }[name]


# Helpers ---------------------------------------------------------------------------------------------------------
def _local(container_path: Any, work: Path) -> Path:
    """A /opt/ml/processing/... path of the container, in the step's work dir."""
    if not isinstance(container_path, str) or not _CONTAINER_PATH.match(container_path):
        raise StepFailed(f"LocalPath {container_path!r} is not under {PROCESSING_ROOT}/")
    return work / container_path[len(PROCESSING_ROOT) :].lstrip("/")


def _outputs(step_type: str, properties: Mapping[str, Any]) -> dict[str, str]:
    """{name: S3 URI} of what a job produced, for the run summary."""
    if step_type == "Training":
        return {"model": properties.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")}
    outputs = properties.get("ProcessingOutputConfig", {}).get("Outputs", [])
    return {item.get("OutputName"): item.get("S3Output", {}).get("S3Uri", "") for item in outputs}


def _write_tarball(directory: Path, s3: LocalS3, uri: str) -> None:
    target = s3.path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
