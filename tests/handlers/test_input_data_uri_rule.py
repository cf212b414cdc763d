"""The trigger and the CLI agree on InputDataUri: the URI the handler starts a run with is already in the form the
contract's one rule (`pipeline_defs.contract.input_data_uri`, used by `mlops run` and `mlops start`) gives it.

The Lambda asset holds only lambda/start_pipeline/, so it cannot import pipeline_defs; it builds
`s3://<bucket><prefix><dataset id>/` itself, and this test is what keeps the two from drifting apart.
"""

from __future__ import annotations

import pytest

from pipeline_defs.contract import Parameter, input_data_uri
from tests.handlers.conftest import MARKER, PREFIX, marker_event


@pytest.mark.parametrize("dataset_id", ["churn-2024-06-01", "sample-v1", "a", "v1.2_final"])
def test_the_trigger_passes_input_data_uri_in_the_contract_form(handler_module, dataset_id) -> None:
    marker = handler_module.parse_marker_event(marker_event(f"{PREFIX}{dataset_id}/{MARKER}"), handler_module.SETTINGS)
    parameters = {
        item["Name"]: item["Value"]
        for item in handler_module.start_request(marker, handler_module.SETTINGS)["PipelineParameters"]
    }

    uri = parameters[Parameter.INPUT_DATA_URI.value]
    assert input_data_uri(uri) == uri
    assert uri.endswith(f"/{dataset_id}/")  # the dataset's folder, never a prefix of a sibling's (sample-v1 vs -v10)
