"""Every page of a paginated AWS list call through botocore's own paginator, with AWS errors turned into one line that
says what was being done."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.aws import AwsCallFailed


def items(
    client: Any,
    operation: str,
    key: str,
    what: str,
    *,
    explain: Callable[[ClientError], str] | None = None,
    **request: Any,
) -> Iterator[Any]:
    """The items under `key` of every page of `client.<operation>(**request)` (botocore's paginator follows the
    operation's own token); `explain` words a ClientError for the operator."""
    try:
        for page in client.get_paginator(operation).paginate(**request):
            yield from page.get(key, [])
    except ClientError as error:
        raise AwsCallFailed(explain(error) if explain else f"{what} failed: {error}") from None
    except BotoCoreError as error:  # also PaginationError: a service that repeats its token
        raise AwsCallFailed(f"{what} failed: {error}") from None


def execution_steps(sagemaker: Any, arn: str, **request: Any) -> list[dict[str, Any]]:
    """Every step of a pipeline execution (ListPipelineExecutionSteps, all pages; `request`: e.g. SortOrder)."""
    return list(
        items(
            sagemaker,
            "list_pipeline_execution_steps",
            "PipelineExecutionSteps",
            f"listing the steps of {arn}",
            PipelineExecutionArn=arn,
            **request,
        )
    )
