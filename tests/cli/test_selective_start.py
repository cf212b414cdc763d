"""`mlops start PIPELINE --env E --from STEP` (SageMaker's selective execution), against botocore Stubber: the exact
requests, on the dev unit's synthesized training definition standing in for the deployed one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mlops import start as start_command
from pipeline_defs.local import load_assembly
from tests.cli.conftest import cli, one_error_line, stubbed_clients

PIPELINE = "churn-dev-training"
EXECUTIONS = f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution"
TOKEN = uuid.UUID("12345678-1234-5678-1234-567812345678")
SOURCE_PARAMETERS = [
    {"Name": "ExperimentId", "Value": "exp-7"},
    {"Name": "InputDataUri", "Value": "s3://landing/datasets/d1/"},
    {"Name": "MaxRegression", "Value": "0.02"},
]


@pytest.fixture
def deployed(assembly_dir: Path) -> str:
    """The training definition as DescribePipeline returns it (JSON text)."""
    return json.dumps(load_assembly(assembly_dir, "eu-west-1").definitions[PIPELINE])


@pytest.fixture
def aws(monkeypatch, aws_env):
    monkeypatch.setattr(start_command.uuid, "uuid4", lambda: TOKEN)
    with stubbed_clients(monkeypatch, start_command, "sagemaker") as stubbers:
        yield stubbers["sagemaker"]


def expect_source(aws, deployed: str, ran: str, source: str) -> None:
    aws.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": f"{EXECUTIONS}/running", "PipelineExecutionStatus": "Executing"},
                {"PipelineExecutionArn": f"{EXECUTIONS}/failed", "PipelineExecutionStatus": "Failed"},
                {"PipelineExecutionArn": source, "PipelineExecutionStatus": "Succeeded"},
            ]
        },
        {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending"},
    )
    aws.add_response("describe_pipeline", {"PipelineDefinition": deployed}, {"PipelineName": PIPELINE})
    aws.add_response(
        "describe_pipeline_definition_for_execution", {"PipelineDefinition": ran}, {"PipelineExecutionArn": source}
    )


def test_from_evaluate_starts_the_back_half_on_the_newest_succeeded_execution(aws, deployed, capsys) -> None:
    source = f"{EXECUTIONS}/good"
    expect_source(aws, deployed, deployed, source)
    aws.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": SOURCE_PARAMETERS},
        {"PipelineExecutionArn": source},
    )
    started = f"{EXECUTIONS}/new"
    request = {
        "PipelineName": PIPELINE,
        "PipelineExecutionDisplayName": "exp-7-12345678",
        "PipelineExecutionDescription": "Started with mlops start, experiment exp-7",
        # The source's parameters, those given on the command line overriding them.
        "PipelineParameters": [*SOURCE_PARAMETERS[:2], {"Name": "MaxRegression", "Value": "0.05"}],
        "ClientRequestToken": str(TOKEN),
        "SelectiveExecutionConfig": {
            "SourcePipelineExecutionArn": source,
            # The gate, registration and the Fail step of the gate's other branch: every step after Evaluate.
            "SelectedSteps": [
                {"StepName": name} for name in ("Evaluate", "CandidateNotWorse", "RegisterModel", "RejectCandidate")
            ],
        },
    }
    aws.add_response("start_pipeline_execution", {"PipelineExecutionArn": started}, request)

    code, out, err = cli(
        capsys, "start", "training", "--from", "Evaluate", "--env", "dev", "--param", "MaxRegression=0.05"
    )

    assert code == 0, err
    assert out.splitlines()[0] == f"started {PIPELINE} (exp-7-12345678): {started}"


def test_a_source_that_ran_another_definition_is_refused_before_anything_starts(aws, deployed, capsys) -> None:
    source = f"{EXECUTIONS}/old"
    ran = json.loads(deployed)
    ran["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.4xlarge"
    aws.add_response("describe_pipeline", {"PipelineDefinition": deployed}, {"PipelineName": PIPELINE})
    aws.add_response(
        "describe_pipeline_definition_for_execution",
        {"PipelineDefinition": json.dumps(ran)},
        {"PipelineExecutionArn": source},
    )

    code, _, err = cli(capsys, "start", "training", "--env", "dev", "--steps", "Evaluate", "--source", source)

    assert code == 2
    assert f"{PIPELINE}'s definition changed since {source} ran (a deploy since)" in one_error_line(err)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--from", "Evaluat"), "the pipeline has no step 'Evaluat' (its steps: "),
        (("--steps", "Train,CandidateNotWorse"), "step Evaluate lies between selected steps: select it too"),
    ],
)
def test_an_unknown_or_unrunnable_selection_is_one_line(aws, deployed, capsys, arguments, message) -> None:
    expect_source(aws, deployed, deployed, f"{EXECUTIONS}/good")
    code, _, err = cli(capsys, "start", "training", "--env", "dev", *arguments)
    assert code == 2 and message in one_error_line(err)
