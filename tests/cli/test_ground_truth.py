"""`mlops ground-truth put`: the producers' contract, one error line per bad record, exact S3 request, local bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import Stubber

from mlops import ground_truth
from tests.cli.conftest import cli, expect_object, stubbed_clients

HOUR = "2026-11-29T13"
KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/11111111-2222-3333-4444-555555555555"
BUCKET = "churn-dev-storage-trainingdatabucket1a2b3c"


def record(inference_id: str, label: str = "1", encoding: str = "CSV") -> str:
    return json.dumps(
        {
            "groundTruthData": {"data": label, "encoding": encoding},
            "eventMetadata": {"eventId": inference_id},
            "eventVersion": "0",
        }
    )


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture(autouse=True)
def state_dirs(tmp_path: Path) -> None:
    """The state dirs the tests put labels into exist: `ground-truth put --local` refuses a missing one (a typo)."""
    for name in ("state", "s"):
        (tmp_path / name).mkdir()


def put(capsys, *arguments: str) -> tuple[int, str, str]:
    return cli(capsys, "ground-truth", "put", *arguments)


# The contract ---------------------------------------------------------------------------------------------------------
def test_csv_labels_become_model_monitor_records_in_the_local_landing_bucket(tmp_path, capsys) -> None:
    labels = write(tmp_path, "labels-13.csv", "inference_id,label", "req-1,1", "", "req-2,0")

    code, out, err = put(capsys, str(labels), "--local", "--state-dir", str(tmp_path / "state"), "--hour", HOUR)

    assert (code, err) == (0, "")
    target = tmp_path / "state/s3/local-landing/ground-truth/churn-dev-endpoint/2026/11/29/13/labels-13.jsonl"
    assert "wrote 2 label(s) to s3://local-landing/ground-truth/churn-dev-endpoint/2026/11/29/13/labels-13.jsonl" in out
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        json.loads(record("req-1", "1")),
        json.loads(record("req-2", "0")),
    ]
    assert [p.name for p in target.parent.iterdir()] == ["labels-13.jsonl"]  # no temporary file left


def test_jsonl_records_are_kept_as_they_are_and_an_existing_file_is_never_overwritten(tmp_path, capsys) -> None:
    labels = write(tmp_path, "batch.jsonl", record("a"), record("b", "0"))
    state = str(tmp_path / "state")

    code, out, _ = put(capsys, str(labels), "--local", "--state-dir", state, "--hour", HOUR, "--json")
    assert code == 0
    written = json.loads(out)
    assert written["records"] == 2
    assert Path(written["local_path"]).read_text() == labels.read_text().replace(": ", ":").replace(", ", ",")

    code, _, err = put(capsys, str(labels), "--local", "--state-dir", state, "--hour", HOUR)
    assert code == 2 and err.startswith("error: ") and "already exists" in err and err.count("\n") == 1


def test_ids_labelled_by_an_earlier_file_are_refused_naming_them_and_that_file(tmp_path, capsys) -> None:
    """Defect 3: a second label for a request stopped every later monitoring run on the capture (the merge refuses an
    id labelled twice), so put refuses it, and writes nothing."""
    state = tmp_path / "state"
    first = write(tmp_path, "monday.csv", "inference_id,label", *(f"req-{i},1" for i in range(6)))
    assert put(capsys, str(first), "--local", "--state-dir", str(state), "--hour", HOUR)[0] == 0
    resent = write(tmp_path, "tuesday.jsonl", record("new-1"), *(record(f"req-{i}", "0") for i in (5, 4, 3, 2)))

    code, out, err = put(capsys, str(resent), "--local", "--state-dir", str(state), "--hour", "2026-11-30T08")

    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert err.startswith("error: ") and "tuesday.jsonl: 4 inference id(s) already labelled in " in err
    assert "ground-truth/churn-dev-endpoint/2026/11/29/13/monday.jsonl ('req-5', 'req-4', 'req-3' and 1 more)" in err
    assert not (state / "s3/local-landing/ground-truth/churn-dev-endpoint/2026/11/30").exists()  # nothing written

    fresh = write(tmp_path, "wednesday.jsonl", record("new-1"), record("new-2", "0"))
    assert put(capsys, str(fresh), "--local", "--state-dir", str(state), "--hour", "2026-11-30T08")[0] == 0


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([record("a"), record("b", encoding="JSON")], "batch.jsonl:2: unknown encoding 'JSON'"),
        ([record("a", "yes")], "batch.jsonl:1: label 'yes' is not 0 or 1"),
        ([record("a", 1)], "batch.jsonl:1: label 1 is not 0 or 1"),  # type: ignore[arg-type]
        (['{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventVersion": "0"}'], "batch.jsonl:1: missing "),
        ([record("a"), "", record("a", "0")], "batch.jsonl:3: inference id 'a' is already labelled on line 1"),
        ([record("x" * 65)], "batch.jsonl:1: inference id"),
        (["{not json"], "batch.jsonl:1: not JSON"),
        (['{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "a"}}'], "eventVersion"),
        ([], "holds no labels"),
    ],
)
def test_a_bad_record_stops_everything_with_one_line_naming_it(tmp_path, capsys, lines, message) -> None:
    labels = write(tmp_path, "batch.jsonl", *lines)

    code, out, err = put(capsys, str(labels), "--local", "--state-dir", str(tmp_path / "state"))

    assert (code, out) == (2, "")
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not any((tmp_path / "state").iterdir())  # nothing written


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["id,label", "a,1"], "labels.csv:1: the header must be inference_id,label"),
        (["inference_id,label", "a,1", "b,2"], "labels.csv:3: label '2' is not 0 or 1"),
        (["inference_id,label", "a,1,extra"], "labels.csv:2: expected 2 columns"),
        (["inference_id,label", ",1"], "labels.csv:2: inference id '' is not 1-64 printable characters"),
    ],
)
def test_bad_csv_rows_name_their_line(tmp_path, capsys, lines, message) -> None:
    code, _, err = put(capsys, str(write(tmp_path, "labels.csv", *lines)), "--local", "--state-dir", str(tmp_path))
    assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--local", "--env", "dev"], "--env <env> (the deployed unit) or --local"),
        ([], "--env <env> (the deployed unit) or --local"),
        (["--local", "--hour", "2026-11-29 13:00"], "--hour '2026-11-29 13:00': use the UTC hour as YYYY-MM-DDTHH"),
    ],
)
def test_where_and_when_must_be_clear(tmp_path, capsys, arguments, message) -> None:
    labels = write(tmp_path, "labels.jsonl", record("a"))
    code, _, err = put(capsys, str(labels), "--state-dir", str(tmp_path / "s"), *arguments)
    assert code == 2 and message in err


def test_other_file_types_and_missing_files_are_refused(tmp_path, capsys) -> None:
    code, _, err = put(capsys, str(write(tmp_path, "labels.txt", "a,1")), "--local", "--state-dir", str(tmp_path))
    assert code == 2 and "use a .jsonl file" in err
    code, _, err = put(capsys, str(tmp_path / "missing.jsonl"), "--local", "--state-dir", str(tmp_path))
    assert code == 2 and "is not a file" in err


# AWS ------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def aws(monkeypatch, aws_env):
    """CloudFormation and S3 clients answered by Stubber: (cloudformation stubber, s3 stubber)."""
    with stubbed_clients(monkeypatch, ground_truth, "cloudformation", "s3") as stubbers:
        cloudformation, s3 = stubbers["cloudformation"], stubbers["s3"]
        stack = {
            "StackName": "churn-dev-Storage",
            "CreationTime": "2026-11-01T00:00:00Z",
            "StackStatus": "UPDATE_COMPLETE",
            "Outputs": [
                {"OutputKey": "TrainingDataBucketName", "OutputValue": BUCKET},
                {"OutputKey": "DataKeyArn", "OutputValue": KEY_ARN},
            ],
        }
        cloudformation.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "churn-dev-Storage"})
        yield cloudformation, s3


def expect_stored(s3: Stubber, *keys_and_bodies: tuple[str, bytes]) -> None:
    """The endpoint's ground truth already in the bucket: listed, then each file read (the put's duplicate check)."""
    prefix = "ground-truth/churn-dev-endpoint/"
    contents = [{"Key": prefix + key, "Size": len(body)} for key, body in keys_and_bodies]
    s3.add_response("list_objects_v2", {"Contents": contents}, {"Bucket": BUCKET, "Prefix": prefix})
    for key, body in keys_and_bodies:
        expect_object(s3, f"s3://{BUCKET}/{prefix}{key}", body)


def expected_put(body: bytes) -> dict[str, object]:
    return {
        "Bucket": BUCKET,
        "Key": "ground-truth/churn-dev-endpoint/2026/11/29/13/labels.jsonl",
        "Body": body,
        "ContentType": "application/jsonl",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": KEY_ARN,
        "IfNoneMatch": "*",
    }


def test_in_aws_the_labels_go_to_the_deployed_landing_bucket_encrypted_with_the_units_key(aws, tmp_path, capsys):
    _, s3 = aws
    labels = write(tmp_path, "labels.csv", "inference_id,label", "req-1,1")
    body = (json.dumps(json.loads(record("req-1")), separators=(",", ":")) + "\n").encode()
    expect_stored(s3, ("2026/11/28/09/earlier.jsonl", (record("req-0") + "\n").encode()))
    s3.add_response("put_object", {"ETag": '"abc"'}, expected_put(body))

    code, out, _ = put(capsys, str(labels), "--env", "dev", "--hour", HOUR)

    assert code == 0
    assert out == f"wrote 1 label(s) to s3://{BUCKET}/ground-truth/churn-dev-endpoint/2026/11/29/13/labels.jsonl\n"


def test_in_aws_an_existing_object_is_not_overwritten_and_other_failures_exit_1(aws, tmp_path, capsys):
    _, s3 = aws
    labels = write(tmp_path, "labels.jsonl", record("req-1"))
    body = labels.read_bytes().replace(b": ", b":").replace(b", ", b",")
    expect_stored(s3)
    s3.add_client_error("put_object", "PreconditionFailed", http_status_code=412, expected_params=expected_put(body))

    code, _, err = put(capsys, str(labels), "--env", "dev", "--hour", HOUR)
    assert code == 2 and "already exists" in err

    aws[0].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "churn-dev-Storage",
                    "CreationTime": "2026-11-01T00:00:00Z",
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [],
                }
            ]
        },
        {"StackName": "churn-dev-Storage"},
    )
    code, _, err = put(capsys, str(labels), "--env", "dev", "--hour", HOUR)
    assert code == 1 and "has no TrainingDataBucketName/DataKeyArn output" in err


def test_in_aws_ids_labelled_before_are_refused_and_nothing_is_put(aws, tmp_path, capsys):
    _, s3 = aws
    labels = write(tmp_path, "labels.csv", "inference_id,label", "req-1,1", "req-2,0")
    expect_stored(
        s3,
        ("2026/11/28/09/a.jsonl", (record("req-0") + "\n").encode()),
        ("2026/11/28/10/b.jsonl", (record("req-2") + "\n" + record("req-3") + "\n").encode()),
    )

    code, out, err = put(capsys, str(labels), "--env", "dev", "--hour", HOUR)

    assert (code, out) == (2, "")  # and no put_object: the Stubber would fail on an unexpected call
    assert (
        f"1 inference id(s) already labelled in s3://{BUCKET}/ground-truth/churn-dev-endpoint/2026/11/28/10/b.jsonl"
        in err
    )
    assert "('req-2')" in err and err.count("\n") == 1
