"""`mlops dataset put` and the trigger function apply one dataset-id rule (event_pattern.py, loaded by both)."""

from __future__ import annotations

import pytest

from mlops import dataset as dataset_command
from mlops.common import UsageError
from tests.handlers.conftest import PREFIX, marker_event

IDS = [
    "2025-06-02",
    "orders_v4.2",
    "a" * 64,
    "a" * 65,
    "",
    "-starts-badly",
    ".hidden",
    "a/b",
    "a b",
    "a%20b",
    "caf\u00e9",
]


@pytest.mark.parametrize("dataset_id", IDS)
def test_the_command_accepts_exactly_the_ids_the_trigger_starts_a_run_for(handler_module, dataset_id) -> None:
    try:
        handler_module.parse_marker_event(marker_event(f"{PREFIX}{dataset_id}/_SUCCESS"), handler_module.SETTINGS)
        trigger_accepts = True
    except handler_module.IgnoredEvent:
        trigger_accepts = False
    try:
        dataset_command.check_dataset_id(dataset_id)
        command_accepts = True
    except UsageError:
        command_accepts = False

    assert command_accepts == trigger_accepts
    assert trigger_accepts == (dataset_id in ("2025-06-02", "orders_v4.2", "a" * 64))


def test_both_start_the_run_with_the_same_experiment_id(handler_module) -> None:
    assert handler_module.experiment_id("orders-v42") == "dataset-orders-v42"
    assert dataset_command.trigger_rules().dataset_experiment_id("orders-v42") == "dataset-orders-v42"
