"""Fixtures for the start-pipeline handler: offline AWS settings, the handler loaded by path, realistic events.

`lambda` is a Python keyword, so the function's modules are loaded from their files; `event_pattern` is put in
sys.modules under the name the handler imports it by, as the Lambda runtime's sys.path would provide it.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.helpers import FUNCTION_DIR, load_module

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PIPELINE_NAME = "churn-dev-training"
LANDING_BUCKET = "churn-dev-landing"
PREFIX = "datasets/"
MARKER = "_SUCCESS"
VERSION_ID = "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
EMPTY_ETAG = "d41d8cd98f00b204e9800998ecf8427e"
CONTEXT = SimpleNamespace(aws_request_id="6f1c2d3e-0000-4000-8000-000000000001", function_name="start-pipeline")


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> dict[str, str]:
    values = {
        "PIPELINE_NAME": PIPELINE_NAME,
        "LANDING_BUCKET": LANDING_BUCKET,
        "DATASET_PREFIX": PREFIX,
        "MARKER_NAME": MARKER,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch, function_env: dict[str, str]) -> Callable[[], ModuleType]:
    """Load a fresh copy of handler.py (a cold start) with the environment as it is when called."""

    def load() -> ModuleType:
        monkeypatch.setitem(
            sys.modules, "event_pattern", load_module("event_pattern", FUNCTION_DIR / "event_pattern.py")
        )
        # monkeypatch restores sys.modules after the test; load_module registers the module while it runs.
        monkeypatch.setitem(sys.modules, "start_pipeline_handler", ModuleType("start_pipeline_handler"))
        return load_module("start_pipeline_handler", FUNCTION_DIR / "handler.py")

    return load


@pytest.fixture
def handler_module(load_handler: Callable[[], ModuleType]) -> ModuleType:
    return load_handler()


@pytest.fixture
def event_pattern_module() -> ModuleType:
    return load_module("event_pattern_under_test", FUNCTION_DIR / "event_pattern.py")


@pytest.fixture
def stubbed_sagemaker(monkeypatch: pytest.MonkeyPatch, handler_module: ModuleType) -> Any:
    """A Stubber on the client the handler uses; any call without a queued response fails the test."""
    client = boto3.client("sagemaker", region_name=REGION)
    monkeypatch.setattr(handler_module, "_sagemaker_client", client)
    with Stubber(client) as stubber:
        yield stubber


def marker_event(
    key: str = f"{PREFIX}churn-2024-06-01/{MARKER}",
    *,
    bucket: str = LANDING_BUCKET,
    version_id: str | None = VERSION_ID,
    etag: str | None = EMPTY_ETAG,
    event_id: str = "17793124-05d4-b198-2fde-7ededc63b103",
) -> dict[str, Any]:
    """An EventBridge `Object Created` event as S3 sends it (docs: AmazonS3/latest/userguide/ev-events)."""
    s3_object: dict[str, Any] = {"key": key, "size": 0, "sequencer": "617f08299329d189"}
    if etag is not None:
        s3_object["etag"] = etag
    if version_id is not None:
        s3_object["version-id"] = version_id
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2024-06-01T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": s3_object,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "10.0.0.1",
            "reason": "PutObject",
        },
    }


def without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    """A copy of `event` with the field at `path` removed."""
    changed = copy.deepcopy(event)
    node = changed
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return changed


def json_log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Everything the handler wrote to stdout, one JSON object per line (fails on any other line)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]
