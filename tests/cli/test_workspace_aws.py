"""The notebook API on an environment (`Workspace.aws`): exact SageMaker and S3 requests (botocore Stubber), no network.

Its `evaluate` on an AWS execution is checked against the local path on the demo's state in tests/test_readme.py
(`check_the_experiments`), where a demo run exists to serve the Evaluate job's inputs from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlops import registry, step_load_aws, workspace_aws
from mlops.common import UsageError
from mlops.workspace import Workspace
from tests.cli.conftest import expect_describe, expect_object, stubbed_clients
from tests.cli.test_experiments import ARN, EVALUATE_JOB, JOBS, PIPELINE, ROOT, _objects

PREPROCESS_JOB = {
    **EVALUATE_JOB,
    "ProcessingJobName": "pipelines-abc123-Preprocess",
    "ProcessingOutputConfig": {
        "Outputs": [
            {
                "OutputName": "test",
                "S3Output": {
                    "S3Uri": "s3://artifacts/run/Preprocess/test",
                    "LocalPath": f"{ROOT}/output/test",
                    "S3UploadMode": "EndOfJob",
                },
            }
        ]
    },
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> Any:
    """Stubbers for the clients the workspace, the step loader and the registry make (the same two clients)."""
    with stubbed_clients(monkeypatch, workspace_aws, "sagemaker", "s3") as stubbers:
        for module in (step_load_aws, registry):
            monkeypatch.setattr(module, "client", workspace_aws.client)
        yield stubbers


def _summary(execution: str, status: str, day: int) -> dict[str, Any]:
    return {
        "PipelineExecutionArn": f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/{execution}",
        "PipelineExecutionStatus": status,
        "StartTime": datetime(2026, 12, day, tzinfo=UTC),
    }


def test_executions_are_every_page_of_the_pipelines_list_newest_first(aws: Any, tmp_path: Path) -> None:
    request = {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending"}
    pages = [[_summary("c3", "Executing", 3), _summary("b2", "Failed", 2)], [_summary("a1", "Succeeded", 1)]]
    aws["sagemaker"].add_response(
        "list_pipeline_executions", {"PipelineExecutionSummaries": pages[0], "NextToken": "page-2"}, request
    )
    aws["sagemaker"].add_response(
        "list_pipeline_executions", {"PipelineExecutionSummaries": pages[1]}, {**request, "NextToken": "page-2"}
    )
    listed = Workspace.aws("dev", cache_dir=tmp_path / "cache").executions()
    assert [(entry["execution_id"].rsplit("/", 1)[-1], entry["status"]) for entry in listed] == [
        ("c3", "Executing"),
        ("b2", "Failed"),
        ("a1", "Succeeded"),
    ]


def test_a_steps_output_is_downloaded_once_into_the_cache_and_read_as_a_frame(aws: Any, tmp_path: Path) -> None:
    sagemaker, s3 = aws["sagemaker"], aws["s3"]
    sagemaker.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Succeeded"},
        {"PipelineExecutionArn": ARN},
    )
    steps = [
        {"StepName": "Preprocess", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": f"{JOBS}/p"}}},
    ]
    sagemaker.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps},
        {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"},
    )
    sagemaker.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "ExperimentId", "Value": "exp-1"}]},
        {"PipelineExecutionArn": ARN},
    )
    sagemaker.add_response("describe_processing_job", PREPROCESS_JOB, {"ProcessingJobName": "p"})
    files = {
        "run/Preprocess/test/part-0.csv": b"tenure,churned\n3,1\n",
        "run/Preprocess/test/part-1.csv": b"tenure,churned\n40,0\n",
    }
    _objects(s3, "s3://artifacts/run/Preprocess/test", files)
    for key, body in files.items():
        expect_object(s3, f"s3://artifacts/{key}", body)

    ws = Workspace.aws("dev", cache_dir=tmp_path / "cache")
    run = ws.execution(ARN)
    assert (run.id, run.parameters, run.steps) == (ARN, {"ExperimentId": "exp-1"}, ["Preprocess"])
    frame = run.frame("Preprocess", "test")
    assert frame.to_dict("list") == {"tenure": [3, 40], "churned": [1, 0]}
    assert run.frame("Preprocess", "test").equals(frame)  # the second read: no call (the Stubber has none left)
    assert (tmp_path / "cache" / "abc123" / "Preprocess" / "test" / "part-1.csv").is_file()


def test_a_registered_version_is_described_and_its_model_downloaded(aws: Any, tmp_path: Path) -> None:
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn-dev-models/3"
    model = "s3://artifacts/run/Train/output/model.tar.gz"
    described = {
        "ModelPackageName": "churn-dev-models",
        "ModelPackageArn": arn,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
        "InferenceSpecification": {
            "Containers": [{"Image": EVALUATE_JOB["AppSpecification"]["ImageUri"], "ModelDataUrl": model}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    }
    expect_describe(aws, described)
    expect_describe(aws, described)
    aws["s3"].add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "run/Train/output/model.tar.gz", "Size": 5}]},
        {"Bucket": "artifacts", "Prefix": "run/Train/output/model.tar.gz"},
    )
    expect_object(aws["s3"], model, b"model")
    ws = Workspace.aws("dev", cache_dir=tmp_path / "cache")
    assert ws.package(3)["ModelPackageArn"] == arn
    assert ws.model_path(3).read_bytes() == b"model"


def test_an_unknown_execution_is_a_usage_error_and_caches_nothing(aws: Any, tmp_path: Path) -> None:
    aws["sagemaker"].add_client_error(
        "describe_pipeline_execution",
        "ValidationException",
        "Pipeline execution does not exist",
        expected_params={"PipelineExecutionArn": ARN},
    )
    # Bad input: a usage error (one line, exit code 2 in a command), not a failed call.
    with pytest.raises(UsageError, match=f"no pipeline execution {ARN} in eu-west-1"):
        Workspace.aws("dev", cache_dir=tmp_path / "cache").execution(ARN)
    assert list((tmp_path / "cache").iterdir()) == []


def evaluate_through_aws(state_dir: Path, assembly: Path, execution_id: str, candidate: Path, cache: Path) -> Any:
    """`Workspace.aws(...).execution(ARN).evaluate(candidate)` on a local training execution served as AWS would serve
    it: SageMaker's answers (botocore Stubber, exact requests) are the execution's record - the local engine records a
    job's description in DescribeProcessingJob's fields - and its Evaluate job's inputs are in S3 (moto), copied from
    the work dir the step ran in. tests/test_readme.py runs it on the demo's state, the one place a run exists."""
    import boto3
    from botocore.stub import Stubber
    from moto import mock_aws

    from config import load_config
    from pipeline_defs.local.s3 import split_uri

    config = load_config("dev")
    record = json.loads((state_dir / "executions" / PIPELINE / execution_id / "execution.json").read_text())
    arn = f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/{execution_id}"
    step = next(entry for entry in record["steps"] if entry["name"] == "Evaluate")
    ran_in = step.get("cache_source") or step.get("reused_from") or execution_id
    job = f"pipelines-{ran_in}-Evaluate"
    described = {
        **{key: value for key, value in step["properties"].items() if key != "Tags"},  # CreateProcessingJob's only
        "ProcessingJobName": job,
        "ProcessingJobArn": f"{JOBS}/{job}",
        "ProcessingJobStatus": "Completed",
        "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
    }
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": config.region}
    with mock_aws():
        sagemaker, s3 = boto3.client("sagemaker", **keys), boto3.client("s3", **keys)
        work = state_dir / "executions" / PIPELINE / ran_in / "steps" / "Evaluate"
        for given in step["properties"]["ProcessingInputs"]:
            bucket, prefix = split_uri(given["S3Input"]["S3Uri"])
            if bucket not in {entry["Name"] for entry in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": config.region})
            folder = work / "input" / given["InputName"]
            for path in sorted(folder.rglob("*")):
                if path.is_file():  # a single object (the input names it) keeps its key; a prefix's lie under it
                    single = prefix.rsplit("/", 1)[-1] == path.name
                    key = prefix if single else f"{prefix.rstrip('/')}/{path.relative_to(folder)}"
                    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        stubber = Stubber(sagemaker)
        steps = [
            {"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": f"{JOBS}/{job}"}}}
        ]
        answer = {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Succeeded"}
        stubber.add_response("describe_pipeline_execution", answer, {"PipelineExecutionArn": arn})
        listed = {"PipelineExecutionSteps": steps}
        stubber.add_response(
            "list_pipeline_execution_steps", listed, {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
        )
        parameters = [{"Name": name, "Value": str(value)} for name, value in record["parameters"].items()]
        stubber.add_response(
            "list_pipeline_parameters_for_execution", {"PipelineParameters": parameters}, {"PipelineExecutionArn": arn}
        )
        stubber.add_response("list_pipeline_execution_steps", listed, {"PipelineExecutionArn": arn})
        stubber.add_response("describe_processing_job", described, {"ProcessingJobName": job})
        clients = {"sagemaker": sagemaker, "s3": s3}
        with pytest.MonkeyPatch.context() as patch, stubber:
            for module in (workspace_aws, step_load_aws, registry):
                patch.setattr(module, "client", lambda service, _config: clients[service])
            judged = Workspace.aws("dev", cache_dir=cache, assembly=assembly).execution(arn).evaluate(candidate)
            stubber.assert_no_pending_responses()
    return judged
