"""`mlops report ARN --env E --html FILE`: the page of an execution in AWS, from the same reports, read from S3.

Its step outputs are found as the console finds them: ListPipelineExecutionSteps names each step's processing job (a
cached step names the job of the execution it reused, whose outputs it serves) and DescribeProcessingJob the S3 URI of
each output; the reports are read with GetObject. The caller needs sagemaker:DescribePipelineExecution,
ListPipelineExecutionSteps, ListPipelineParametersForExecution, DescribeProcessingJob (and ListPipelineExecutions for
--latest), s3:GetObject on the artifacts bucket and kms:Decrypt with its key.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.aws import AwsCallFailed, call
from mlops.common import UsageError
from mlops.cost import paging
from mlops.report.documents import Document, parse_document
from mlops.report.sources import REPORTED_STEPS, Execution, Reader

EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/([^/]+)/execution/([a-z0-9]+)")


def latest_execution(sagemaker: Any, pipeline: str) -> str:
    """The ARN of the pipeline's newest execution."""
    page = call(
        sagemaker.list_pipeline_executions,
        f"listing the executions of {pipeline}",
        f"pipeline {pipeline} is not deployed (cdk deploy the unit, or check --env)",
        PipelineName=pipeline,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = page.get("PipelineExecutionSummaries", [])
    if not summaries:
        raise UsageError(f"pipeline {pipeline} has no executions yet")
    return str(summaries[0]["PipelineExecutionArn"])


def aws_execution(sagemaker: Any, arn: str) -> Execution:
    """An execution in AWS: its status, parameters, steps and the S3 URI of each step's outputs."""
    match = EXECUTION_ARN.fullmatch(arn)
    if match is None:
        raise UsageError(
            f"{arn!r}: in AWS give the execution's ARN (arn:aws:sagemaker:<region>:<account>:pipeline/<name>/"
            "execution/<id>)"
        )
    pipeline, execution_id = match.groups()
    described = call(
        sagemaker.describe_pipeline_execution,
        f"describing {arn}",
        f"no pipeline execution {arn} in this region (check the ARN and --env)",
        PipelineExecutionArn=arn,
    )
    parameters = list(
        paging.items(
            sagemaker,
            "list_pipeline_parameters_for_execution",
            "PipelineParameters",
            f"reading the parameters of {arn}",
            PipelineExecutionArn=arn,
        )
    )
    steps = paging.execution_steps(sagemaker, arn, SortOrder="Ascending")
    status = str(described.get("PipelineExecutionStatus", "?"))
    started = described.get("CreationTime")
    facts = [
        ("pipeline", pipeline),
        ("execution", arn),
        ("status", status),
        ("started", f"{started:%Y-%m-%dT%H:%M:%S%z}" if started else "-"),
        ("parameters", ", ".join(f"{p.get('Name')}={p.get('Value')}" for p in parameters)),
    ]
    if described.get("FailureReason"):
        facts.append(("failure", str(described["FailureReason"])))
    return Execution(
        name=execution_id,
        title=f"{pipeline} execution {execution_id}: {status}",
        facts=facts,
        steps=[_step_row(step) for step in steps],
        outputs={step["StepName"]: _outputs(sagemaker, step) for step in steps},
        failure_reason=described.get("FailureReason"),
    )


def _step_row(step: dict[str, Any]) -> tuple[str, str, str, str]:
    source = (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
    note = f"cache hit: outputs of execution {source.rsplit('/', 1)[-1]}" if source else step.get("FailureReason", "")
    kind = next(iter(step.get("Metadata") or {}), "-")
    return str(step["StepName"]), kind, str(step.get("StepStatus", "?")), str(note)


def _outputs(sagemaker: Any, step: dict[str, Any]) -> dict[str, str]:
    """{output name: S3 URI} of a reported step's processing job (the reused job for a cache hit); {} for others."""
    job_arn = (step.get("Metadata") or {}).get("ProcessingJob", {}).get("Arn")
    if not job_arn or step.get("StepStatus") != "Succeeded" or step["StepName"] not in REPORTED_STEPS:
        return {}
    job = job_arn.rsplit("/", 1)[-1]
    what = f"describing processing job {job} (step {step['StepName']})"
    described = call(sagemaker.describe_processing_job, what, ProcessingJobName=job)
    outputs = described.get("ProcessingOutputConfig", {}).get("Outputs", [])
    return {output["OutputName"]: output["S3Output"]["S3Uri"] for output in outputs if "S3Output" in output}


def s3_reader(s3: Any) -> Reader:
    """Reads a JSON report from S3 (GetObject); None when there is no such object."""

    def read(uri: str) -> Document | None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise AwsCallFailed(f"reading {uri} failed: {error}") from None
        except BotoCoreError as error:
            raise AwsCallFailed(f"reading {uri} failed: {error}") from None
        return parse_document(body, uri)

    return read
