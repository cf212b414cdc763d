"""`mlops dataset put`: the exact S3 requests (botocore Stubber), marker last, refusals, resume; and locally end to end.

The id rule is the trigger function's own (lambda/start_pipeline/event_pattern.py):
tests/handlers/test_dataset_id_rule.py checks that both sides answer alike.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from botocore.stub import ANY, Stubber

from mlops import dataset as dataset_command
from mlops import dataset_s3, dataset_upload
from tests.cli.conftest import cli, stubbed_clients

REGION = "eu-west-1"
BUCKET = "churn-dev-storage-trainingdatabucket-1a2b3c"
KEY_ARN = f"arn:aws:kms:{REGION}:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
STORAGE_OUTPUTS = {"TrainingDataBucketName": BUCKET, "DataKeyArn": KEY_ARN, "ModelPackageGroupName": "churn-dev-models"}
SSE = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY_ARN}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "extra").mkdir(parents=True)
    (data / "part-0000.csv").write_text("tenure_months,churned\n1,0\n")
    (data / "extra" / "part-0001.csv").write_text("tenure_months,churned\n2,1\n")
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, aws_env: None):
    """Stubbers on the CloudFormation and S3 clients the command creates; every queued response must be used."""
    with stubbed_clients(monkeypatch, dataset_s3, "cloudformation", "s3") as stubbers:
        stubbers["cloudformation"].add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "churn-dev-Storage",
                        "CreationTime": "2025-01-01T00:00:00Z",
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in STORAGE_OUTPUTS.items()],
                    }
                ]
            },
            {"StackName": "churn-dev-Storage"},
        )
        yield stubbers


def expect_listing(s3: Stubber, dataset_id: str, contents: list[dict] | None = None) -> None:
    response = {"IsTruncated": False, "KeyCount": len(contents or [])}
    if contents:
        response["Contents"] = contents
    s3.add_response("list_objects_v2", response, {"Bucket": BUCKET, "Prefix": f"datasets/{dataset_id}/"})


def expect_upload(s3: Stubber, key: str, path: Path) -> None:
    """One file through boto3's managed transfer: a single PutObject below the multipart threshold."""
    s3.add_response(
        "put_object",
        {"ETag": '"etag"'},
        {
            "Bucket": BUCKET,
            "Key": key,
            "Body": ANY,
            **SSE,
            "Metadata": {"sha256": sha256(path)},
            "ChecksumAlgorithm": "CRC32",
        },
    )


def expect_marker(s3: Stubber, dataset_id: str) -> None:
    expected = {"Bucket": BUCKET, "Key": f"datasets/{dataset_id}/_SUCCESS", "Body": b"", "IfNoneMatch": "*", **SSE}
    s3.add_response("put_object", {"ETag": '"marker"'}, expected)


def test_put_uploads_every_file_with_the_units_key_then_the_marker(aws, folder, capsys) -> None:
    s3 = aws["s3"]
    expect_listing(s3, "orders-v42")
    expect_upload(s3, "datasets/orders-v42/extra/part-0001.csv", folder / "extra" / "part-0001.csv")
    expect_upload(s3, "datasets/orders-v42/part-0000.csv", folder / "part-0000.csv")
    expect_marker(s3, "orders-v42")  # queued last: the Stubber fails any other order

    code, out, err = cli(capsys, "dataset", "put", str(folder), "--id", "orders-v42", "--env", "dev")

    assert (code, err) == (0, "")
    assert out.strip() == (
        f"put 2 file(s) into s3://{BUCKET}/datasets/orders-v42/, marker last: the trigger starts churn-dev-training "
        "with ExperimentId=dataset-orders-v42"
    )


def test_large_files_go_up_in_parts_each_encrypted_with_the_units_key(aws, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(dataset_s3, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(dataset_s3, "MULTIPART_CHUNK_SIZE", 5 * 1024 * 1024)  # S3's smallest part
    data = tmp_path / "big"
    data.mkdir()
    (data / "part-0000.csv").write_bytes(b"1,0\n" * (6 * 1024 * 1024 // 4))
    key, s3 = "datasets/big-1/part-0000.csv", aws["s3"]
    expect_listing(s3, "big-1")
    s3.add_response(
        "create_multipart_upload",
        {"UploadId": "upload-1"},
        {
            "Bucket": BUCKET,
            "Key": key,
            **SSE,
            "Metadata": {"sha256": sha256(data / "part-0000.csv")},
            "ChecksumAlgorithm": "CRC32",
        },
    )
    for _ in range(2):  # parts may go up concurrently: same response, any part number
        part = {"Bucket": BUCKET, "Key": key, "UploadId": "upload-1", "PartNumber": ANY, "Body": ANY}
        s3.add_response("upload_part", {"ETag": '"part"'}, {**part, "ChecksumAlgorithm": "CRC32"})
    parts = [{"ETag": '"part"', "PartNumber": 1}, {"ETag": '"part"', "PartNumber": 2}]
    s3.add_response(
        "complete_multipart_upload",
        {},
        {"Bucket": BUCKET, "Key": key, "UploadId": "upload-1", "MultipartUpload": {"Parts": parts}},
    )
    expect_marker(s3, "big-1")

    code, _, err = cli(capsys, "dataset", "put", str(data), "--id", "big-1", "--env", "dev")

    assert (code, err) == (0, "")


def test_an_existing_dataset_is_refused_before_anything_is_uploaded(aws, folder, capsys) -> None:
    expect_listing(
        aws["s3"], "v1", [{"Key": "datasets/v1/part-0000.csv", "Size": 5}, {"Key": "datasets/v1/_SUCCESS", "Size": 0}]
    )

    code, out, err = cli(capsys, "dataset", "put", str(folder), "--id", "v1", "--env", "dev")

    assert (code, out) == (2, "")
    prefix = f"error: the dataset already exists with other files (s3://{BUCKET}/datasets/v1/_SUCCESS): datasets are"
    assert err.startswith(prefix)


def test_a_marker_written_by_someone_else_meanwhile_is_not_overwritten(aws, folder, capsys) -> None:
    s3 = aws["s3"]
    expect_listing(s3, "v1")
    expect_upload(s3, "datasets/v1/extra/part-0001.csv", folder / "extra" / "part-0001.csv")
    expect_upload(s3, "datasets/v1/part-0000.csv", folder / "part-0000.csv")
    s3.add_client_error("put_object", "PreconditionFailed", "At least one of the pre-conditions failed", 412)

    code, _, err = cli(capsys, "dataset", "put", str(folder), "--id", "v1", "--env", "dev")

    assert code == 2
    assert err.startswith("error: the dataset already exists")


def test_a_failed_upload_writes_no_marker_and_says_how_to_resume(aws, folder, capsys) -> None:
    s3 = aws["s3"]
    expect_listing(s3, "v2")
    s3.add_client_error("put_object", "AccessDenied", "not allowed to use the key", 403)
    # Nothing else is queued: a further upload or the marker would fail the Stubber.

    code, out, err = cli(capsys, "dataset", "put", str(folder), "--id", "v2", "--env", "dev")

    assert (code, out) == (1, "")
    assert err.startswith(f"error: uploading s3://{BUCKET}/datasets/v2/ failed: ")
    assert "AccessDenied" in err
    assert err.strip().endswith(
        "No marker was written, so no training started; re-run the same command to resume (files already uploaded "
        "are skipped)"
    )


def test_a_resumed_upload_skips_files_already_there_with_the_same_content(aws, folder, capsys) -> None:
    s3, done = aws["s3"], folder / "extra" / "part-0001.csv"
    changed = folder / "part-0000.csv"
    listed = [
        {"Key": "datasets/v3/extra/part-0001.csv", "Size": done.stat().st_size},
        {"Key": "datasets/v3/part-0000.csv", "Size": changed.stat().st_size},  # same size, other content
    ]
    expect_listing(s3, "v3", listed)
    s3.add_response("head_object", {"Metadata": {"sha256": sha256(done)}}, {"Bucket": BUCKET, "Key": listed[0]["Key"]})
    s3.add_response("head_object", {"Metadata": {"sha256": "0" * 64}}, {"Bucket": BUCKET, "Key": listed[1]["Key"]})
    expect_upload(s3, "datasets/v3/part-0000.csv", changed)
    expect_marker(s3, "v3")

    code, _, err = cli(capsys, "dataset", "put", str(folder), "--id", "v3", "--env", "dev")

    assert code == 0
    assert err == "resuming: 1 of 2 file(s) are already there\n"


def test_objects_of_another_upload_under_the_id_are_refused(aws, folder, capsys) -> None:
    expect_listing(aws["s3"], "v4", [{"Key": "datasets/v4/other.csv", "Size": 3}])

    code, _, err = cli(capsys, "dataset", "put", str(folder), "--id", "v4", "--env", "dev")

    assert code == 2
    assert "already holds 1 object(s) that are not in the folder (e.g. other.csv)" in err


def test_the_progress_bar_redraws_one_line_and_is_silent_off_a_terminal(capsys) -> None:
    bar = dataset_upload.ProgressBar(4 * 1024 * 1024, enabled=True)
    for _ in range(4):
        bar(1024 * 1024)
    bar.finish()
    quiet = dataset_upload.ProgressBar(10, enabled=False)
    quiet(10)
    quiet.finish()

    err = capsys.readouterr().err
    assert err.count("\r") == 4
    assert err.endswith(f"\r[{'#' * 30}] 100% 4.0/4.0 MiB\n")


# Bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--id", "v1"], "error: say where the dataset goes: --local (the local landing bucket) or --env <env> (AWS)"),
        (["--id", "v1", "--env", "dev", "--no-run"], "error: --no-run is for --local"),
        (
            ["--id", "v1", "--local", "--env", "nope"],
            "error: unknown environment 'nope': use --env with one of dev, staging, prod",
        ),
    ],
)
def test_bad_input_is_one_line(folder, argv, message, capsys) -> None:
    code, out, err = cli(capsys, "dataset", "put", str(folder), *argv)

    assert (code, out) == (2, "")
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1


def test_a_folder_with_a_marker_of_its_own_is_refused(folder, tmp_path, capsys) -> None:
    (folder / "_SUCCESS").touch()

    state = str(tmp_path / "state")
    code, _, err = cli(capsys, "dataset", "put", str(folder), "--id", "v1", "--local", "--state-dir", state)

    assert code == 2
    assert "the marker is written by this command, after every file; remove it from the folder" in err


# Locally -----------------------------------------------------------------------------------------------------------
def test_local_put_lands_the_files_marker_last_and_refuses_the_id_again(folder, tmp_path, capsys) -> None:
    state = tmp_path / "state"
    argv = ["dataset", "put", str(folder), "--id", "v1", "--local", "--no-run", "--state-dir", str(state)]

    assert cli(capsys, *argv)[0] == 0
    landed = state / "s3" / "local-landing" / "datasets" / "v1"
    assert sorted(p.relative_to(landed).as_posix() for p in landed.rglob("*") if p.is_file()) == [
        "_SUCCESS",
        "extra/part-0001.csv",
        "part-0000.csv",
    ]
    assert (landed / "part-0000.csv").read_bytes() == (folder / "part-0000.csv").read_bytes()
    assert max(p.stat().st_mtime_ns for p in landed.rglob("*.csv")) <= (landed / "_SUCCESS").stat().st_mtime_ns

    # The same files again (a walk-through run twice): nothing to put, nothing changed.
    before = {p: p.stat().st_mtime_ns for p in landed.rglob("*")}
    code, _, err = cli(capsys, *argv)
    assert code == 0 and "already holds these files, byte for byte, and its marker: nothing to put" in err
    assert {p: p.stat().st_mtime_ns for p in landed.rglob("*")} == before
    # Other content under the same id: refused.
    (folder / "part-0000.csv").write_text("changed\n")
    code, _, err = cli(capsys, *argv)
    assert code == 2
    assert "the dataset already exists with other files (s3://local-landing/datasets/v1/_SUCCESS)" in err


def test_an_interrupted_local_put_leaves_no_marker_and_resumes(folder, tmp_path, monkeypatch, capsys) -> None:
    state = tmp_path / "state"
    copies: list[str] = []
    original = dataset_command._copy

    def interrupted_on_second(item, target, scratch, progress):
        copies.append(item.key)
        if len(copies) == 2:
            raise KeyboardInterrupt
        original(item, target, scratch, progress)

    monkeypatch.setattr(dataset_command, "_copy", interrupted_on_second)
    argv = ["dataset", "put", str(folder), "--id", "v1", "--local", "--no-run", "--state-dir", str(state)]

    code, _, err = cli(capsys, *argv)
    landed = state / "s3" / "local-landing" / "datasets" / "v1"
    assert code == 130
    assert err.startswith("error: interrupted before the marker was written, so nothing started")
    assert not (landed / "_SUCCESS").exists()
    assert not list((state / "tmp").iterdir())  # no half-written file is left behind

    monkeypatch.setattr(dataset_command, "_copy", original)
    code, _, err = cli(capsys, *argv)
    assert code == 0
    assert "resuming: 1 of 2 file(s) are already there" in err
    assert (landed / "_SUCCESS").exists()


@pytest.mark.heavy(seconds=10)  # a whole training run; scheduled first, longest first (tests/conftest.py)
def test_local_put_starts_the_training_run_as_the_trigger_would(assembly_dir, tmp_path, capsys) -> None:
    sample = Path(__file__).resolve().parents[2] / "pipeline_defs" / "sample_data" / "churn"
    state = tmp_path / "state"
    argv = ["dataset", "put", str(sample), "--id", "sample-v7", "--local", "--state-dir", str(state)]

    code, out, err = cli(capsys, *argv, "--assembly", str(assembly_dir), "--json")

    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "Succeeded"
    assert result["parameters"]["InputDataUri"] == "s3://local-landing/datasets/sample-v7/"
    assert result["parameters"]["ExperimentId"] == "dataset-sample-v7"
    assert "RegisterModel" in [step["name"] for step in result["steps"]]


# Errors a newcomer meets -----------------------------------------------------------------------------------------
def test_a_run_on_a_missing_dataset_stops_before_any_step_and_says_how_to_put_it(assembly_dir, tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    argv = ["run", "training", "--local", "--assembly", str(assembly_dir), "--state-dir", str(state)]

    code, out, err = cli(capsys, *argv, "--param", "InputDataUri=s3://local-landing/datasets/sample-v1/")

    assert (code, out) == (2, "")
    assert err.startswith("error: no dataset at s3://local-landing/datasets/sample-v1/ in the state dir ")
    assert f"`mlops dataset put <folder> --id sample-v1 --local --state-dir {state} --no-run`" in err
    assert len(err.strip().splitlines()) == 1
    assert not (state / "executions").exists()  # no step ran


@pytest.mark.parametrize("command", [["graph", "training"], ["run", "training", "--local"], ["registry", "list"]])
def test_an_unknown_environment_names_the_ones_there_are(command, capsys) -> None:
    code, out, err = cli(capsys, *command, "--env", "production")

    assert (code, out) == (2, "")
    assert err == (
        "error: unknown environment 'production': use --env with one of dev, staging, prod "
        "(each is defined in config/environments.py)\n"
    )


def test_putting_the_same_files_again_uploads_nothing(aws, folder, capsys) -> None:
    """Same keys, sizes and recorded SHA-256 as the folder's, and the marker: a repeated put, exit 0, no write."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    listed = [{"Key": f"datasets/v1/{p.relative_to(folder).as_posix()}", "Size": p.stat().st_size} for p in files]
    expect_listing(aws["s3"], "v1", [*listed, {"Key": "datasets/v1/_SUCCESS", "Size": 0}])
    for path, item in zip(files, listed, strict=True):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        aws["s3"].add_response("head_object", {"Metadata": {"sha256": digest}}, {"Bucket": BUCKET, "Key": item["Key"]})

    code, out, err = cli(capsys, "dataset", "put", str(folder), "--id", "v1", "--env", "dev")

    assert (code, out) == (0, "")
    assert "already holds these files, byte for byte, and its marker: nothing to put" in err
