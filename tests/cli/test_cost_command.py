"""`mlops cost` end to end against botocore Stubber: exact requests, and dollars recomputed by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from mlops.cost import command, reads
from tests.cli.conftest import cli as run_mlops
from tests.cli.conftest import stubbed_clients

ACCOUNT = "111111111111"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TRAINING = "churn-dev-training"
EVALUATION = "churn-dev-evaluation"
SCORING = "churn-dev-scoring"
# Round prices make the hand arithmetic below readable: $0.36/h = $0.0001 a second.
PRICES = {
    "region": "eu-west-1",
    "publicationDate": "2026-11-01",
    "source": "test figures",
    "instanceHour": {
        "Training": {"ml.m5.large": 0.36},
        "Processing": {"ml.m5.large": 0.18},
        "Hosting": {"ml.m5.large": 0.15},
        "Transform": {"ml.m5.xlarge": 0.72},
    },
    "storageGbMonth": {"Training": 0.146, "Processing": 0.073, "Hosting": 0.146},
}


def execution_arn(pipeline: str, execution_id: str) -> str:
    return f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:pipeline/{pipeline}/execution/{execution_id}"


def job_arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:{kind}-job/{name}"


@pytest.fixture
def aws(aws_env, tmp_path, monkeypatch):
    """Stubbed sagemaker and ce clients handed to the command; the test price snapshot in a folder of its own."""
    (tmp_path / "prices").mkdir()
    (tmp_path / "prices" / "eu-west-1.json").write_text(json.dumps(PRICES))
    monkeypatch.setattr(command, "utc_now", lambda: NOW)
    with stubbed_clients(monkeypatch, command, "sagemaker", "ce") as stubbers:
        yield stubbers


def cli(capsys, tmp_path, *argv):
    """`mlops cost <argv>` with the test's price snapshot and state dir."""
    folders = ["--prices-dir", str(tmp_path / "prices"), "--state-dir", str(tmp_path / "state")]
    return run_mlops(capsys, "cost", *argv, *folders)


def expect_parameters(sm: Stubber, arn: str, experiment: str) -> None:
    sm.add_response(
        "list_pipeline_parameters_for_execution",
        {
            "PipelineParameters": [
                {"Name": "InputDataUri", "Value": "s3://x/"},
                {"Name": "ExperimentId", "Value": experiment},
            ]
        },
        {"PipelineExecutionArn": arn},
    )


def expect_training_run(sm: Stubber, arn: str, prefix: str = "a") -> None:
    """A training execution listed on two pages: Preprocess (1 x ml.m5.large, 600 s, 30 GB), Train (2 instances, spot:
    900 billable of 1000 s, 10 GB), Baseline served from cache, Evaluate failed after 120 s (30 GB), a condition."""
    steps = [
        {
            "StepName": "Preprocess",
            "StepStatus": "Succeeded",
            "EndTime": T0 + timedelta(seconds=700),
            "Metadata": {"ProcessingJob": {"Arn": job_arn("processing", f"{prefix}-preprocess")}},
        },
        {
            "StepName": "Train",
            "StepStatus": "Succeeded",
            "EndTime": T0 + timedelta(seconds=1800),
            "Metadata": {"TrainingJob": {"Arn": job_arn("training", f"{prefix}-train")}},
        },
    ]
    more = [
        {
            "StepName": "Baseline",
            "StepStatus": "Succeeded",
            "EndTime": T0 + timedelta(seconds=1810),
            "CacheHitResult": {"SourcePipelineExecutionArn": execution_arn(TRAINING, "first")},
            "Metadata": {"ProcessingJob": {"Arn": job_arn("processing", "first-baseline")}},
        },
        {
            "StepName": "Evaluate",
            "StepStatus": "Failed",
            "EndTime": T0 + timedelta(seconds=2000),
            "Metadata": {"ProcessingJob": {"Arn": job_arn("processing", f"{prefix}-evaluate")}},
        },
        {"StepName": "CheckScore", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
    ]
    sm.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps, "NextToken": "more"},
        {"PipelineExecutionArn": arn},
    )
    sm.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": more},
        {"PipelineExecutionArn": arn, "NextToken": "more"},
    )
    sm.add_response(
        "describe_processing_job",
        processing(f"{prefix}-preprocess", "Completed", 600),
        {"ProcessingJobName": f"{prefix}-preprocess"},
    )
    sm.add_response(
        "describe_training_job",
        {
            "TrainingJobName": f"{prefix}-train",
            "TrainingJobArn": job_arn("training", f"{prefix}-train"),
            "ModelArtifacts": {"S3ModelArtifacts": "s3://a/model.tar.gz"},
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "image"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": T0,
            "TrainingStartTime": T0 + timedelta(seconds=700),
            "TrainingEndTime": T0 + timedelta(seconds=1700),
            "EnableManagedSpotTraining": True,
            "TrainingTimeInSeconds": 1000,
            "BillableTimeInSeconds": 900,
        },
        {"TrainingJobName": f"{prefix}-train"},
    )
    sm.add_response(
        "describe_processing_job",
        processing(f"{prefix}-evaluate", "Failed", 120),
        {"ProcessingJobName": f"{prefix}-evaluate"},
    )


def processing(name: str, status: str, seconds: int) -> dict:
    return {
        "ProcessingJobName": name,
        "ProcessingJobArn": job_arn("processing", name),
        "ProcessingJobStatus": status,
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "AppSpecification": {"ImageUri": "image"},
        "CreationTime": T0,
        "ProcessingStartTime": T0 + timedelta(seconds=100),
        "ProcessingEndTime": T0 + timedelta(seconds=100 + seconds),
    }


# By hand, with a 730-hour month (2,628,000 s):
PREPROCESS = 600 * 0.18 / 3600 + 30 * 600 / 2_628_000 * 0.073  # 0.03 + 0.0005 = 0.0305
TRAIN = 900 * 2 * 0.36 / 3600 + 10 * 2 * 1000 / 2_628_000 * 0.146  # 0.18 + 0.001111 = 0.181111
EVALUATE = 120 * 0.18 / 3600 + 30 * 120 / 2_628_000 * 0.073  # 0.006 + 0.0001 = 0.0061
RUN_TOTAL = PREPROCESS + TRAIN + EVALUATE


def test_the_hand_computed_figures():
    assert pytest.approx(0.0305) == PREPROCESS and pytest.approx(0.181111, abs=1e-6) == TRAIN
    assert pytest.approx(0.0061) == EVALUATE and pytest.approx(0.217711, abs=1e-6) == RUN_TOTAL


def test_execution_by_arn_prices_every_step_and_totals(aws, capsys, tmp_path):
    sm = aws["sagemaker"]
    arn = execution_arn(TRAINING, "run42")
    sm.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Failed", "CreationTime": T0},
        {"PipelineExecutionArn": arn},
    )
    expect_parameters(sm, arn, "exp-42")
    expect_training_run(sm, arn)
    code, out, _ = cli(capsys, tmp_path, "execution", arn, "--json")
    assert code == 0
    result = json.loads(out)
    steps = {step["step"]: step for step in result["steps"]}
    assert list(steps) == ["Preprocess", "Train", "Baseline", "Evaluate"]
    assert steps["Preprocess"]["total_usd"] == pytest.approx(PREPROCESS, abs=1e-6)
    assert steps["Train"]["total_usd"] == pytest.approx(TRAIN, abs=1e-6)
    assert steps["Train"]["spot"] and steps["Train"]["instances"] == "ml.m5.large x2"
    assert steps["Baseline"]["total_usd"] == 0 and steps["Baseline"]["reused_from"] == execution_arn(TRAINING, "first")
    assert steps["Evaluate"]["status"] == "Failed" and steps["Evaluate"]["total_usd"] == pytest.approx(
        EVALUATE, abs=1e-6
    )
    assert result["total_usd"] == pytest.approx(RUN_TOTAL, abs=1e-6)
    assert result["experiment"] == "exp-42" and "on-demand list prices" in result["label"]


# A scoring run: Preprocess as above (600 s), CreateModel (no job), Transform on 3 x ml.m5.xlarge for 1500 s (transform
# jobs have no storage line): 1500 x 3 x 0.72 / 3600 = 0.9.
TRANSFORM = 1500 * 3 * 0.72 / 3600


def test_a_scoring_execution_prices_its_transform_job_by_type_count_and_duration(aws, capsys, tmp_path):
    sm = aws["sagemaker"]
    arn = execution_arn(SCORING, "score1")
    sm.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Succeeded", "CreationTime": T0},
        {"PipelineExecutionArn": arn},
    )
    expect_parameters(sm, arn, "scheduled-scoring")
    steps = [
        {
            "StepName": "Preprocess",
            "StepStatus": "Succeeded",
            "EndTime": T0 + timedelta(seconds=700),
            "Metadata": {"ProcessingJob": {"Arn": job_arn("processing", "s-preprocess")}},
        },
        {
            "StepName": "CreateModel",
            "StepStatus": "Succeeded",
            "Metadata": {"Model": {"Arn": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/m"}},
        },
        {
            "StepName": "Transform",
            "StepStatus": "Succeeded",
            "EndTime": T0 + timedelta(seconds=2300),
            "Metadata": {"TransformJob": {"Arn": job_arn("transform", "s-transform")}},
        },
    ]
    sm.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, {"PipelineExecutionArn": arn})
    sm.add_response(
        "describe_processing_job",
        processing("s-preprocess", "Completed", 600),
        {"ProcessingJobName": "s-preprocess"},
    )
    sm.add_response(
        "describe_transform_job",
        {
            "TransformJobName": "s-transform",
            "TransformJobArn": job_arn("transform", "s-transform"),
            "TransformJobStatus": "Completed",
            "ModelName": "m",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://a/in/"}}},
            "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3},
            "CreationTime": T0,
            "TransformStartTime": T0 + timedelta(seconds=750),
            "TransformEndTime": T0 + timedelta(seconds=2250),
        },
        {"TransformJobName": "s-transform"},
    )

    code, out, _ = cli(capsys, tmp_path, "execution", arn, "--json")

    assert code == 0
    result = json.loads(out)
    costs = {step["step"]: step for step in result["steps"]}
    assert list(costs) == ["Preprocess", "Transform"]  # CreateModel runs no job: nothing to price
    assert costs["Transform"]["instances"] == "ml.m5.xlarge x3" and costs["Transform"]["kind"] == "Transform"
    assert costs["Transform"]["total_usd"] == pytest.approx(TRANSFORM, abs=1e-9) == pytest.approx(0.9)
    assert result["total_usd"] == pytest.approx(PREPROCESS + TRANSFORM, abs=1e-6)
    assert result["experiment"] == "scheduled-scoring"


def test_execution_text_and_csv(aws, capsys, tmp_path):
    sm = aws["sagemaker"]
    arn = execution_arn(TRAINING, "run42")
    for _ in range(2):
        sm.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Succeeded", "CreationTime": T0},
            {"PipelineExecutionArn": arn},
        )
        expect_parameters(sm, arn, "exp-42")
        expect_training_run(sm, arn)
    code, out, _ = cli(capsys, tmp_path, "execution", arn)
    assert code == 0
    assert "churn-dev-training execution run42: experiment exp-42, Succeeded" in out
    assert "cached from first: paid there" in out and "execution total: $0.2177" in out
    code, out, _ = cli(capsys, tmp_path, "execution", arn, "--csv")
    lines = out.splitlines()
    assert lines[0].startswith("execution,experiment,step,kind,job") and len(lines) == 5


def test_latest_execution_of_a_pipeline(aws, capsys, tmp_path):
    sm = aws["sagemaker"]
    arn = execution_arn(EVALUATION, "latest")
    sm.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": arn, "StartTime": T0, "PipelineExecutionStatus": "Executing"}
            ]
        },
        {
            "PipelineName": EVALUATION,
            "CreatedAfter": NOW - timedelta(days=30),
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        },
    )
    expect_parameters(sm, arn, "scheduled-evaluation")
    sm.add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {
                    "StepName": "Evaluate",
                    "StepStatus": "Executing",
                    "Metadata": {"ProcessingJob": {"Arn": job_arn("processing", "ev")}},
                }
            ]
        },
        {"PipelineExecutionArn": arn},
    )
    running = {**processing("ev", "InProgress", 0), "ProcessingStartTime": NOW - timedelta(hours=1)}
    del running["ProcessingEndTime"]
    sm.add_response("describe_processing_job", running, {"ProcessingJobName": "ev"})
    code, out, _ = cli(capsys, tmp_path, "execution", "--pipeline", "evaluation", "--latest", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["running"] and result["steps"][0]["running"]
    assert result["steps"][0]["compute_usd"] == pytest.approx(3600 * 0.18 / 3600)


def expect_listing(sm: Stubber, pipeline: str, since: datetime, *arns_and_starts: tuple[str, datetime]) -> None:
    sm.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": arn, "StartTime": start, "PipelineExecutionStatus": "Succeeded"}
                for arn, start in arns_and_starts
            ]
        },
        {"PipelineName": pipeline, "CreatedAfter": since, "SortBy": "CreationTime", "SortOrder": "Descending"},
    )


def test_experiment_sums_its_executions_across_pipelines_and_skips_others(aws, capsys, tmp_path):
    sm = aws["sagemaker"]
    since = datetime(2026, 11, 1, tzinfo=UTC)
    first, other = execution_arn(TRAINING, "one"), execution_arn(TRAINING, "other")
    evaluation = execution_arn(EVALUATION, "two")
    expect_listing(sm, TRAINING, since, (first, T0), (other, T0))
    expect_parameters(sm, first, "exp-42")
    expect_parameters(sm, other, "exp-7")
    expect_listing(sm, EVALUATION, since, (evaluation, T0 + timedelta(days=1)))
    expect_parameters(sm, evaluation, "exp-42")
    expect_listing(sm, SCORING, since)
    expect_training_run(sm, first, "one")
    sm.add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {
                    "StepName": "Evaluate",
                    "StepStatus": "Succeeded",
                    "Metadata": {"ProcessingJob": {"Arn": job_arn("processing", "two-ev")}},
                }
            ]
        },
        {"PipelineExecutionArn": evaluation},
    )
    sm.add_response("describe_processing_job", processing("two-ev", "Completed", 1200), {"ProcessingJobName": "two-ev"})
    code, out, _ = cli(capsys, tmp_path, "experiment", "exp-42", "--since", "2026-11-01", "--json")
    assert code == 0
    result = json.loads(out)
    evaluation_cost = 1200 * 0.18 / 3600 + 30 * 1200 / 2_628_000 * 0.073
    assert [e["execution"] for e in result["executions"]] == [first, evaluation]
    assert result["total_usd"] == pytest.approx(RUN_TOTAL + evaluation_cost, abs=1e-6)


def test_summary_with_endpoint_reconciliation_and_picture(aws, capsys, tmp_path):
    sm, ce = aws["sagemaker"], aws["ce"]
    since = NOW - timedelta(days=7)
    arn = execution_arn(TRAINING, "run42")
    expect_listing(sm, TRAINING, since, (arn, T0))
    expect_parameters(sm, arn, "exp-42")
    expect_listing(sm, EVALUATION, since)
    expect_listing(sm, SCORING, since)
    expect_training_run(sm, arn)
    sm.add_response(
        "describe_endpoint",
        {
            "EndpointName": "churn-dev-endpoint",
            "EndpointArn": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/churn-dev-endpoint",
            "EndpointConfigName": "config-1",
            "EndpointStatus": "InService",
            "CreationTime": NOW - timedelta(days=2),
            "LastModifiedTime": NOW - timedelta(days=2),
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 1}],
        },
        {"EndpointName": "churn-dev-endpoint"},
    )
    sm.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": "config-1",
            "EndpointConfigArn": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint-config/config-1",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}],
            "CreationTime": NOW - timedelta(days=2),
        },
        {"EndpointConfigName": "config-1"},
    )
    ce.add_response(
        "get_cost_and_usage",
        {
            "ResultsByTime": [
                {
                    "TimePeriod": {"Start": "2026-11-20", "End": "2026-11-21"},
                    "Groups": [
                        {
                            "Keys": ["experiment-id$exp-42", "EU-Train:ml.m5.large"],
                            "Metrics": {"UnblendedCost": {"Amount": "0.2", "Unit": "USD"}},
                        }
                    ],
                    "Estimated": False,
                }
            ]
        },
        {
            "TimePeriod": {"Start": "2026-11-20", "End": "2026-11-30"},
            "Granularity": "DAILY",
            "Metrics": ["UnblendedCost", "UsageQuantity"],
            "GroupBy": [{"Type": "TAG", "Key": "experiment-id"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
            "Filter": {
                "And": [
                    {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon SageMaker"]}},
                    {"Tags": {"Key": "project", "Values": ["churn"]}},
                    {"Tags": {"Key": "environment", "Values": ["dev"]}},
                ]
            },
        },
    )
    page = tmp_path / "cost.html"
    code, out, err = cli(capsys, tmp_path, "summary", "--since", "7d", "--reconcile", "--html", str(page), "--json")
    assert code == 0
    result = json.loads(out)
    endpoint = 48 * 0.15
    assert result["endpoint"] == [
        {
            "endpoint": "churn-dev-endpoint",
            "variant": "AllTraffic",
            "instance_type": "ml.m5.large",
            "instance_count": 1,
            "instance_hours": 48.0,
            "usd": pytest.approx(endpoint),
        }
    ]
    assert result["by_experiment"] == [
        {"experiment": "exp-42", "executions": 1, "usd": pytest.approx(RUN_TOTAL, abs=1e-6)}
    ]
    assert result["total_usd"] == pytest.approx(RUN_TOTAL + endpoint, abs=1e-6)
    [row] = result["reconciliation"]["experiments"]
    assert row["billed_usd"] == 0.2 and row["difference_usd"] == pytest.approx(0.2 - RUN_TOTAL, abs=1e-6)
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html and "exp-42" in html and "<script" not in html
    assert "wrote" in err
    assert list((tmp_path / "state" / "cost").glob("ce-*.json"))  # the paid answer is kept


def expect_nothing_since(sm: Stubber, since: datetime) -> None:
    """No execution of either pipeline since `since`, and no endpoint."""
    expect_listing(sm, TRAINING, since)
    expect_listing(sm, EVALUATION, since)
    expect_listing(sm, SCORING, since)
    sm.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint churn-dev-endpoint.")


def test_summary_without_endpoint_says_so(aws, capsys, tmp_path):
    expect_nothing_since(aws["sagemaker"], NOW - timedelta(days=30))
    code, out, _ = cli(capsys, tmp_path, "summary")
    assert code == 0
    assert "churn-dev since 2026-10-30: 0 execution(s), total $0.0000" in out
    assert "endpoint churn-dev-endpoint: not deployed" in out


def test_since_hours_back_as_in_mlops_monitor(aws, capsys, tmp_path):
    """One --since grammar: cost takes Nh too (it took only Nd and dates)."""
    expect_nothing_since(aws["sagemaker"], NOW - timedelta(hours=12))
    code, out, _ = cli(capsys, tmp_path, "summary", "--since", "12h")
    assert code == 0 and "churn-dev since 2026-11-29: 0 execution(s)" in out


def test_malformed_answer_names_the_job_and_exits_1(aws, capsys, tmp_path):
    sm = aws["sagemaker"]
    arn = execution_arn(TRAINING, "run42")
    sm.add_response(
        "describe_pipeline_execution", {"PipelineExecutionArn": arn, "CreationTime": T0}, {"PipelineExecutionArn": arn}
    )
    expect_parameters(sm, arn, "exp-42")
    sm.add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {"StepName": "Train", "Metadata": {"TrainingJob": {"Arn": job_arn("training", "t")}}}
            ]
        },
        {"PipelineExecutionArn": arn},
    )
    sm.add_response(
        "describe_training_job",
        {  # every field the output shape requires, but no ResourceConfig (optional in the model)
            "TrainingJobName": "t",
            "TrainingJobArn": job_arn("training", "t"),
            "ModelArtifacts": {"S3ModelArtifacts": "s3://a/model.tar.gz"},
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
            "CreationTime": T0,
            "BillableTimeInSeconds": 10,
        },
        {"TrainingJobName": "t"},
    )
    code, out, err = cli(capsys, tmp_path, "execution", arn)
    assert (code, out) == (1, "")
    assert err == "error: training job t (step Train): the description has no ResourceConfig\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["execution"], "give an execution ARN, or --pipeline training|evaluation --latest"),
        (["execution", "not-an-arn"], "'not-an-arn' is not a pipeline execution ARN"),
        (["experiment"], "name the experiment"),
        (["summary", "--since", "last week"], "--since 'last week': use a UTC date YYYY-MM-DD"),
        (["summary", "--json", "--csv"], "choose one of --json and --csv"),
        (["execution", "--html", "x.html"], "--html draws the summary"),
        (["summary", "--html", "/nonexistent/folder/cost.html"], "--html /nonexistent/folder/cost.html: folder"),
    ],
)
def test_bad_usage_is_one_error_line_and_exit_2(aws, capsys, tmp_path, argv, message):
    code, out, err = cli(capsys, tmp_path, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_a_missing_price_is_exit_2_naming_the_type_and_the_refresh(aws, capsys, tmp_path):
    sm = aws["sagemaker"]
    arn = execution_arn(TRAINING, "run42")
    sm.add_response(
        "describe_pipeline_execution", {"PipelineExecutionArn": arn, "CreationTime": T0}, {"PipelineExecutionArn": arn}
    )
    expect_parameters(sm, arn, "exp-42")
    sm.add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {"StepName": "P", "Metadata": {"ProcessingJob": {"Arn": job_arn("processing", "p")}}}
            ]
        },
        {"PipelineExecutionArn": arn},
    )
    big = processing("p", "Completed", 60)
    big["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.24xlarge"
    sm.add_response("describe_processing_job", big, {"ProcessingJobName": "p"})
    code, _, err = cli(capsys, tmp_path, "execution", arn)
    assert code == 2
    assert "no Processing price for ml.m5.24xlarge in eu-west-1" in err and "mlops cost prices --refresh" in err


def test_a_run_started_without_the_parameter_belongs_to_the_default_experiment(aws):
    sm = aws["sagemaker"]
    arn = execution_arn(TRAINING, "bare")
    sm.add_response(
        "list_pipeline_parameters_for_execution",
        {"PipelineParameters": [{"Name": "InputDataUri", "Value": "s3://x/"}]},
        {"PipelineExecutionArn": arn},
    )
    assert reads.experiment_of(command.client("sagemaker", None), arn) == "adhoc"
