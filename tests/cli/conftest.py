"""What several CLI test files share: botocore Stubbers handed to a command module in place of its AWS clients."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from botocore.stub import Stubber


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
