"""`mlops invoke --env`: the exact InvokeEndpoint request (botocore Stubber), its errors, and bad input."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mlops import invoke as invoke_command
from mlops.cli import main

ROW = b"9,43.19,396.64,month-to-month,electronic-check,none,2\n"


@pytest.fixture
def runtime(monkeypatch):
    client = boto3.client(
        "sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    regions = []
    monkeypatch.setattr(invoke_command, "client", lambda service, config: regions.append(config.region) or client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    assert set(regions) <= {"eu-west-1"}


def answer(body: bytes, content_type: str) -> dict:
    return {
        "Body": StreamingBody(io.BytesIO(body), len(body)),
        "ContentType": content_type,
        "InvokedProductionVariant": "AllTraffic",
    }


def test_env_sends_exactly_this_request_to_the_units_endpoint(runtime, tmp_path, capsys) -> None:
    request = tmp_path / "row.csv"
    request.write_bytes(ROW)
    expected = {
        "EndpointName": "churn-prod-endpoint",
        "Body": ROW,
        "ContentType": "text/csv",
        "Accept": "text/csv",
        "InferenceId": "order-7",
    }
    runtime.add_response("invoke_endpoint", answer(b"0.7656\n", "text/csv"), expected)

    code = main(["invoke", "--env", "prod", "--inference-id", "order-7", str(request)])

    assert (code, capsys.readouterr().out) == (0, "0.7656\n")


def test_json_file_and_stdin_with_explicit_types(runtime, tmp_path, monkeypatch, capsys) -> None:
    record = tmp_path / "record.json"
    record.write_text('{"tenure_months": 9}')
    runtime.add_response(
        "invoke_endpoint",
        answer(b'{"churn_probability": [0.5]}', "application/json"),
        {
            "EndpointName": "churn-dev-endpoint",
            "Body": b'{"tenure_months": 9}',
            "ContentType": "application/json",
            "Accept": "application/json",
        },
    )
    runtime.add_response(
        "invoke_endpoint",
        answer(b"0.5\n", "text/csv"),
        {"EndpointName": "other", "Body": ROW, "ContentType": "text/csv", "Accept": "text/csv"},
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(ROW)))

    assert main(["invoke", "--env", "dev", str(record), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "endpoint": "churn-dev-endpoint",
        "content_type": "application/json",
        "invoked_variant": "AllTraffic",
        "body": '{"churn_probability": [0.5]}',
    }
    assert main(["invoke", "--env", "dev", "--endpoint", "other", "--accept", "text/csv", "-"]) == 0


@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [("ModelError", 424, 2), ("ValidationError", 400, 2), ("InternalFailure", 500, 1), ("ThrottlingException", 400, 1)],
)
def test_service_errors_are_one_line(runtime, tmp_path, capsys, code, status, exit_code) -> None:
    request = tmp_path / "row.csv"
    request.write_bytes(ROW)
    runtime.add_client_error("invoke_endpoint", code, "it went wrong", http_status_code=status)

    assert main(["invoke", "--env", "dev", str(request)]) == exit_code
    err = capsys.readouterr().err
    assert err == f"error: churn-dev-endpoint (eu-west-1): {code}: it went wrong\n"


def test_bad_input_is_refused_before_any_call(runtime, tmp_path, capsys) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["invoke", "--env", "dev", str(empty)]) == 2
    assert "the request body is empty" in capsys.readouterr().err
    (tmp_path / "row.csv").write_bytes(ROW)
    assert main(["invoke", "--env", "dev", "--inference-id", "x" * 65, str(tmp_path / "row.csv")]) == 2
    assert "--inference-id 'xxxx" in capsys.readouterr().err
    assert main(["invoke", "--env", "dev", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv is not a file" in capsys.readouterr().err


def test_local_with_nothing_listening_says_how_to_start_it(tmp_path, capsys) -> None:
    request = tmp_path / "row.csv"
    request.write_bytes(ROW)
    assert main(["invoke", "--local", "--port", "9", str(request)]) == 1
    assert "start one: mlops serve --local --port 9" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-5", "0", "65536", "99999"])
def test_a_port_out_of_range_is_one_line_and_exit_2(port, capsys) -> None:
    assert main(["invoke", "--local", "--port", port, "-"]) == 2  # refused before stdin is read
    assert capsys.readouterr().err == f"error: --port {port}: use 1..65535 (the port mlops serve --local printed)\n"
