"""`mlops start training|evaluation --env E --experiment ID [--param NAME=VALUE]`: start a deployed pipeline in AWS.

With `--from STEP` / `--steps A,B` (and `--source ARN`) only those steps run, on a source execution's outputs
(`mlops.selective_start`)."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client
from mlops.common import UsageError, parse_parameters, pipeline_name
from mlops.selective_start import selective_execution
from pipeline_defs import contract
from pipeline_defs.contract import Parameter

_DISPLAY_NAME_LIMIT = 82


def checked_parameters(items: list[str]) -> list[dict[str, str]]:
    """`--param NAME=VALUE` items as PipelineParameters, each checked by its contract rule (numbers as numbers)."""
    parameters = []
    for name, value in parse_parameters(items).items():
        if name in (Parameter.EXPERIMENT_ID, Parameter.INPUT_DATA_URI):
            raise UsageError(
                f"--param {name}: use --{'experiment' if name == Parameter.EXPERIMENT_ID else 'input-data-uri'}"
            )
        try:
            typed: object = float(value)
        except ValueError:
            typed = value
        try:
            checked = contract.checked_parameter(name, typed)
        except ValueError as error:
            raise UsageError(f"--param {error}") from None
        parameters.append({"Name": name, "Value": checked if isinstance(checked, str) else value})
    return parameters


def start_request(
    config: EnvironmentConfig,
    pipeline: str,
    experiment_id: str | None,
    input_data_uri: str | None,
    token: str,
    extra: list[str] | None = None,
    inherited: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The StartPipelineExecution request for a deployed pipeline (the token makes a retried call idempotent).

    `inherited`: a selective run's source parameters ({name: value}), which the given ones override."""
    values = dict(inherited or {})
    experiment_id = experiment_id or values.get(Parameter.EXPERIMENT_ID.value)
    if experiment_id is None:
        raise UsageError("--experiment ID is required: it tags every job and names the run's output path")
    try:
        experiment_id = contract.experiment_id(experiment_id)
    except ValueError as error:
        raise UsageError(f"--experiment {error}") from None
    if input_data_uri is not None:  # the one rule of `mlops run` and the trigger: a folder, ending with "/"
        try:
            input_data_uri = contract.input_data_uri(input_data_uri)
        except ValueError as error:
            raise UsageError(f"--input-data-uri {error}") from None
    if pipeline == "training" and input_data_uri is None and Parameter.INPUT_DATA_URI.value not in values:
        raise UsageError("the training pipeline needs --input-data-uri s3://<landing bucket>/datasets/<dataset-id>/")
    values[Parameter.EXPERIMENT_ID.value] = experiment_id
    if input_data_uri is not None:
        values[Parameter.INPUT_DATA_URI.value] = input_data_uri
    values |= {parameter["Name"]: parameter["Value"] for parameter in checked_parameters(extra or [])}
    parameters = [{"Name": name, "Value": value} for name, value in values.items()]
    display_name = re.sub(r"[^A-Za-z0-9-]", "-", f"{experiment_id}-{token[:8]}")
    return {
        "PipelineName": pipeline_name(config, pipeline),
        "PipelineExecutionDisplayName": display_name[:_DISPLAY_NAME_LIMIT],
        "PipelineExecutionDescription": f"Started with mlops start, experiment {experiment_id}",
        "PipelineParameters": parameters,
        "ClientRequestToken": token,
    }


def command_start(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    token = str(uuid.uuid4())
    selective, inherited = None, None
    if args.from_step is not None or args.steps is not None:
        selective, inherited = selective_execution(
            client("sagemaker", config),
            pipeline_name(config, args.pipeline),
            from_step=args.from_step,
            steps=args.steps,
            source=args.source,
        )
    elif args.source is not None:
        raise UsageError("--source names the execution a selective run starts from: add --from STEP or --steps A,B")
    request = start_request(config, args.pipeline, args.experiment, args.input_data_uri, token, args.param, inherited)
    if selective is not None:
        request["SelectiveExecutionConfig"] = selective
    try:
        response = client("sagemaker", config).start_pipeline_execution(**request)
    except (BotoCoreError, ClientError) as error:
        raise AwsCallFailed(f"starting {request['PipelineName']} failed: {error}") from None
    arn = response["PipelineExecutionArn"]
    if args.json:
        print(json.dumps({"PipelineExecutionArn": arn, "request": request}, indent=2))
    else:
        print(f"started {request['PipelineName']} ({request['PipelineExecutionDisplayName']}): {arn}")
        print(f"  follow it: aws sagemaker describe-pipeline-execution --pipeline-execution-arn {arn}")
    return 0
