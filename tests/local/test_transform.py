"""The local batch transform's record handling, with a stand-in model (the real model: test_pipelines_end_to_end.py)."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from pipeline_defs.local.errors import StepFailed
from pipeline_defs.local.inference import InferenceCode
from pipeline_defs.local.transform import TransformSettings, select

START = "2026-12-01T05:00:00Z"


def counting_model(requests: list[bytes], answers_per_request: int | None = None) -> InferenceCode:
    """Answers each CSV line of a request with its number of cells; records every request body."""
    module = ModuleType("stand_in_inference")

    def predict(body: bytes, model: object) -> list[int]:
        requests.append(body)
        counts = [len(line.split(",")) for line in body.decode().splitlines()]
        return counts[:answers_per_request] if answers_per_request is not None else counts

    module.input_fn = lambda body, content_type: body
    module.predict_fn = predict
    module.output_fn = lambda prediction, accept: ("".join(f"{p}\n" for p in prediction), "text/csv")
    return InferenceCode(module, model=None)


def settings(**overrides: object) -> TransformSettings:
    arguments = {
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": "s3://bucket/out", "Accept": "text/csv"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 2},
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$"},
        "DataCaptureConfig": {"DestinationS3Uri": "s3://bucket/capture", "GenerateInferenceId": True},
    }
    return TransformSettings(arguments | overrides)


@pytest.mark.parametrize(
    ("path", "expected"),
    [("$", ["k", "a", "b", "c"]), ("$[1:]", ["a", "b", "c"]), ("$[0,-1]", ["k", "c"]), ("$[-1]", ["c"])],
)
def test_select_picks_cells_by_index_list_or_slice(path: str, expected: list[str]) -> None:
    assert select(["k", "a", "b", "c"], path) == expected


def test_an_unsupported_filter_fails_before_any_request() -> None:
    with pytest.raises(StepFailed, match=r"JSONPath '\$\.features': locally only"):
        settings(DataProcessing={"InputFilter": "$.features"})


def test_each_record_is_its_input_joined_with_the_answer_to_the_filtered_record_then_id_and_time() -> None:
    requests: list[bytes] = []

    lines = list(settings().transformed(counting_model(requests), "k1,1,2,3\nk2,4,5\n", START, "in/a.csv"))

    assert requests == [b"1,2,3\n4,5\n"]  # MultiRecord: both lines in one request, the key filtered out
    assert [line.rsplit(",", 2)[0] for line in lines] == ["k1,1,2,3,3", "k2,4,5,2"]
    ids = [line.split(",")[-2] for line in lines]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", value) for value in ids) and len(set(ids)) == 2
    assert all(line.endswith(f",{START}") for line in lines)


def test_single_record_sends_one_request_per_record_and_output_filter_keeps_key_and_answer() -> None:
    requests: list[bytes] = []
    chosen = settings(
        BatchStrategy="SingleRecord",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        DataCaptureConfig={"DestinationS3Uri": "s3://bucket/capture"},
    )

    lines = list(chosen.transformed(counting_model(requests), "k1,1,2,3\nk2,4,5\n", START, "in/a.csv"))

    assert requests == [b"1,2,3\n", b"4,5\n"]
    assert lines == ["k1,3", "k2,2"]


def test_a_model_that_answers_fewer_records_than_it_was_sent_fails_the_step() -> None:
    with pytest.raises(StepFailed, match=r"in/a\.csv: the model answered 1 records for 2"):
        list(settings().transformed(counting_model([], answers_per_request=1), "k1,1\nk2,2\n", START, "in/a.csv"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BatchStrategy": "Everything"}, "BatchStrategy 'Everything' is not one of MultiRecord, SingleRecord"),
        ({"TransformResources": {"InstanceCount": 0}}, "InstanceCount 0 is not a positive integer"),
    ],
)
def test_unsupported_settings_fail_by_name(overrides: dict, message: str) -> None:
    with pytest.raises(StepFailed, match=message):
        settings(**overrides)
