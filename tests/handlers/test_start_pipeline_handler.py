"""The start-pipeline handler against botocore Stubber: exact requests, duplicates, bad input, errors, config."""

from __future__ import annotations

import hashlib
import re
from types import ModuleType
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError

from tests.handlers.conftest import (
    CONTEXT,
    EMPTY_ETAG,
    LANDING_BUCKET,
    MARKER,
    PIPELINE_NAME,
    PREFIX,
    VERSION_ID,
    json_log_lines,
    marker_event,
    without,
)

EXECUTION_ARN = f"arn:aws:sagemaker:eu-west-1:123456789012:pipeline/{PIPELINE_NAME}/execution/abc123def456"
DATASET_ID = "churn-2024-06-01"
MARKER_KEY = f"{PREFIX}{DATASET_ID}/{MARKER}"
SAGEMAKER_MODEL = botocore.session.get_session().get_service_model("sagemaker")
LIST_PARAMS = {"PipelineName": PIPELINE_NAME, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def summary(display_name: str, status: str, arn: str = EXECUTION_ARN) -> dict[str, Any]:
    return {
        "PipelineExecutionArn": arn,
        "PipelineExecutionDisplayName": display_name,
        "PipelineExecutionStatus": status,
    }


def expect_no_executions(stubber: Any) -> None:
    stubber.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": []}, LIST_PARAMS)


def capture_start_requests(handler_module: ModuleType) -> list[dict[str, Any]]:
    """Record every StartPipelineExecution request the handler's client builds."""
    requests: list[dict[str, Any]] = []
    handler_module.sagemaker_client().meta.events.register(
        "provide-client-params.sagemaker.StartPipelineExecution", lambda params, **_: requests.append(dict(params))
    )
    return requests


# --- the request -------------------------------------------------------------------------------------------


def test_valid_marker_starts_the_exact_request(handler_module, stubbed_sagemaker, capsys):
    expect_no_executions(stubbed_sagemaker)
    display_name = f"dataset-{DATASET_ID}-{sha256(DATASET_ID)[:8]}"
    stubbed_sagemaker.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {
            "PipelineName": PIPELINE_NAME,
            "PipelineExecutionDisplayName": display_name,
            "PipelineParameters": [
                {"Name": "InputDataUri", "Value": f"s3://{LANDING_BUCKET}/{PREFIX}{DATASET_ID}/"},
                {"Name": "ExperimentId", "Value": f"dataset-{DATASET_ID}"},
            ],
            "PipelineExecutionDescription": (
                f"Run on dataset {DATASET_ID}, started by s3://{LANDING_BUCKET}/{MARKER_KEY} (version {VERSION_ID})"
            ),
            "ClientRequestToken": sha256(f"{LANDING_BUCKET}\n{MARKER_KEY}\nversion:{VERSION_ID}"),
        },
    )

    result = handler_module.handler(marker_event(MARKER_KEY), CONTEXT)

    assert result == {"status": "started", "dataset_id": DATASET_ID, "execution_arn": EXECUTION_ARN}
    stubbed_sagemaker.assert_no_pending_responses()
    [line] = json_log_lines(capsys)
    assert line["level"] == "INFO"
    assert line["message"] == "pipeline execution started"
    assert line["execution_arn"] == EXECUTION_ARN
    assert line["dataset_id"] == DATASET_ID
    assert line["bucket"] == LANDING_BUCKET
    assert line["key"] == MARKER_KEY
    assert line["request_id"] == CONTEXT.aws_request_id
    assert line["experiment_id"] == f"dataset-{DATASET_ID}"


def test_token_is_the_same_for_the_same_marker_and_new_for_a_new_version(handler_module, stubbed_sagemaker):
    requests = capture_start_requests(handler_module)
    deliveries = [
        marker_event(MARKER_KEY, event_id="first-delivery"),
        marker_event(MARKER_KEY, event_id="redelivery"),
        marker_event(MARKER_KEY, version_id="Xq2pX0.second-write-of-the-marker"),
    ]
    for event in deliveries:
        expect_no_executions(stubbed_sagemaker)
        stubbed_sagemaker.add_response("start_pipeline_execution", {"PipelineExecutionArn": EXECUTION_ARN})
        assert handler_module.handler(event, CONTEXT)["status"] == "started"

    first, redelivered, rewritten = (request["ClientRequestToken"] for request in requests)
    assert first == redelivered
    assert rewritten != first
    token_shape = SAGEMAKER_MODEL.operation_model("StartPipelineExecution").input_shape.members["ClientRequestToken"]
    assert token_shape.metadata["min"] <= len(first) <= token_shape.metadata["max"]


def test_unversioned_marker_token_uses_etag_and_sequencer(handler_module, stubbed_sagemaker):
    requests = capture_start_requests(handler_module)
    for sequencer in ("617f08299329d189", "617f08299329d189", "617f0829a0000000"):
        event = marker_event(MARKER_KEY, version_id=None)
        event["detail"]["object"]["sequencer"] = sequencer
        expect_no_executions(stubbed_sagemaker)
        stubbed_sagemaker.add_response("start_pipeline_execution", {"PipelineExecutionArn": EXECUTION_ARN})
        handler_module.handler(event, CONTEXT)

    first, redelivered, rewritten = (request["ClientRequestToken"] for request in requests)
    assert first == redelivered == sha256(f"{LANDING_BUCKET}\n{MARKER_KEY}\netag:{EMPTY_ETAG}:617f08299329d189")
    assert rewritten != first
    assert requests[0]["PipelineExecutionDescription"].endswith(f"(etag {EMPTY_ETAG})")


@pytest.mark.parametrize(
    "dataset_id",
    ["a", "7", "churn.v2_2024-06-01", "trailing_", "a--b", "A" * 64, "x." * 32, "0_" * 32],
)
def test_derived_names_are_valid_for_sagemaker(handler_module, dataset_id):
    display_shape = SAGEMAKER_MODEL.operation_model("StartPipelineExecution").input_shape.members[
        "PipelineExecutionDisplayName"
    ]
    display_name = handler_module.execution_display_name(dataset_id)
    assert len(display_name) <= display_shape.metadata["max"]
    assert re.fullmatch(display_shape.metadata["pattern"], display_name)

    tag_value = SAGEMAKER_MODEL.shape_for("TagValue").metadata
    ascii_tag_pattern = tag_value["pattern"].replace(r"\p{L}\p{Z}\p{N}", "A-Za-z0-9 ")
    experiment_id = handler_module.experiment_id(dataset_id)
    assert len(experiment_id) <= tag_value["max"]
    assert re.fullmatch(ascii_tag_pattern, experiment_id)


def test_display_names_keep_similar_dataset_ids_apart(handler_module):
    names = {handler_module.execution_display_name(dataset_id) for dataset_id in ("a.b", "a_b", "a-b", "A-b")}
    assert len(names) == 4


# --- duplicates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Executing", "Stopping", "Succeeded"])
def test_existing_execution_of_the_dataset_is_a_duplicate(handler_module, stubbed_sagemaker, capsys, status):
    display_name = handler_module.execution_display_name(DATASET_ID)
    stubbed_sagemaker.add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [summary(display_name, status)]},
        LIST_PARAMS,
    )

    result = handler_module.handler(marker_event(MARKER_KEY), CONTEXT)  # no start_pipeline_execution is stubbed

    assert result == {
        "status": "duplicate",
        "dataset_id": DATASET_ID,
        "execution_arn": EXECUTION_ARN,
        "execution_status": status,
    }
    stubbed_sagemaker.assert_no_pending_responses()
    [line] = json_log_lines(capsys)
    assert line["level"] == "INFO"
    assert line["message"].startswith("duplicate marker")
    assert line["execution_status"] == status
    assert line["execution_arn"] == EXECUTION_ARN


@pytest.mark.parametrize("status", ["Failed", "Stopped", "CompletedWithFailures"])
def test_failed_or_stopped_execution_may_run_again(handler_module, stubbed_sagemaker, status):
    display_name = handler_module.execution_display_name(DATASET_ID)
    stubbed_sagemaker.add_response(
        "list_pipeline_executions", {"PipelineExecutionSummaries": [summary(display_name, status)]}, LIST_PARAMS
    )
    new_arn = EXECUTION_ARN.replace("abc123def456", "rerun0000000")
    stubbed_sagemaker.add_response("start_pipeline_execution", {"PipelineExecutionArn": new_arn})

    assert handler_module.handler(marker_event(MARKER_KEY), CONTEXT)["execution_arn"] == new_arn
    stubbed_sagemaker.assert_no_pending_responses()


def test_duplicate_search_pages_newest_first_and_ignores_other_datasets(handler_module, stubbed_sagemaker):
    display_name = handler_module.execution_display_name(DATASET_ID)
    other = handler_module.execution_display_name("another-dataset")
    stubbed_sagemaker.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [summary(other, "Executing"), summary(display_name, "Failed")],
            "NextToken": "p2",
        },
        LIST_PARAMS,
    )
    stubbed_sagemaker.add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [summary(display_name, "Succeeded")]},
        {**LIST_PARAMS, "NextToken": "p2"},
    )

    assert handler_module.handler(marker_event(MARKER_KEY), CONTEXT)["status"] == "duplicate"
    stubbed_sagemaker.assert_no_pending_responses()


def test_duplicate_search_is_bounded(handler_module, stubbed_sagemaker):
    pages = handler_module.MAX_EXECUTIONS_SCANNED // 100
    for page in range(pages):
        params = LIST_PARAMS if page == 0 else {**LIST_PARAMS, "NextToken": f"p{page}"}
        stubbed_sagemaker.add_response(
            "list_pipeline_executions",
            {
                "PipelineExecutionSummaries": [summary(f"dataset-other-{page}-{i}", "Succeeded") for i in range(100)],
                "NextToken": f"p{page + 1}",
            },
            params,
        )
    stubbed_sagemaker.add_response("start_pipeline_execution", {"PipelineExecutionArn": EXECUTION_ARN})

    assert handler_module.handler(marker_event(MARKER_KEY), CONTEXT)["status"] == "started"
    stubbed_sagemaker.assert_no_pending_responses()


# --- bad input ---------------------------------------------------------------------------------------------

VALID = marker_event(MARKER_KEY)


def with_key(key: Any) -> dict[str, Any]:
    event = marker_event(MARKER_KEY)
    event["detail"]["object"]["key"] = key
    return event


BAD_EVENTS = {
    "string event": ("not an event", "not_an_object"),
    "null event": (None, "not_an_object"),
    "list event": ([VALID], "not_an_object"),
    "custom event": ({"source": "my.app", "detail-type": "Dataset Ready", "detail": {}}, "not_s3_object_created"),
    "object deleted": ({**VALID, "detail-type": "Object Deleted"}, "not_s3_object_created"),
    "other source": ({**VALID, "source": "aws.ec2"}, "not_s3_object_created"),
    "sqs-style s3 notification": ({"Records": [{"s3": {"object": {"key": MARKER_KEY}}}]}, "not_s3_object_created"),
    "no detail": (without(VALID, "detail"), "missing_field"),
    "no bucket": (without(VALID, "detail", "bucket"), "missing_field"),
    "no key": (without(VALID, "detail", "object", "key"), "missing_field"),
    "key not a string": (with_key(123), "missing_field"),
    "empty key": (with_key(""), "missing_field"),
    "no version and no etag": (marker_event(MARKER_KEY, version_id=None, etag=None), "missing_field"),
    "another bucket": (marker_event(MARKER_KEY, bucket="someone-elses-bucket"), "wrong_bucket"),
    "another prefix": (with_key(f"raw/{DATASET_ID}/{MARKER}"), "outside_prefix"),
    "prefix look-alike": (with_key(f"datasets-old/{DATASET_ID}/{MARKER}"), "outside_prefix"),
    "data file": (with_key(f"{PREFIX}{DATASET_ID}/part-00000.parquet"), "not_marker"),
    "marker look-alike": (with_key(f"{PREFIX}{DATASET_ID}/{MARKER}.tmp"), "not_marker"),
    "marker name suffix": (with_key(f"{PREFIX}{DATASET_ID}/x{MARKER}"), "not_marker"),
    "encoded marker": (with_key(f"{PREFIX}{DATASET_ID}/%5FSUCCESS"), "not_marker"),
    "marker directly under prefix": (with_key(f"{PREFIX}{MARKER}"), "empty_dataset_id"),
    "empty folder name": (with_key(f"{PREFIX}/{MARKER}"), "empty_dataset_id"),
    "nested path": (with_key(f"{PREFIX}team/{DATASET_ID}/{MARKER}"), "nested_path"),
    "too long": (with_key(f"{PREFIX}{'a' * 65}/{MARKER}"), "dataset_id_too_long"),
    "space encoded as +": (with_key(f"{PREFIX}my+data/{MARKER}"), "invalid_dataset_id"),
    "encoded slash": (with_key(f"{PREFIX}team%2Fdata/{MARKER}"), "invalid_dataset_id"),
    "encoded unicode": (with_key(f"{PREFIX}caf%C3%A9/{MARKER}"), "invalid_dataset_id"),
    "raw unicode": (with_key(f"{PREFIX}café/{MARKER}"), "invalid_dataset_id"),
    "unicode digits": (with_key(f"{PREFIX}data٣/{MARKER}"), "invalid_dataset_id"),
    "space": (with_key(f"{PREFIX}my data/{MARKER}"), "invalid_dataset_id"),
    "leading dot": (with_key(f"{PREFIX}.hidden/{MARKER}"), "invalid_dataset_id"),
    "leading hyphen": (with_key(f"{PREFIX}-x/{MARKER}"), "invalid_dataset_id"),
    "newline": (with_key(f"{PREFIX}x\n/{MARKER}"), "invalid_dataset_id"),
    "tag-breaking characters": (with_key(f"{PREFIX}a;b*c/{MARKER}"), "invalid_dataset_id"),
}


@pytest.mark.parametrize(("event", "reason"), list(BAD_EVENTS.values()), ids=list(BAD_EVENTS))
def test_bad_input_is_ignored_with_one_warning(handler_module, stubbed_sagemaker, capsys, event, reason):
    result = handler_module.handler(event, CONTEXT)  # no response is stubbed: any SageMaker call would fail

    assert result == {"status": "ignored", "reason": reason}
    [line] = json_log_lines(capsys)
    assert line["level"] == "WARNING"
    assert line["message"] == "ignored event"
    assert line["reason"] == reason
    assert line["detail"]
    assert line["request_id"] == CONTEXT.aws_request_id


def test_url_encoded_key_is_logged_decoded_for_the_operator(handler_module, stubbed_sagemaker, capsys):
    handler_module.handler(with_key(f"{PREFIX}team%2Fdata/{MARKER}"), CONTEXT)

    [line] = json_log_lines(capsys)
    assert line["decoded_key"] == f"{PREFIX}team/data/{MARKER}"


def test_longest_dataset_id_is_accepted(handler_module, stubbed_sagemaker, event_pattern_module):
    dataset_id = "a" * event_pattern_module.MAX_DATASET_ID_LENGTH
    expect_no_executions(stubbed_sagemaker)
    stubbed_sagemaker.add_response("start_pipeline_execution", {"PipelineExecutionArn": EXECUTION_ARN})

    assert handler_module.handler(with_key(f"{PREFIX}{dataset_id}/{MARKER}"), CONTEXT)["status"] == "started"


# --- errors ------------------------------------------------------------------------------------------------

TRANSIENT = [
    ("ThrottlingException", 400),
    ("InternalFailure", 500),
    ("ServiceUnavailable", 503),
    ("ConflictException", 409),
    ("ResourceLimitExceeded", 400),
    ("SomethingNew", 502),
]
PERMANENT = [("ResourceNotFound", 400), ("ValidationException", 400), ("AccessDeniedException", 400)]


@pytest.mark.parametrize(("code", "status"), TRANSIENT + PERMANENT)
def test_sagemaker_errors_are_raised_for_retry_and_the_dlq(handler_module, stubbed_sagemaker, capsys, code, status):
    expect_no_executions(stubbed_sagemaker)
    stubbed_sagemaker.add_client_error("start_pipeline_execution", code, "boom", http_status_code=status)

    with pytest.raises(ClientError) as raised:
        handler_module.handler(marker_event(MARKER_KEY), CONTEXT)

    assert raised.value.response["Error"]["Code"] == code
    [line] = json_log_lines(capsys)
    transient = (code, status) in TRANSIENT
    assert line["level"] == ("WARNING" if transient else "ERROR")
    assert line["retryable"] is transient
    assert line["error_code"] == code
    assert line["dataset_id"] == DATASET_ID


def test_error_while_looking_for_duplicates_is_raised(handler_module, stubbed_sagemaker, capsys):
    stubbed_sagemaker.add_client_error("list_pipeline_executions", "ThrottlingException", "slow down", 400)

    with pytest.raises(ClientError, match="slow down"):
        handler_module.handler(marker_event(MARKER_KEY), CONTEXT)

    [line] = json_log_lines(capsys)
    assert (line["level"], line["retryable"]) == ("WARNING", True)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com"), True),
        (ReadTimeoutError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com"), True),
        (ParamValidationError(report="bad"), False),
        (KeyError("bug"), False),
    ],
)
def test_network_errors_are_transient(handler_module, error, transient):
    assert handler_module.is_transient(error) is transient


def test_client_is_created_once_with_standard_retries(handler_module):
    client = handler_module.sagemaker_client()

    assert handler_module.sagemaker_client() is client
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5, 20)


# --- configuration -----------------------------------------------------------------------------------------


def test_missing_configuration_fails_the_cold_start_with_one_message(load_handler, monkeypatch, capsys):
    for name in ("PIPELINE_NAME", "LANDING_BUCKET", "DATASET_PREFIX", "MARKER_NAME"):
        monkeypatch.delenv(name)

    with pytest.raises(RuntimeError, match="misconfigured") as raised:
        load_handler()

    assert type(raised.value).__name__ == "ConfigError"
    for name in ("PIPELINE_NAME", "LANDING_BUCKET", "DATASET_PREFIX", "MARKER_NAME"):
        assert f"{name} is not set" in str(raised.value)
    [line] = json_log_lines(capsys)
    assert (line["level"], line["message"]) == ("ERROR", "invalid configuration")


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("DATASET_PREFIX", "datasets", "dataset prefix"),
        ("DATASET_PREFIX", "/datasets/", "dataset prefix"),
        ("DATASET_PREFIX", "data sets/", "dataset prefix"),
        ("MARKER_NAME", "_SUCCESS/", "marker name"),
        ("MARKER_NAME", "*", "marker name"),
        ("LANDING_BUCKET", "Not_A_Bucket", "LANDING_BUCKET"),
        ("PIPELINE_NAME", "training pipeline", "PIPELINE_NAME"),
    ],
)
def test_invalid_configuration_is_named(load_handler, monkeypatch, name, value, complaint):
    monkeypatch.setenv(name, value)

    with pytest.raises(RuntimeError, match=complaint):
        load_handler()


def test_configuration_is_read_at_cold_start(load_handler, monkeypatch):
    module = load_handler()
    monkeypatch.setenv("PIPELINE_NAME", "changed-later")

    settings = module.SETTINGS
    assert (settings.pipeline_name, settings.landing_bucket) == (PIPELINE_NAME, LANDING_BUCKET)
    assert (settings.dataset_prefix, settings.marker_name) == (PREFIX, MARKER)


def test_ignored_events_do_not_create_a_client(handler_module: ModuleType, monkeypatch, capsys):
    def no_client(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a client was created for an ignored event")

    monkeypatch.setattr(handler_module.boto3, "client", no_client)

    assert handler_module.handler(with_key("elsewhere/x"), CONTEXT)["status"] == "ignored"
