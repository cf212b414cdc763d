"""The Monitoring stack: only with a pin and model_monitor on; both schedules, hash-named job definition, role, alarms.

The synthesized units serve tests/fixtures/deployments.json: prod's pin has a model-quality baseline (both schedules);
the sandbox is pinned but has model_monitor off; dev and staging pin nothing.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from aws_cdk import CfnWaitConditionHandle, Stack, Stage
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Annotations, Match, Template
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from config import EnvironmentConfig, load_config
from config.deployments import ModelPin, pin_for
from platform_constructs.monitoring_schedules import definition_content
from stacks.monitoring_stack import NO_MODEL_QUALITY_BASELINE, MonitoringStack
from stacks.stage import new_app
from tests.helpers import ALL_UNITS, FIXTURE_PINS, cdk_json_context
from tests.infra.conftest import stack_templates
from tests.infra.constructs.conftest import statements

PROD = ALL_UNITS["prod"]
KEY_ARN = f"arn:aws:kms:{PROD.region}:{PROD.account}:key/11111111-2222-3333-4444-555555555555"
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


def prod_pin() -> ModelPin:
    pin = pin_for(PROD, FIXTURE_PINS)
    assert pin is not None and pin.model_quality_constraints_uri
    return pin


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def schedules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{MonitoringType: schedule properties}."""
    found = of_type(template, "AWS::SageMaker::MonitoringSchedule").values()
    return {s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]: s["Properties"] for s in found}


def monitoring_stack(config: EnvironmentConfig = PROD, pin: ModelPin | None = None) -> MonitoringStack:
    """The Monitoring stack alone for `config` and `pin`: no other stack, so it is quick to build several times."""
    stage = Stage(new_app(context=cdk_json_context()), "Unit", env={"account": config.account, "region": config.region})
    storage = Stack(stage, "Storage")
    CfnWaitConditionHandle(storage, "Placeholder")  # a stack must have a resource when the stage validates
    key = kms.Key.from_key_arn(storage, "Key", KEY_ARN)
    return MonitoringStack(
        stage,
        "Monitoring",
        config=config,
        pin=pin or prod_pin(),
        data_key=key,
        artifacts_bucket_name="churn-prod-artifacts",
        landing_bucket_name="churn-prod-landing",
        artifacts_bucket_arn_export="churn-prod-artifacts-bucket-arn",
        landing_bucket_arn_export="churn-prod-training-data-bucket-arn",
    )


def template_of(config: EnvironmentConfig = PROD, pin: ModelPin | None = None) -> dict[str, Any]:
    return Template.from_stack(monitoring_stack(config, pin)).to_json()


def job_definition(template: dict[str, Any]) -> dict[str, Any]:
    [definition] = of_type(template, "AWS::SageMaker::ModelQualityJobDefinition").values()
    return definition


# Which units monitor ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", ["dev", "staging", "dev/sandbox=ci"])
def test_no_monitoring_without_a_pin_or_with_model_monitor_off(synthesized, unit: str) -> None:
    assert "Monitoring" not in stack_templates(synthesized(unit)[1])
    assert ALL_UNITS["dev/sandbox=ci"].model_monitor is False and ALL_UNITS["staging"].model_monitor is True


def test_prod_monitors_its_endpoint_after_the_serving_stack_is_deployed(synthesized) -> None:
    stage, assembly = synthesized("prod")
    template = stack_templates(assembly)["Monitoring"]
    assert set(schedules(template)) == {"DataQuality", "ModelQuality"}
    assert stage.serving is not None and stage.monitoring is not None
    assert stage.serving in stage.monitoring.dependencies  # CreateMonitoringSchedule needs the endpoint to exist
    for properties in schedules(template).values():
        assert properties["EndpointName"] == "churn-prod-endpoint"
    assert stage.monitoring.alarms  # the hook the notifications topic will act on
    assert stage.monitoring.termination_protection is True  # like every prod stack


# The schedules --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("region", "registry"),
    [
        ("eu-west-1", "468650794304.dkr.ecr.eu-west-1.amazonaws.com"),
        ("us-east-1", "156813124566.dkr.ecr.us-east-1.amazonaws.com"),
        ("us-west-2", "159807026194.dkr.ecr.us-west-2.amazonaws.com"),
        ("ap-southeast-2", "563025443158.dkr.ecr.ap-southeast-2.amazonaws.com"),
    ],
)
def test_both_monitors_run_the_analyzer_image_of_the_units_region(region: str, registry: str) -> None:
    from pipeline_defs.sdk import model_monitor_image_uri  # here: collecting the suite should not load the SDK

    assert model_monitor_image_uri(region) == f"{registry}/sagemaker-model-monitor-analyzer"
    template = template_of(dataclasses.replace(PROD, region=region))
    dq = schedules(template)["DataQuality"]["MonitoringScheduleConfig"]["MonitoringJobDefinition"]
    mq = job_definition(template)["Properties"]["ModelQualityAppSpecification"]
    assert dq["MonitoringAppSpecification"]["ImageUri"] == mq["ImageUri"] == model_monitor_image_uri(region)
    [pull] = [s for s in statements(template, _role_id(template)) if s["Sid"] == "PullAnalyzerImage"]
    assert (
        pull["Resource"] == f"arn:aws:ecr:{region}:{registry.split('.')[0]}:repository/sagemaker-model-monitor-analyzer"
    )


def test_data_quality_is_inline_with_the_pinned_baselines_metrics_kms_and_a_window_of_one_interval() -> None:
    template, pin = template_of(), prod_pin()
    schedule = schedules(template)["DataQuality"]
    assert schedule["MonitoringScheduleName"] == "churn-prod-dq"
    config = schedule["MonitoringScheduleConfig"]
    assert config["ScheduleConfig"] == {
        "ScheduleExpression": "cron(0 * ? * * *)",
        "DataAnalysisStartTime": "-PT1H",
        "DataAnalysisEndTime": "-PT0H",
    }
    job = config["MonitoringJobDefinition"]
    assert job["BaselineConfig"] == {
        "StatisticsResource": {"S3Uri": pin.data_quality_statistics_uri},
        "ConstraintsResource": {"S3Uri": pin.data_quality_constraints_uri},
    }
    assert job["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": PROD.monitoring_max_runtime_seconds}
    assert job["MonitoringInputs"] == [
        {"EndpointInput": {"EndpointName": "churn-prod-endpoint", "LocalPath": "/opt/ml/processing/input/endpoint"}}
    ]
    cluster = job["MonitoringResources"]["ClusterConfig"]
    assert (cluster["InstanceType"], cluster["VolumeKmsKeyId"]) == ("ml.m5.xlarge", KEY_ARN)
    output = job["MonitoringOutputConfig"]
    assert output["KmsKeyId"] == KEY_ARN
    assert output["MonitoringOutputs"][0]["S3Output"]["S3Uri"] == "s3://churn-prod-artifacts/monitoring"


def test_a_daily_schedule_analyses_the_whole_day() -> None:
    staging = dataclasses.replace(PROD, monitoring_schedule="cron(0 3 ? * * *)")
    config = schedules(template_of(staging))["DataQuality"]["MonitoringScheduleConfig"]["ScheduleConfig"]
    assert (config["DataAnalysisStartTime"], config["DataAnalysisEndTime"]) == ("-PT24H", "-PT0H")


def test_model_quality_reads_ground_truth_with_the_configured_offsets_and_threshold() -> None:
    template, pin = template_of(), prod_pin()
    definition = job_definition(template)["Properties"]
    endpoint_input = definition["ModelQualityJobInput"]["EndpointInput"]
    assert endpoint_input == {
        "EndpointName": "churn-prod-endpoint",
        "LocalPath": "/opt/ml/processing/input/endpoint",
        "ProbabilityAttribute": "0",
        "ProbabilityThresholdAttribute": 0.5,
        "StartTimeOffset": "-PT25H",
        "EndTimeOffset": "-PT24H",
    }
    assert definition["ModelQualityJobInput"]["GroundTruthS3Input"] == {
        "S3Uri": "s3://churn-prod-landing/ground-truth/churn-prod-endpoint/"
    }
    assert definition["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    assert definition["ModelQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": pin.model_quality_constraints_uri}
    }
    assert definition["ModelQualityJobOutputConfig"]["KmsKeyId"] == KEY_ARN
    assert definition["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY_ARN
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800}


def test_the_model_quality_schedule_names_its_job_definition_and_is_created_after_it() -> None:
    template = template_of()
    [(definition_id, definition)] = of_type(template, "AWS::SageMaker::ModelQualityJobDefinition").items()
    name = definition["Properties"]["JobDefinitionName"]
    assert re.fullmatch(r"churn-prod-mq-[0-9a-f]{12}", name)
    [schedule] = [
        s
        for s in of_type(template, "AWS::SageMaker::MonitoringSchedule").values()
        if "DependsOn" in s and definition_id in s["DependsOn"]
    ]
    config = schedule["Properties"]["MonitoringScheduleConfig"]
    assert (config["MonitoringType"], config["MonitoringJobDefinitionName"]) == ("ModelQuality", name)
    assert schedule["Properties"]["MonitoringScheduleName"] == "churn-prod-mq"
    # Both need the role's permissions in place when SageMaker validates it.
    [policy_id] = of_type(template, "AWS::IAM::Policy")
    assert policy_id in definition["DependsOn"]
    assert policy_id in template["Resources"][_schedule_id(template, "DataQuality")]["DependsOn"]


def test_the_job_definition_name_changes_with_its_content_and_only_then() -> None:
    name = job_definition(template_of())["Properties"]["JobDefinitionName"]
    assert job_definition(template_of())["Properties"]["JobDefinitionName"] == name
    # A setting that only the schedules use leaves the definition (and its name) alone.
    assert (
        job_definition(template_of(dataclasses.replace(PROD, drift_alarm_threshold=0.2)))["Properties"][
            "JobDefinitionName"
        ]
        == name
    )
    for changed in (
        dataclasses.replace(PROD, model_quality_probability_threshold=0.4),
        dataclasses.replace(PROD, model_quality_start_offset="-PT26H"),
        dataclasses.replace(PROD, owner="someone-else"),  # tags are create-only too
    ):
        assert job_definition(template_of(changed))["Properties"]["JobDefinitionName"] != name


def test_the_hash_covers_every_property_but_the_name_and_long_prefixes_still_fit() -> None:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(PROD.region, "AWS::SageMaker::ModelQualityJobDefinition")
    writable = set(schema.schema["properties"]) - set(
        p.split("/")[-1] for p in schema.schema.get("readOnlyProperties", [])
    )
    definition = monitoring_stack().schedules.model_quality_definition
    assert definition is not None
    assert set(definition_content(definition)) == writable - {"JobDefinitionName"}
    longest = load_config(sandbox="s" * 46)  # the longest prefix the config allows (56 characters)
    name = job_definition(template_of(longest))["Properties"]["JobDefinitionName"]
    assert len(name) == 63 and _NAME.match(name) and name.startswith("churn-dev-sss")
    assert re.fullmatch(r"churn-dev-s+-mq-[0-9a-f]{12}", name)


def test_without_a_model_quality_baseline_only_data_quality_runs_and_synth_warns() -> None:
    pin = dataclasses.replace(prod_pin(), model_quality_constraints_uri=None)
    stack = monitoring_stack(pin=pin)
    template = Template.from_stack(stack).to_json()
    assert set(schedules(template)) == {"DataQuality"}
    assert not of_type(template, "AWS::SageMaker::ModelQualityJobDefinition")
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("no model-quality schedule"))
    assert "model-quality schedule" in NO_MODEL_QUALITY_BASELINE
    [read] = [s for s in statements(template, _role_id(template)) if s["Sid"] == "ReadBaselines"]
    assert sorted(read["Resource"]) == sorted(
        "arn:aws:s3:::" + uri.removeprefix("s3://")
        for uri in (pin.data_quality_statistics_uri, pin.data_quality_constraints_uri)
    )
    metrics = {a["Properties"]["MetricName"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()}
    assert metrics == {"MatchedEvents", "feature_baseline_drift_churn_probability"}


# The role -------------------------------------------------------------------------------------------------------------
def test_the_role_reads_capture_baselines_and_labels_and_writes_only_the_endpoints_reports() -> None:
    template, pin = template_of(), prod_pin()
    granted = {s["Sid"]: s for s in statements(template, _role_id(template))}

    def prefix(statement: dict[str, Any]) -> tuple[str, str]:
        imported, path = statement["Resource"]["Fn::Join"][1]
        return imported["Fn::ImportValue"], path

    assert prefix(granted["ReadDataCapture"]) == (
        "churn-prod-artifacts-bucket-arn",
        "/data-capture/churn-prod-endpoint/*",
    )
    assert prefix(granted["ReadGroundTruth"]) == (
        "churn-prod-training-data-bucket-arn",
        "/ground-truth/churn-prod-endpoint/*",
    )
    assert prefix(granted["WriteReports"]) == ("churn-prod-artifacts-bucket-arn", "/monitoring/churn-prod-endpoint/*")
    assert sorted(granted["ReadBaselines"]["Resource"]) == sorted(
        "arn:aws:s3:::" + uri.removeprefix("s3://")
        for uri in (
            pin.data_quality_statistics_uri,
            pin.data_quality_constraints_uri,
            pin.model_quality_constraints_uri,
        )
        if uri
    )
    assert granted["UseDataKey"]["Resource"] == KEY_ARN
    actions = {a for s in granted.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.startswith("sagemaker:") or a.endswith("*")}
    assert {"s3:DeleteObject", "s3:PutObjectAcl"}.isdisjoint(actions)


# The alarms -----------------------------------------------------------------------------------------------------------
def test_alarms_on_failed_executions_drift_and_quality_below_the_evaluated_scores() -> None:
    template, pin = template_of(), prod_pin()
    [rule] = of_type(template, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["SageMaker Processing Job State Change"]
    assert pattern["detail"]["ProcessingJobStatus"] == ["Failed"]
    # Every monitoring job (data quality; model quality's merge and analysis) runs with the monitoring role.
    assert pattern["detail"]["RoleArn"] == [{"Fn::GetAtt": [_role_id(template), "Arn"]}]
    for schedule in of_type(template, "AWS::SageMaker::MonitoringSchedule").values():
        job = schedule["Properties"]["MonitoringScheduleConfig"].get("MonitoringJobDefinition")
        assert job is None or job["RoleArn"] == {"Fn::GetAtt": [_role_id(template), "Arn"]}
    assert job_definition(template)["Properties"]["RoleArn"] == {"Fn::GetAtt": [_role_id(template), "Arn"]}
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"MatchedEvents", "feature_baseline_drift_churn_probability", "auc", "f1"}
    drift = alarms["feature_baseline_drift_churn_probability"]
    assert (drift["Namespace"], drift["Threshold"], drift["ComparisonOperator"]) == (
        "aws/sagemaker/Endpoints/data-metrics",
        PROD.drift_alarm_threshold,
        "GreaterThanThreshold",
    )
    assert {d["Name"]: d["Value"] for d in drift["Dimensions"]} == {
        "Endpoint": "churn-prod-endpoint",
        "MonitoringSchedule": "churn-prod-dq",
    }
    for metric in ("auc", "f1"):
        alarm = alarms[metric]
        assert alarm["Namespace"] == "aws/sagemaker/Endpoints/model-metrics"
        # The threshold of the package's own constraints: where its model-quality monitor reports a violation.
        assert alarm["Threshold"] == pin.model_quality_thresholds[metric]
        assert alarm["ComparisonOperator"] == "LessThanThreshold"
        assert {d["Value"] for d in alarm["Dimensions"]} == {"churn-prod-endpoint", "churn-prod-mq"}
    assert all(a["TreatMissingData"] == "notBreaching" and a["Period"] == 3600 for a in alarms.values())
    assert all("AlarmActions" not in a for a in alarms.values())  # no topic yet: see MonitoringStack.alarms


def _role_id(template: dict[str, Any]) -> str:
    [role_id] = of_type(template, "AWS::IAM::Role")
    return role_id


def _schedule_id(template: dict[str, Any], monitoring_type: str) -> str:
    [found] = [
        key
        for key, value in of_type(template, "AWS::SageMaker::MonitoringSchedule").items()
        if value["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] == monitoring_type
    ]
    return found
