"""Where a dataset lands and how its id looks: one definition for the CDK rule, the handler, `mlops dataset put`
and the tests.

Stdlib only and side-effect free. `lambda` is a Python keyword, so callers load this file by path
(`importlib.util.spec_from_file_location`); in the Lambda runtime it is a sibling module of `handler.py`.

Prefix and marker are restricted to characters that URL encoding leaves unchanged. S3 documents its
classic notifications as carrying URL-encoded keys ("red flower.jpg" -> "red+flower.jpg") and does not
say so for EventBridge events; with this restriction the pattern and the handler see the same key either way.
"""

from __future__ import annotations

import re

# One or more path segments of URL-safe characters, each followed by "/" (e.g. "datasets/" or "raw/churn/").
_PREFIX_PATTERN = re.compile(r"(?:[A-Za-z0-9._-]+/)+")
_MARKER_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
# The display name is `dataset-<id>-<8 hex>`, and SageMaker allows 82 characters: 8 + 64 + 9 = 81.
MAX_DATASET_ID_LENGTH = 64
# Letters, digits and . _ - only: valid in tag values, pipeline parameters and S3 URIs, and unchanged by URL
# encoding - so a key is the same whether or not the event carries it URL-encoded.
DATASET_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def dataset_id_problem(dataset_id: str) -> tuple[str, str] | None:
    """None for a valid dataset id, else (a stable reason code, what is wrong and what is allowed)."""
    if not dataset_id:
        return "empty_dataset_id", "the dataset id is empty: the marker is not inside a dataset folder"
    if "/" in dataset_id:
        return "nested_path", "the dataset id contains '/': a dataset is exactly one folder below the prefix"
    if len(dataset_id) > MAX_DATASET_ID_LENGTH:
        return "dataset_id_too_long", f"the dataset id has {len(dataset_id)} characters, over {MAX_DATASET_ID_LENGTH}"
    if not DATASET_ID_PATTERN.fullmatch(dataset_id):
        return (
            "invalid_dataset_id",
            "the dataset id must be letters, digits and . _ - starting with a letter or digit "
            "(URL-encoded and non-ASCII characters are not accepted)",
        )
    return None


def dataset_experiment_id(dataset_id: str) -> str:
    """The ExperimentId of a run on a dataset: every attempt on one dataset shares it, so cost reports group them.

    The prefix keeps dataset-triggered experiments apart from experiment ids operators choose by hand.
    """
    return f"dataset-{dataset_id}"


def validate_location(prefix: str, marker: str) -> None:
    """Raise ValueError, naming the fix, unless `prefix` and `marker` can delimit a dataset in every S3 event."""
    if not isinstance(prefix, str) or not _PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(
            f"dataset prefix {prefix!r} is invalid: use path segments of letters, digits and . _ - "
            "each ending with '/', e.g. 'datasets/'"
        )
    if not isinstance(marker, str) or not _MARKER_PATTERN.fullmatch(marker):
        raise ValueError(
            f"marker name {marker!r} is invalid: use one file name of letters, digits and . _ -, e.g. '_SUCCESS'"
        )


def marker_event_pattern(bucket_name: str, prefix: str, marker: str) -> dict[str, object]:
    """The pattern of `Object Created` events for `<prefix><anything>/<marker>` in `bucket_name`.

    `bucket_name` is not validated: in the CDK construct it is usually a token. The wildcard also matches
    nested or empty dataset ids (`<prefix>a/b/<marker>`, `<prefix>/<marker>`); the handler rejects those
    with a logged reason rather than letting them pass silently.
    """
    validate_location(prefix, marker)
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"wildcard": f"{prefix}*/{marker}"}]},
        },
    }
