"""What the CLI test files share: `mlops` run in-process, botocore Stubbers handed to a command module in place of its
AWS clients, and the Stubber answers several commands read (a model package, a JSON object in S3)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mlops.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`mlops <argv>` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The one `error:` line a failed command prints on stderr (asserted: one line, nothing else)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@contextlib.contextmanager
def stubbed_clients(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, *services: str
) -> Iterator[dict[str, Stubber]]:
    """{service: active Stubber} for `module.client(service, config)`; every expected call must have been made."""
    clients = {name: boto3.client(name, region_name="eu-west-1") for name in services}
    stubbers = {name: Stubber(client) for name, client in clients.items()}
    monkeypatch.setattr(module, "client", lambda service, config: clients[service])
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def expect_describe(aws: dict[str, Stubber], described: dict[str, Any], arn: str | None = None) -> None:
    """DescribeModelPackage of `arn` (default: the package's own ARN) answers `described`."""
    request = {"ModelPackageName": arn or described["ModelPackageArn"]}
    aws["sagemaker"].add_response("describe_model_package", described, request)


def expect_object(s3: Stubber, uri: str, body: bytes | None) -> None:
    """GetObject of `uri` (s3://bucket/key) answers `body`; None: the object does not exist."""
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    request = {"Bucket": bucket, "Key": key}
    if body is None:
        s3.add_client_error("get_object", "NoSuchKey", http_status_code=404, expected_params=request)
        return
    s3.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))}, request)


def expect_json_object(s3: Stubber, uri: str, document: Any | None) -> None:
    """GetObject of `uri` (s3://bucket/key) answers `document` as JSON; None: the object does not exist."""
    expect_object(s3, uri, None if document is None else json.dumps(document).encode())
