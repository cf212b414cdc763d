"""The cost arithmetic alone, on fixture descriptions: no AWS client, every figure recomputed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops.common import UsageError
from mlops.cost import estimate
from mlops.cost.estimate import Fleet, MalformedAnswer
from mlops.cost.prices import PriceSnapshot

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
MONTH_SECONDS = 730 * 3600
PRICES = PriceSnapshot(
    region="eu-west-1",
    publication_date="2026-11-01",
    source="test",
    instance_hour={
        "Training": {"ml.m5.large": 0.36, "ml.c5.xlarge": 0.72},
        "Processing": {"ml.m5.large": 0.18},
        "Hosting": {"ml.m5.large": 0.15},
    },
    storage_gb_month={"Training": 0.2, "Processing": 0.1, "Hosting": 0.2},
    path=Path("test-prices.json"),
)


def training_job(**overrides):
    job = {
        "TrainingJobName": "pipelines-abc-Train-1",
        "TrainingJobStatus": "Completed",
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "TrainingStartTime": T0,
        "TrainingEndTime": T0 + timedelta(seconds=1000),
        "TrainingTimeInSeconds": 1000,
        "BillableTimeInSeconds": 1000,
    }
    return {**job, **overrides}


def processing_job(**overrides):
    job = {
        "ProcessingJobName": "pipelines-abc-Preprocess-1",
        "ProcessingJobStatus": "Completed",
        "ProcessingResources": {
            "ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
        },
        "ProcessingStartTime": T0,
        "ProcessingEndTime": T0 + timedelta(seconds=600),
    }
    return {**job, **overrides}


def test_processing_job_is_end_minus_start_times_rate_plus_prorated_storage():
    cost = estimate.processing_cost("Preprocess", processing_job(), PRICES, NOW)
    assert cost.billed_seconds == 600 and cost.fleets == (Fleet("ml.m5.large", 1),)
    assert cost.compute_usd == pytest.approx(600 * 0.18 / 3600)  # $0.03
    assert cost.storage_usd == pytest.approx(30 * 600 / MONTH_SECONDS * 0.1)
    assert cost.total_usd == pytest.approx(0.03 + 30 * 600 / MONTH_SECONDS * 0.1)


def test_multi_instance_training_multiplies_by_the_count():
    two = training_job(ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 10})
    cost = estimate.training_cost("Train", two, PRICES, NOW)
    assert cost.compute_usd == pytest.approx(1000 * 2 * 0.36 / 3600)  # $0.20
    assert cost.storage_usd == pytest.approx(10 * 2 * 1000 / MONTH_SECONDS * 0.2)


def test_spot_training_is_priced_on_billable_seconds_and_flagged():
    spot = training_job(EnableManagedSpotTraining=True, TrainingTimeInSeconds=1000, BillableTimeInSeconds=300)
    cost = estimate.training_cost("Train", spot, PRICES, NOW)
    assert cost.spot and cost.billed_seconds == 300
    assert cost.compute_usd == pytest.approx(300 * 0.36 / 3600)


def test_selected_instance_type_and_heterogeneous_groups_are_what_is_billed():
    flexible = training_job(
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "SelectedInstanceType": "ml.c5.xlarge"}
    )
    assert estimate.training_cost("Train", flexible, PRICES, NOW).compute_usd == pytest.approx(1000 * 0.72 / 3600)
    groups = training_job(
        ResourceConfig={
            "InstanceGroups": [
                {"InstanceType": "ml.m5.large", "InstanceCount": 2, "InstanceGroupName": "a"},
                {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "InstanceGroupName": "b"},
            ]
        }
    )
    cost = estimate.training_cost("Train", groups, PRICES, NOW)
    assert cost.compute_usd == pytest.approx(1000 * (2 * 0.36 + 0.72) / 3600) and cost.storage_usd == 0


def test_warm_pool_retention_is_billed_at_the_training_rate():
    warm = training_job(WarmPoolStatus={"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 500})
    cost = estimate.training_cost("Train", warm, PRICES, NOW)
    assert cost.compute_usd == pytest.approx(1500 * 0.36 / 3600) and "500 s warm pool" in cost.note


def test_running_jobs_count_to_now_and_are_flagged():
    running = training_job(TrainingJobStatus="InProgress", TrainingEndTime=None, BillableTimeInSeconds=None)
    cost = estimate.training_cost("Train", running, PRICES, NOW)
    assert cost.running and cost.billed_seconds == 7200
    still_provisioning = training_job(TrainingJobStatus="InProgress", TrainingStartTime=None, TrainingEndTime=None)
    assert estimate.training_cost("Train", still_provisioning, PRICES, NOW).total_usd == 0
    processing = processing_job(ProcessingJobStatus="InProgress", ProcessingEndTime=None)
    assert estimate.processing_cost("P", processing, PRICES, NOW).compute_usd == pytest.approx(7200 * 0.18 / 3600)


def test_failed_jobs_still_cost_what_they_ran_and_jobs_that_never_started_cost_nothing():
    failed = processing_job(ProcessingJobStatus="Failed", ProcessingEndTime=T0 + timedelta(seconds=120))
    assert estimate.processing_cost("Evaluate", failed, PRICES, NOW).compute_usd == pytest.approx(120 * 0.18 / 3600)
    failed_training = training_job(TrainingJobStatus="Failed", BillableTimeInSeconds=None)
    assert estimate.training_cost("Train", failed_training, PRICES, NOW).billed_seconds == 1000
    never_started = training_job(
        TrainingJobStatus="Failed", TrainingStartTime=None, TrainingEndTime=None, BillableTimeInSeconds=None
    )
    assert estimate.training_cost("Train", never_started, PRICES, NOW).total_usd == 0


def test_cached_and_selectively_reused_steps_cost_nothing_here_and_name_the_payer():
    source = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/churn-dev-training/execution/first"
    steps = [
        {
            "StepName": "Baseline",
            "StepStatus": "Succeeded",
            "CacheHitResult": {"SourcePipelineExecutionArn": source},
            "Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:eu-west-1:1:processing-job/old-baseline"}},
        },
        {
            "StepName": "Train",
            "StepStatus": "Succeeded",
            "SelectiveExecutionResult": {"SourcePipelineExecutionArn": source},
            "Metadata": {"TrainingJob": {"Arn": "arn:aws:sagemaker:eu-west-1:1:training-job/old-train"}},
        },
        {"StepName": "CheckScore", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
        {"StepName": "Register", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": "arn:x"}}},
    ]
    jobs = estimate.job_steps(steps)
    assert [(j.step, j.kind, j.job_name, j.reused_from) for j in jobs] == [
        ("Baseline", "Processing", "old-baseline", source),
        ("Train", "Training", "old-train", source),
    ]
    reused = estimate.reused_step(jobs[0])
    assert reused.total_usd == 0 and reused.reused_from == source


def test_missing_prices_and_unknown_instance_types_are_errors_naming_the_type_and_the_refresh():
    unknown = processing_job(
        ProcessingResources={"ClusterConfig": {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1}}
    )
    with pytest.raises(UsageError, match=r"no Processing price for ml.p5.48xlarge in eu-west-1.*--refresh"):
        estimate.processing_cost("Preprocess", unknown, PRICES, NOW)
    no_storage = PriceSnapshot("eu-west-1", "d", "s", PRICES.instance_hour, {}, Path("p.json"))
    with pytest.raises(UsageError, match="no Processing ML storage price"):
        estimate.processing_cost("Preprocess", processing_job(), no_storage, NOW)


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (training_job(ResourceConfig=None), "training job pipelines-abc-Train-1 .step Train.: .*no ResourceConfig"),
        (training_job(ResourceConfig={"VolumeSizeInGB": 5}), "pipelines-abc-Train-1.*no InstanceType"),
        (training_job(TrainingJobStatus=None), "pipelines-abc-Train-1.*no TrainingJobStatus"),
        (
            training_job(BillableTimeInSeconds=None, TrainingEndTime=None),
            "pipelines-abc-Train-1.*no TrainingEndTime",
        ),
    ],
)
def test_malformed_training_answers_name_the_job(job, message):
    with pytest.raises(MalformedAnswer, match=message):
        estimate.training_cost("Train", job, PRICES, NOW)


def test_malformed_processing_answers_name_the_job():
    with pytest.raises(MalformedAnswer, match=r"processing job pipelines-abc-Preprocess-1.*ClusterConfig"):
        estimate.processing_cost("Preprocess", processing_job(ProcessingResources={}), PRICES, NOW)
    with pytest.raises(MalformedAnswer, match=r"Preprocess-1.*no ProcessingEndTime"):
        estimate.processing_cost("Preprocess", processing_job(ProcessingEndTime=None), PRICES, NOW)
    with pytest.raises(MalformedAnswer, match="step Broken: its TrainingJob metadata has no Arn"):
        estimate.job_steps([{"StepName": "Broken", "Metadata": {"TrainingJob": {}}}])


def test_endpoint_hours_are_the_window_overlap_times_the_current_count():
    endpoint = {
        "EndpointName": "churn-dev-endpoint",
        "CreationTime": NOW - timedelta(hours=10),
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}],
    }
    config = {"ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large"}]}
    [since_creation] = estimate.endpoint_costs(endpoint, config, PRICES, NOW - timedelta(days=30), NOW)
    assert since_creation.hours == pytest.approx(20) and since_creation.usd == pytest.approx(20 * 0.15)
    [last_four_hours] = estimate.endpoint_costs(endpoint, config, PRICES, NOW - timedelta(hours=4), NOW)
    assert last_four_hours.usd == pytest.approx(4 * 2 * 0.15)
    serverless = {"ProductionVariants": [{"VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 2048}}]}
    with pytest.raises(MalformedAnswer, match="serverless"):
        estimate.endpoint_costs(endpoint, serverless, PRICES, NOW - timedelta(hours=4), NOW)
