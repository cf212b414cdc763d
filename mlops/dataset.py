"""`mlops dataset put DIR --id ID (--env E | --local)`: the producer contract of the landing bucket as a command.

The id is checked with the rule the trigger function applies (`lambda/start_pipeline/event_pattern.py`, through
pipeline_defs.trigger_rules: the one implementation). A dataset is immutable - changed files under an old id would be
false cache hits - so an id whose marker exists is refused. Every file of DIR goes to `<dataset_prefix><id>/<path in
DIR>`, then the marker is written last: its `Object Created` event is what starts training, so a dataset is never
half-visible. What is sent and resumed is mlops/dataset_upload.py's, for both destinations:

- `--env E`: the deployed unit's landing bucket, SSE-KMS under its data key (mlops/dataset_s3.py).
- `--local`: the same into the local landing bucket (`<state dir>/s3/local-landing/`), then what the trigger does:
  the local training run with `InputDataUri=s3://local-landing/<prefix><id>/` and `ExperimentId=dataset-<id>`
  (`--no-run`: only the upload). DIR may not be the state dir, nor hold it or lie inside it: the put would copy the
  state into itself.

Interrupted or failed uploads leave no marker, so nothing starts. Re-running the same command resumes: files already
there with the same SHA-256 are skipped. Objects under the id that are not in DIR are refused (they belong to another
upload); delete them or pick a new id.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from config import EnvironmentConfig
from mlops.common import UsageError, command_line, shown, unit_options
from mlops.dataset_s3 import put_to_aws
from mlops.dataset_upload import (
    READ_CHUNK,
    LocalFile,
    Present,
    Progress,
    UploadInterrupted,
    already_put,
    dataset_exists,
    dataset_files,
    files_to_upload,
    same_dataset,
    send_files,
)
from mlops.local import result_json, run_summary, runner_for
from pipeline_defs.contract import DeployTimeValue, Parameter
from pipeline_defs.local import LocalRunner, LocalS3, local_values
from pipeline_defs.local.expressions import resolve_parameters
from pipeline_defs.trigger_rules import trigger_rules


def check_dataset_id(dataset_id: str) -> None:
    problem: tuple[str, str] | None = trigger_rules().dataset_id_problem(dataset_id)
    if problem is not None:
        raise UsageError(f"--id {dataset_id!r}: {problem[1]}; e.g. --id 2025-06-02 or --id orders-v42")


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
            for chunk in iter(functools.partial(source.read, READ_CHUNK), b""):
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
    if already_put(files, present, config.marker_name):
        print(same_dataset(dataset_uri), file=sys.stderr)
        return 0
    if config.marker_name in present:
        raise dataset_exists(f"{dataset_uri}{config.marker_name}")
    upload = files_to_upload(files, present)
    scratch = args.state_dir / "tmp"
    send_files(upload, len(files), lambda item, progress: _copy(item, folder / item.key, scratch, progress))
    marker.touch()
    print(f"put {len(files)} file(s) into {dataset_uri} ({shown(folder)}), marker last", file=sys.stderr)
    if runner is None:
        return 0
    parameters = {Parameter.INPUT_DATA_URI.value: dataset_uri, Parameter.EXPERIMENT_ID.value: experiment}
    print(f"starting {runner.pipeline_name} as the trigger would, with ExperimentId={experiment}", file=sys.stderr)
    result = runner.run(parameters)
    print(json.dumps(result_json(result, runner.s3), indent=2) if args.json else run_summary(result, runner.s3))
    return 0 if result.succeeded else 1


def refuse_state_dir_as_source(source: Path, state_dir: Path) -> None:
    """UsageError when the folder to put is the state dir, lies inside it or holds it: the put would copy the state
    (its own landing bucket included) into itself."""
    source, state = source.resolve(), state_dir.resolve()
    if source == state or state in source.parents:
        raise UsageError(
            f"{shown(source)} is the state dir {shown(state)} or a folder inside it: a dataset put from there would "
            "copy the state into itself; pass the folder that holds the dataset's files"
        )
    if source in state.parents:
        raise UsageError(
            f"{shown(source)} holds the state dir {shown(state)}: a dataset put from it would copy the state into "
            "itself; pass the folder that holds only the dataset's files"
        )


def require_input_data(
    runner: LocalRunner, parameters: Mapping[str, str], state_dir: Path, config: EnvironmentConfig
) -> None:
    """A local run's InputDataUri must hold objects: else one line saying how to put data there, before any step.

    (Otherwise the run would start and fail in its first step that reads the data.) A dataset URI
    (`s3://<landing>/<dataset_prefix><id>/`) is filled by `mlops dataset put` with that id; any other prefix - the
    eval-only pipeline's default `evaluation/latest/` - by copying files into its folder, or by putting a dataset and
    passing its URI instead (`dataset put` writes only under the dataset prefix).
    """
    # Bad parameters are reported first, as the run would report them (DefinitionError: one line, exit 2).
    values = resolve_parameters(runner.definition.get("Parameters", []), parameters)
    uri = values.get(Parameter.INPUT_DATA_URI.value)
    if not isinstance(uri, str) or not uri.startswith("s3://") or runner.s3.objects(uri):
        return
    folder = shown(runner.s3.describe(uri))
    landing = local_values(config.region)[DeployTimeValue.LANDING_BUCKET]
    datasets = f"s3://{landing}/{config.dataset_prefix}"
    dataset_id = uri.removeprefix(datasets).rstrip("/")
    is_dataset = (
        uri.startswith(datasets) and "/" not in dataset_id and not trigger_rules().dataset_id_problem(dataset_id)
    )
    put = command_line(
        "dataset", "put", "<folder>", "--id", dataset_id if is_dataset else "<id>", "--local",
        "--state-dir", shown(state_dir), "--no-run", *unit_options(config),
    )  # fmt: skip
    where = f"at {uri} in the state dir {shown(state_dir)} (looked in {folder})"
    elsewhere = "or pass the --state-dir that holds it (the demo's is .local/demo)"
    if is_dataset:
        raise UsageError(f"no dataset {where}: put one there with `{put}`, {elsewhere}")
    raise UsageError(
        f"no data {where}: copy the files into that folder, or put them as a dataset with `{put}` and run again with "
        f"`--param {Parameter.INPUT_DATA_URI.value}={datasets}<id>/`, {elsewhere}"
    )


def command_dataset(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local and args.env is None:
        raise UsageError("say where the dataset goes: --local (the local landing bucket) or --env <env> (AWS)")
    if args.no_run and not args.local:
        raise UsageError("--no-run is for --local: in AWS the marker's event starts the run (the trigger)")
    check_dataset_id(args.id)
    if args.local:
        refuse_state_dir_as_source(Path(args.dir), args.state_dir)
    files = dataset_files(Path(args.dir), config.marker_name)
    try:
        return put_locally(args, config, files) if args.local else put_to_aws(args, config, files)
    except UploadInterrupted:
        print(
            "error: interrupted before the marker was written, so nothing started; re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
