"""What the commands that call AWS share: clients, a deployed unit's stack outputs, one-line errors."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.common import UsageError


class AwsCallFailed(Exception):
    """An AWS call failed for a reason other than bad input: one `error:` line, exit code 1."""


class NoCredentials(AwsCallFailed):
    """The usual credential chain found nothing: one line naming how to set credentials up (exit code 1)."""


# Without credentials botocore fails at the first request, deep inside whatever the command was doing.
NO_CREDENTIALS = (
    "no AWS credentials: configure them (`aws configure`, `aws sso login` with AWS_PROFILE=<profile>, or "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and run the command again"
)


def client(service: str, config: EnvironmentConfig) -> Any:
    """A boto3 client in the unit's region (boto3 is imported here, when a command needs AWS)."""
    import boto3

    require_credentials()
    return boto3.client(service, region_name=config.region)


def require_credentials() -> None:
    """NoCredentials when the usual credential chain finds nothing, before any AWS call is made.

    boto3's default session resolves the chain once (and again while it finds nothing), as its clients would."""
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    if boto3.DEFAULT_SESSION is None or boto3.DEFAULT_SESSION.get_credentials() is None:
        raise NoCredentials(NO_CREDENTIALS)


def stack_outputs(cloudformation: Any, config: EnvironmentConfig, stack: str) -> dict[str, str]:
    """{output key: value} of the deployed stack `<prefix>-<stack>` (e.g. churn-dev-Orchestration)."""
    stack_name = f"{config.name_prefix}-{stack}"
    try:
        described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            raise UsageError(
                f"stack {stack_name} is not deployed in {config.region} (deploy it: cdk deploy "
                f"'{config.name_prefix}/*')"
            ) from None
        raise AwsCallFailed(f"reading the outputs of {stack_name} failed: {error}") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"reading the outputs of {stack_name} failed: {error}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in described[0].get("Outputs", [])}


# How a read of something that does not exist fails (SageMaker answers several of these).
_NOT_FOUND = ("ResourceNotFound", "ValidationException", "does not exist")


def call(operation: Any, what: str, missing: str | None = None, **request: Any) -> dict[str, Any]:
    """One AWS call; `missing`: the usage error when what it reads does not exist (else any error fails, exit 1)."""
    try:
        answer: dict[str, Any] = operation(**request)
    except ClientError as error:
        if missing and any(word in str(error) for word in _NOT_FOUND):
            raise UsageError(missing) from None
        raise AwsCallFailed(f"{what} failed: {error}") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"{what} failed: {error}") from None
    return answer
