"""The EventBridge pattern of the dataset marker: one definition for the CDK rule, the handler and the tests.

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
