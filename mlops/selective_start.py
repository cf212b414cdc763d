"""`mlops start PIPELINE --env E --from STEP | --steps A,B [--source ARN]`: SageMaker's selective execution.

The selected steps (`pipeline_defs.selection`, the rule local runs use too) run in a new execution; SageMaker takes
the outputs of the steps they need from the source execution: the pipeline's newest that succeeded, or `--source`.
Refused, before anything starts, when the source ran another definition than the deployed one (a deploy changed it
since): the selected steps would read outputs of other code. The new execution gets the source's parameters, with
`--experiment`, `--input-data-uri` and `--param` overriding them. Calls: ListPipelineExecutions (without --source),
DescribePipeline, DescribePipelineDefinitionForExecution, ListPipelineParametersForExecution.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlops.aws import call
from mlops.common import UsageError
from mlops.cost import paging
from pipeline_defs.selection import SelectionError, select


def newest_succeeded(sagemaker: Any, pipeline: str) -> str:
    """The ARN of the pipeline's newest execution that succeeded."""
    for summary in paging.items(
        sagemaker,
        "list_pipeline_executions",
        "PipelineExecutionSummaries",
        f"listing the executions of {pipeline}",
        PipelineName=pipeline,
        SortBy="CreationTime",
        SortOrder="Descending",
    ):
        if summary.get("PipelineExecutionStatus") == "Succeeded":
            return str(summary["PipelineExecutionArn"])
    raise UsageError(f"{pipeline} has no execution that succeeded to start from: pass --source ARN, or start it whole")


def selective_execution(
    sagemaker: Any, pipeline: str, *, from_step: str | None, steps: Sequence[str] | None, source: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(SelectiveExecutionConfig, the source's parameters {name: value}) for a selective start of `pipeline`."""
    source = source or newest_succeeded(sagemaker, pipeline)
    deployed = call(
        sagemaker.describe_pipeline,
        f"describing {pipeline}",
        f"pipeline {pipeline} is not deployed (cdk deploy the unit, or check --env)",
        PipelineName=pipeline,
    )
    ran = call(
        sagemaker.describe_pipeline_definition_for_execution,
        f"reading the definition {source} ran",
        f"no execution {source} (pass the ARN of an execution of {pipeline})",
        PipelineExecutionArn=source,
    )
    definition = json.loads(deployed["PipelineDefinition"])
    if json.loads(ran["PipelineDefinition"]) != definition:
        raise UsageError(
            f"{pipeline}'s definition changed since {source} ran (a deploy since): its outputs came from other code "
            "or settings; start the pipeline whole, or pass --source with an execution of the deployed definition"
        )
    try:
        selected = select(definition, from_step=from_step, steps=steps)
    except SelectionError as error:
        raise UsageError(str(error)) from None
    parameters = {
        parameter["Name"]: parameter["Value"]
        for parameter in paging.items(
            sagemaker,
            "list_pipeline_parameters_for_execution",
            "PipelineParameters",
            f"reading the parameters of {source}",
            PipelineExecutionArn=source,
        )
    }
    config = {"SourcePipelineExecutionArn": source, "SelectedSteps": [{"StepName": name} for name in selected]}
    return config, parameters
