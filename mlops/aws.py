"""What the commands that call AWS share: clients, a deployed unit's stack outputs, one-line errors."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.common import UsageError


class AwsCallFailed(Exception):
    """An AWS call failed for a reason other than bad input: one `error:` line, exit code 1."""


def client(service: str, config: EnvironmentConfig) -> Any:
    """A boto3 client in the unit's region (boto3 is imported here, when a command needs AWS)."""
    import boto3

    return boto3.client(service, region_name=config.region)


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
