"""`mlops dataset put DIR --id ID (--env E | --local)`: the producer contract of the landing bucket as a command.

The id is checked with the rule the trigger function applies (`lambda/start_pipeline/event_pattern.py`, loaded from
its file: the one implementation). A dataset is immutable - changed files under an old id would be false cache hits -
so an id whose marker exists is refused. Every file of DIR goes to `<dataset_prefix><id>/<path in DIR>`, then the
marker is written last: its `Object Created` event is what starts training, so a dataset is never half-visible.

- `--env E`: the landing bucket and the data key come from the deployed `<prefix>-Storage` outputs
  (`TrainingDataBucketName`, `DataKeyArn`). Each file is uploaded with SSE-KMS under that key through boto3's managed
  transfer (multipart above `MULTIPART_THRESHOLD`) and carries its SHA-256 as metadata; the marker is written with
  `If-None-Match: *`, so two producers racing for one id cannot both complete it. Progress goes to stderr.
- `--local`: the same into the local landing bucket (`<state dir>/s3/local-landing/`), then what the trigger does:
  the local training run with `InputDataUri=s3://local-landing/<prefix><id>/` and `ExperimentId=dataset-<id>`
  (`--no-run`: only the upload).

Interrupted or failed uploads leave no marker, so nothing starts. Re-running the same command resumes: files already
there with the same SHA-256 are skipped. Objects under the id that are not in DIR are refused (they belong to another
upload); delete them or pick a new id.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client, stack_outputs
from mlops.common import UsageError, shown
from mlops.local import result_json, run_summary, runner_for
from pipeline_defs.contract import DeployTimeValue, Parameter
from pipeline_defs.local import LocalRunner, LocalS3, local_values
from pipeline_defs.local.expressions import resolve_parameters

# The trigger function's own module: `lambda` is a Python keyword, so it is loaded from its file, as the construct
# that builds the EventBridge rule loads it.
TRIGGER_RULES = Path(__file__).resolve().parents[1] / "lambda" / "start_pipeline" / "event_pattern.py"
STORAGE_STACK = "Storage"
BUCKET_OUTPUT = "TrainingDataBucketName"
KEY_OUTPUT = "DataKeyArn"
# boto3's managed transfer: files above the threshold go up in parts of this size, several at a time. 64 MiB keeps
# small datasets at one PutObject each, and a 5 TB object under S3's 10,000-part limit needs 525 MiB parts: boto3
# raises the part size itself when a file needs it.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK_SIZE = 64 * 1024 * 1024
CHECKSUM_METADATA = "sha256"  # x-amz-meta-sha256: how a resumed upload recognises a file that is already there
_READ_CHUNK = 1024 * 1024


@functools.cache
def trigger_rules() -> ModuleType:
    spec = importlib.util.spec_from_file_location("start_pipeline_event_pattern", TRIGGER_RULES)
    assert spec is not None and spec.loader is not None, f"cannot load {TRIGGER_RULES}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_dataset_id(dataset_id: str) -> None:
    problem: tuple[str, str] | None = trigger_rules().dataset_id_problem(dataset_id)
    if problem is not None:
        raise UsageError(f"--id {dataset_id!r}: {problem[1]}; e.g. --id 2025-06-02 or --id orders-v42")


@dataclass(frozen=True)
class LocalFile:
    key: str  # below the dataset's prefix, with '/'
    path: Path
    size: int

    @functools.cached_property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()


def dataset_files(directory: Path, marker: str) -> list[LocalFile]:
    """Every file below `directory`, sorted by key; bad input (no folder, no files, a marker of its own) refused."""
    if not directory.is_dir():
        raise UsageError(f"{shown(directory)} is not a folder: pass the folder that holds the dataset's files")
    files = sorted(
        (
            LocalFile(path.relative_to(directory).as_posix(), path, path.stat().st_size)
            for path in directory.rglob("*")
            if path.is_file()
        ),
        key=lambda item: item.key,
    )
    if not files:
        raise UsageError(f"{shown(directory)} holds no files: nothing to put")
    if any(item.key == marker for item in files):
        raise UsageError(
            f"{shown(directory / marker)}: the marker is written by this command, after every file; remove it from "
            "the folder"
        )
    return files


# {key below the dataset prefix: () -> (size, SHA-256 or None)} of what is already there (asked only when needed)
Present = dict[str, Callable[[], tuple[int, str | None]]]


def files_to_upload(files: list[LocalFile], present: Present) -> list[LocalFile]:
    """The files a (resumed) upload still has to send: those not in `present` with the same size and SHA-256.

    An object under the id that is not one of `files` belongs to another upload: refused rather than mixed in.
    """
    strangers = sorted(set(present) - {item.key for item in files})
    if strangers:
        raise UsageError(
            f"the dataset id already holds {len(strangers)} object(s) that are not in the folder (e.g. {strangers[0]}):"
            " an unfinished upload of other files. Pick a new --id, or delete those objects first"
        )
    missing = []
    for item in files:
        if item.key in present:
            size, sha256 = present[item.key]()
            if size == item.size and sha256 == item.sha256:
                continue
        missing.append(item)
    return missing


class UploadInterrupted(Exception):
    """Ctrl-C while files were being sent: the marker was not written."""


class Progress(Protocol):
    def __call__(self, sent: int) -> None: ...


class ProgressBar:
    """Bytes sent of the total, as one redrawn line on stderr; silent when stderr is not a terminal.

    boto3 calls it from its transfer threads (the parts of a multipart upload go up at once): one update at a time.
    """

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.sent, self.enabled = max(total, 1), 0, enabled
        self._lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self._lock:
            self._advance(sent)

    def _advance(self, sent: int) -> None:
        self.sent += sent
        if self.enabled:
            done = min(self.sent / self.total, 1.0)
            bar = "#" * int(done * 30)
            mib = 1024 * 1024
            sys.stderr.write(f"\r[{bar:<30}] {done:4.0%} {self.sent / mib:.1f}/{self.total / mib:.1f} MiB")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


# AWS ---------------------------------------------------------------------------------------------------------------
class S3Landing:
    """The deployed landing bucket of a unit."""

    def __init__(self, s3: Any, bucket: str, key_arn: str) -> None:
        self.s3, self.bucket, self.key_arn = s3, bucket, key_arn

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def present(self, prefix: str) -> Present:
        """{key below prefix: () -> (size, sha256 metadata)} of the objects already there (HEAD only when asked)."""
        found: Present = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                found[key[len(prefix) :]] = functools.partial(self._described, key, int(item["Size"]))
        return found

    def _described(self, key: str, size: int) -> tuple[int, str | None]:
        metadata = self.s3.head_object(Bucket=self.bucket, Key=key).get("Metadata", {})
        return size, metadata.get(CHECKSUM_METADATA)

    def upload(self, item: LocalFile, key: str, progress: Progress) -> None:
        from boto3.s3.transfer import TransferConfig

        self.s3.upload_file(
            str(item.path),
            self.bucket,
            key,
            ExtraArgs={**self._encryption(), "Metadata": {CHECKSUM_METADATA: item.sha256}},
            Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK_SIZE),
            Callback=progress,
        )

    def write_marker(self, key: str) -> bool:
        """The empty marker object, only if none exists (If-None-Match); False when one does."""
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"", IfNoneMatch="*", **self._encryption())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise
        return True

    def _encryption(self) -> dict[str, str]:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.key_arn}


def put_to_aws(args: argparse.Namespace, config: EnvironmentConfig, files: list[LocalFile]) -> int:
    from boto3.exceptions import S3UploadFailedError  # boto3 loads only when a command calls AWS

    outputs = stack_outputs(client("cloudformation", config), config, STORAGE_STACK)
    landing = S3Landing(client("s3", config), outputs[BUCKET_OUTPUT], outputs[KEY_OUTPUT])
    prefix = f"{config.dataset_prefix}{args.id}/"
    marker = prefix + config.marker_name
    step = "listing"
    try:
        present = landing.present(prefix)
        if config.marker_name in present:
            raise _exists(landing.uri(marker))
        step = "uploading"
        upload = files_to_upload(files, present)
        _send(upload, len(files), lambda item, progress: landing.upload(item, prefix + item.key, progress))
        step = "writing the marker"
        if not landing.write_marker(marker):
            raise _exists(landing.uri(marker))
    except (BotoCoreError, ClientError, S3UploadFailedError, OSError) as error:
        raise AwsCallFailed(
            f"{step} {landing.uri(prefix)} failed: {error}. No marker was written, so no training started; "
            "re-run the same command to resume (files already uploaded are skipped)"
        ) from None
    print(
        json.dumps({"dataset_uri": landing.uri(prefix), "marker": landing.uri(marker), "files": len(files)})
        if args.json
        else f"put {len(files)} file(s) into {landing.uri(prefix)}, marker last: the trigger starts "
        f"{config.training_pipeline_name} with ExperimentId={trigger_rules().dataset_experiment_id(args.id)}"
    )
    return 0


def _exists(marker_uri: str) -> UsageError:
    return UsageError(
        f"the dataset already exists ({marker_uri}): datasets are immutable, because changed files under an old id "
        "would be false cache hits. Put the new data under a new --id"
    )


def _send(upload: list[LocalFile], total_files: int, send: Callable[[LocalFile, Progress], None]) -> None:
    """Each file through `send`, with the progress bar (stderr, when it is a terminal) and a line per file."""
    if len(upload) < total_files:
        print(f"resuming: {total_files - len(upload)} of {total_files} file(s) are already there", file=sys.stderr)
    bar = ProgressBar(sum(item.size for item in upload), enabled=sys.stderr.isatty())
    try:
        for item in upload:
            send(item, bar)
    except KeyboardInterrupt:
        raise UploadInterrupted from None
    finally:
        bar.finish()


# Local -------------------------------------------------------------------------------------------------------------
def _local_present(folder: Path) -> Present:
    if not folder.is_dir():
        return {}
    files = (LocalFile(p.relative_to(folder).as_posix(), p, p.stat().st_size) for p in folder.rglob("*") if p.is_file())
    return {item.key: functools.partial(lambda f: (f.size, f.sha256), item) for item in files}


def _copy(item: LocalFile, target: Path, scratch: Path, progress: Progress) -> None:
    """A complete copy or none: written into `scratch` (outside the dataset, same file system), then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=scratch, suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out, item.path.open("rb") as source:
            for chunk in iter(functools.partial(source.read, _READ_CHUNK), b""):
                out.write(chunk)
                progress(len(chunk))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def put_locally(args: argparse.Namespace, config: EnvironmentConfig, files: list[LocalFile]) -> int:
    landing_bucket = local_values(config.region)[DeployTimeValue.LANDING_BUCKET]
    dataset_uri = f"s3://{landing_bucket}/{config.dataset_prefix}{args.id}/"
    experiment = trigger_rules().dataset_experiment_id(args.id)
    # The run's definition is read before any file moves: a missing cdk.out is reported with nothing written.
    runner = None if args.no_run else runner_for(args.assembly, config, "training", args.state_dir, jobs=args.jobs)
    folder = LocalS3(args.state_dir / "s3").path(dataset_uri)
    marker = folder / config.marker_name
    present = _local_present(folder)
    if config.marker_name in present:
        raise _exists(f"{dataset_uri}{config.marker_name}")
    upload = files_to_upload(files, present)
    scratch = args.state_dir / "tmp"
    _send(upload, len(files), lambda item, progress: _copy(item, folder / item.key, scratch, progress))
    marker.touch()
    print(f"put {len(files)} file(s) into {dataset_uri} ({shown(folder)}), marker last", file=sys.stderr)
    if runner is None:
        return 0
    parameters = {Parameter.INPUT_DATA_URI.value: dataset_uri, Parameter.EXPERIMENT_ID.value: experiment}
    print(f"starting {runner.pipeline_name} as the trigger would, with ExperimentId={experiment}", file=sys.stderr)
    result = runner.run(parameters)
    print(json.dumps(result_json(result, runner.s3), indent=2) if args.json else run_summary(result, runner.s3))
    return 0 if result.succeeded else 1


def require_input_data(runner: LocalRunner, parameters: Mapping[str, str], state_dir: Path) -> None:
    """A local run's InputDataUri must hold objects: else one line saying how to put a dataset there, before any step.

    (Otherwise the run would start and fail in its first step that reads the data.)
    """
    # Bad parameters are reported first, as the run would report them (DefinitionError: one line, exit 2).
    values = resolve_parameters(runner.definition.get("Parameters", []), parameters)
    uri = values.get(Parameter.INPUT_DATA_URI.value)
    if not isinstance(uri, str) or not uri.startswith("s3://") or runner.s3.objects(uri):
        return
    _, _, key = uri[len("s3://") :].partition("/")
    dataset_id = key.rstrip("/").rpartition("/")[2] or "<id>"
    raise UsageError(
        f"no dataset at {uri} in the state dir {shown(state_dir)} (looked in {shown(runner.s3.describe(uri))}): put "
        f"one there with `mlops dataset put <folder> --id {dataset_id} --local --state-dir {shown(state_dir)} "
        "--no-run`, or pass the --state-dir that holds it (`mlops demo` keeps its sample in .local/demo)"
    )


def command_dataset(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local and args.env is None:
        raise UsageError("say where the dataset goes: --local (the local landing bucket) or --env <env> (AWS)")
    if args.no_run and not args.local:
        raise UsageError("--no-run is for --local: in AWS the marker's event starts the run (the trigger)")
    check_dataset_id(args.id)
    files = dataset_files(Path(args.dir), config.marker_name)
    try:
        return put_locally(args, config, files) if args.local else put_to_aws(args, config, files)
    except UploadInterrupted:
        print(
            "error: interrupted before the marker was written, so nothing started; re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
