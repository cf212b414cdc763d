"""The SageMaker reads behind a cost estimate: a unit's executions, their experiment ids, each step's job, the endpoint.

Every function takes the client it calls (the actions in mlops/cost/command.py make it) and hands what it read to the
pure cost functions of mlops/cost/estimate.py; AWS errors are one line (AwsCallFailed, exit 1), a pipeline that is not
deployed a usage error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed
from mlops.common import UsageError, pipeline_name
from mlops.cost import estimate, paging
from mlops.cost.estimate import EndpointCost, ExecutionCost, JobStep, MalformedAnswer
from mlops.cost.prices import PriceSnapshot
from pipeline_defs.contract import DEFAULT_EXPERIMENT_ID, Parameter

_ACTIVE_STEPS = ("Starting", "Executing", "Stopping")
# The pricing of each job kind (estimate.JOB_STEP_KINDS).
JOB_COSTS = {
    "Training": estimate.training_cost,
    "Processing": estimate.processing_cost,
    "Transform": estimate.transform_cost,
}


def list_executions(sagemaker: Any, pipeline: str, since: datetime) -> list[dict[str, Any]]:
    try:
        return list(
            paging.items(
                sagemaker,
                "list_pipeline_executions",
                "PipelineExecutionSummaries",
                f"listing the executions of {pipeline}",
                PipelineName=pipeline,
                CreatedAfter=since,
                SortBy="CreationTime",
                SortOrder="Descending",
            )
        )
    except AwsCallFailed as error:
        if "ResourceNotFound" in str(error) or "does not exist" in str(error):
            raise UsageError(f"pipeline {pipeline} is not deployed (cdk deploy the unit, or check --env)") from None
        raise


def experiment_of(sagemaker: Any, arn: str) -> str:
    parameters = paging.items(
        sagemaker,
        "list_pipeline_parameters_for_execution",
        "PipelineParameters",
        f"reading the parameters of {arn}",
        PipelineExecutionArn=arn,
    )
    # A run started without the parameter ran (and tagged its jobs) with the declared default.
    return next(
        (p.get("Value", "") for p in parameters if p.get("Name") == Parameter.EXPERIMENT_ID), DEFAULT_EXPERIMENT_ID
    )


def describe_job(sagemaker: Any, job: JobStep) -> dict[str, Any]:
    try:
        if job.kind == "Training":
            answer: dict[str, Any] = sagemaker.describe_training_job(TrainingJobName=job.job_name)
        elif job.kind == "Transform":
            answer = sagemaker.describe_transform_job(TransformJobName=job.job_name)
        else:
            answer = sagemaker.describe_processing_job(ProcessingJobName=job.job_name)
    except (BotoCoreError, ClientError) as error:
        raise AwsCallFailed(
            f"describing {job.kind.lower()} job {job.job_name} (step {job.step}) failed: {error}"
        ) from None
    return answer


def estimate_execution(
    sagemaker: Any, summary: dict[str, Any], pipeline: str, experiment: str, prices: PriceSnapshot, now: datetime
) -> ExecutionCost:
    """Price every Training/Processing/Transform step of one execution (reused steps need no describe call)."""
    arn = summary["PipelineExecutionArn"]
    steps = paging.execution_steps(sagemaker, arn)
    costs = []
    for job in estimate.job_steps(steps):
        if job.reused_from:
            costs.append(estimate.reused_step(job))
            continue
        described = describe_job(sagemaker, job)
        costs.append(JOB_COSTS[job.kind](job.step, described, prices, now))
    # Billing lags behind the latest step end; a step still going counts as now.
    ends = [s.get("EndTime") or (now if s.get("StepStatus") in _ACTIVE_STEPS else None) for s in steps]
    return ExecutionCost(
        arn=arn,
        pipeline=pipeline,
        experiment_id=experiment,
        status=str(summary.get("PipelineExecutionStatus", "?")),
        started=summary.get("StartTime") or now,
        last_activity=max([end for end in ends if end is not None], default=summary.get("StartTime") or now),
        steps=tuple(costs),
    )


def endpoint_estimate(
    sagemaker: Any, config: EnvironmentConfig, prices: PriceSnapshot, since: datetime, now: datetime
) -> list[EndpointCost]:
    """The unit's endpoint (if deployed): its variants' instance-hours in the window."""
    name = config.endpoint_name
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if "Could not find endpoint" in str(error):
            return []
        raise AwsCallFailed(f"describing endpoint {name} failed: {error}") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"describing endpoint {name} failed: {error}") from None
    config_name = endpoint.get("EndpointConfigName")
    if not config_name:
        raise MalformedAnswer(f"endpoint {name}: DescribeEndpoint has no EndpointConfigName")
    try:
        endpoint_config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except (BotoCoreError, ClientError) as error:
        raise AwsCallFailed(f"describing endpoint config {config_name} failed: {error}") from None
    return estimate.endpoint_costs(endpoint, endpoint_config, prices, since, now)


def executions_since(
    sagemaker: Any, config: EnvironmentConfig, pipelines: Sequence[str], since: datetime, experiment: str | None
) -> list[tuple[dict[str, Any], str, str]]:
    """(summary, pipeline name, experiment id) of every execution since `since` (of `experiment`, if given)."""
    found = []
    for pipeline in pipelines:
        name = pipeline_name(config, pipeline)
        for summary in list_executions(sagemaker, name, since):
            experiment_id = experiment_of(sagemaker, summary["PipelineExecutionArn"])
            if experiment is None or experiment_id == experiment:
                found.append((summary, name, experiment_id))
    return found
