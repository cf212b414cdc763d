"""The Serving stack: only with a pin; Model from the package, data capture, safe rollout, autoscaling, least privilege.

The synthesized units serve tests/fixtures/deployments.json: prod (safe rollout, autoscaling) and the sandbox (one
small instance); dev and staging pin nothing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk import Stack, Stage
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from config.deployments import ModelPin, pin_for
from stacks.serving_stack import ServingStack
from stacks.stage import new_app
from tests.helpers import ALL_UNITS, FIXTURE_PINS, cdk_json_context
from tests.infra.conftest import stack_templates
from tests.infra.constructs.conftest import statements

PROD = ALL_UNITS["prod"]
SANDBOX = ALL_UNITS["dev/sandbox=ci"]


def serving_template(synthesized: Any, unit: str) -> dict[str, Any]:
    return stack_templates(synthesized(unit)[1])["Serving"]


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def one(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = of_type(template, resource_type)
    assert len(found) == 1, sorted(found)
    return next(iter(found.values()))


def pinned(config: Any) -> ModelPin:
    pin = pin_for(config, FIXTURE_PINS)
    assert pin is not None
    return pin


@pytest.mark.parametrize("unit", ["dev", "staging"])
def test_a_unit_with_nothing_pinned_has_no_serving_resources(synthesized, unit: str) -> None:
    templates = stack_templates(synthesized(unit)[1])
    assert set(templates) == {"Storage", "Pipelines", "Orchestration", "Tracking", "DeploymentAccess"}
    types = {resource["Type"] for template in templates.values() for resource in template["Resources"].values()}
    assert not {t for t in types if t.startswith(("AWS::SageMaker::Endpoint", "AWS::SageMaker::Model"))} - {
        "AWS::SageMaker::ModelPackageGroup"
    }


def test_the_model_comes_from_the_pinned_package_only(synthesized) -> None:
    model = one(serving_template(synthesized, "prod"), "AWS::SageMaker::Model")["Properties"]
    assert model["Containers"] == [{"ModelPackageName": pinned(PROD).model_package_arn}]
    assert "PrimaryContainer" not in model


def test_the_deployment_records_the_served_version_in_its_lifecycle_after_the_endpoint(synthesized) -> None:
    """Deployed on create/update, Undeployed when a later version's deployment removes it; only that version."""
    template = serving_template(synthesized, "prod")
    record_id, record = next(iter(of_type(template, "Custom::AWS").items()))
    arn = pinned(PROD).model_package_arn
    calls = {
        event: json.loads(record["Properties"][event]) for event in ("Create", "Update", "Delete")
    }  # fmt: skip
    for event, status in (("Create", "Deployed"), ("Update", "Deployed"), ("Delete", "Undeployed")):
        assert (calls[event]["action"], calls[event]["parameters"]["ModelPackageArn"]) == ("updateModelPackage", arn)
        assert calls[event]["parameters"]["ModelLifeCycle"]["Stage"] == "prod"
        assert calls[event]["parameters"]["ModelLifeCycle"]["StageStatus"] == status
    assert f"V{pinned(PROD).version}" in record_id  # a new version: a new record, created before the old one goes
    [endpoint_id] = of_type(template, "AWS::SageMaker::Endpoint")
    assert endpoint_id in record["DependsOn"]
    [policy] = [r for r in of_type(template, "AWS::IAM::Policy").values() if "LifecycleV" in json.dumps(r)]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "sagemaker:UpdateModelPackage", "Effect": "Allow", "Resource": arn}
    ]


def test_endpoint_config_serves_one_variant_with_encrypted_volume_and_data_capture(synthesized) -> None:
    template = serving_template(synthesized, "prod")
    config = one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "EndpointConfigName" not in config  # create-only: a generated name per change
    [variant] = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.xlarge", 2)
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 20
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json"],
    }
    destination = capture["DestinationS3Uri"]["Fn::Join"][1]
    assert destination[0] == "s3://" and destination[2] == "/data-capture"
    assert "ArtifactsBucket" in destination[1]["Fn::GetStackOutput"]["OutputName"]
    for key in (config["KmsKeyId"], capture["KmsKeyId"]):
        assert "DataKey" in key["Fn::GetStackOutput"]["OutputName"]


def test_endpoint_has_the_units_fixed_name_and_is_an_output(synthesized) -> None:
    template = serving_template(synthesized, "prod")
    endpoint = one(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == "churn-prod-endpoint" == PROD.endpoint_name
    outputs = {key: value["Value"] for key, value in template["Outputs"].items()}
    assert outputs["EndpointName"] == "churn-prod-endpoint"
    assert outputs["ServedModelVersion"] == "7"


def test_prod_rolls_out_blue_green_with_a_canary_and_rolls_back_on_its_alarms(synthesized) -> None:
    template = serving_template(synthesized, "prod")
    deployment = one(template, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    policy = deployment["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": PROD.rollout_canary_percent},
        "WaitIntervalInSeconds": PROD.rollout_bake_seconds,
    }
    assert 600 <= policy["MaximumExecutionTimeoutInSeconds"] <= 14_400
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert deployment["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": {"Ref": key}} for key in alarms]
    by_metric = {alarm["Properties"]["MetricName"]: alarm["Properties"] for alarm in alarms.values()}
    errors, latency = by_metric["Invocation5XXErrors"], by_metric["ModelLatency"]
    assert (errors["Statistic"], errors["Threshold"], errors["EvaluationPeriods"]) == ("Sum", 1, 2)
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", PROD.latency_alarm_p99_ms * 1000)
    for alarm in (errors, latency):
        assert alarm["Namespace"] == "AWS/SageMaker" and alarm["TreatMissingData"] == "notBreaching"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "EndpointName": "churn-prod-endpoint",
            "VariantName": "AllTraffic",
        }


def test_prod_scales_on_invocations_per_instance(synthesized) -> None:
    template = serving_template(synthesized, "prod")
    target = one(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert {key: value for key, value in target["Properties"].items() if key != "Tags"} == {
        "MaxCapacity": 4,
        "MinCapacity": 2,
        "ResourceId": "endpoint/churn-prod-endpoint/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "ServiceNamespace": "sagemaker",
    }
    [endpoint_id] = of_type(template, "AWS::SageMaker::Endpoint")
    assert endpoint_id in target["DependsOn"]  # registered only once the endpoint exists
    policy = one(template, "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == PROD.serving_invocations_per_instance
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }


def test_a_sandbox_serves_one_small_instance_without_rollout_or_scaling_and_is_destroyable(synthesized) -> None:
    template = serving_template(synthesized, "dev/sandbox=ci")
    [variant] = one(template, "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    assert "DeploymentConfig" not in one(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert not of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert all(resource.get("DeletionPolicy", "Delete") == "Delete" for resource in template["Resources"].values())


def test_the_model_role_reads_exactly_the_pinned_objects_and_writes_only_its_capture_prefix(synthesized) -> None:
    template = serving_template(synthesized, "prod")
    [role_id] = [key for key in of_type(template, "AWS::IAM::Role") if key.startswith("ModelRole")]
    granted = {s["Sid"]: s for s in statements(template, role_id)}
    pin = pinned(PROD)
    assert sorted(granted["ReadModelAndCode"]["Resource"]) == sorted(
        "arn:aws:s3:::" + uri.removeprefix("s3://") for uri in (pin.model_data_url, pin.inference_code_url)
    )
    capture = granted["WriteDataCapture"]["Resource"]["Fn::Join"][1]
    assert capture[0] == {"Fn::ImportValue": "churn-prod-artifacts-bucket-arn"}
    assert capture[1] == "/data-capture/churn-prod-endpoint/*"
    assert granted["PullInferenceImage"]["Resource"] == (
        "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn"
    )
    actions = {a for s in granted.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.startswith("sagemaker:") or a.endswith("*")}


def _serving_template(pin: ModelPin) -> dict[str, Any]:
    """The Serving stack alone (prod's config) for `pin`: no other stack, so it is fast to build twice."""
    stage = Stage(new_app(context=cdk_json_context()), "Unit", env={"account": PROD.account, "region": PROD.region})
    key = kms.Key.from_key_arn(
        Stack(stage, "Storage"),
        "Key",
        f"arn:aws:kms:{PROD.region}:{PROD.account}:key/11111111-2222-3333-4444-555555555555",
    )
    stack = ServingStack(
        stage,
        "Serving",
        config=PROD,
        pin=pin,
        data_key=key,
        artifacts_bucket_name="churn-prod-artifacts",
        artifacts_bucket_arn_export="churn-prod-artifacts-bucket-arn",
        landing_bucket_name="churn-prod-landing",
    )
    return Template.from_stack(stack).to_json()


def test_promoting_another_version_adds_a_new_model_and_endpoint_config_but_keeps_the_endpoint() -> None:
    """CloudFormation creates the new pair, points the same-named endpoint at it, then deletes the old pair."""
    pin = pinned(PROD)
    newer = dataclasses.replace(pin, version=8, model_package_arn=pin.model_package_arn.replace("/7", "/8"))
    before, after = _serving_template(pin), _serving_template(newer)

    def ids(template: dict[str, Any], resource_type: str) -> set[str]:
        return set(of_type(template, resource_type))

    for resource_type in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig"):
        assert ids(before, resource_type).isdisjoint(ids(after, resource_type)), resource_type
    assert ids(before, "AWS::SageMaker::Endpoint") == ids(after, "AWS::SageMaker::Endpoint")
    endpoint_before = one(before, "AWS::SageMaker::Endpoint")["Properties"]
    endpoint_after = one(after, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint_before["EndpointName"] == endpoint_after["EndpointName"] == "churn-prod-endpoint"
    [new_config] = ids(after, "AWS::SageMaker::EndpointConfig")
    assert endpoint_after["EndpointConfigName"] == {"Fn::GetAtt": [new_config, "EndpointConfigName"]}


def test_prod_runs_the_eval_only_pipeline_daily_on_the_last_days_captured_traffic(synthesized) -> None:
    """The monitoring path of every account: no Model Monitor involved, the same baseline through CheckDrift."""
    template = serving_template(synthesized, "prod")
    schedule = one(template, "AWS::Scheduler::Schedule")["Properties"]
    assert schedule["ScheduleExpression"] == PROD.capture_evaluation_schedule == "cron(0 7 ? * * *)"
    assert schedule["Target"]["Arn"].endswith(f":pipeline/{PROD.evaluation_pipeline_name}") or "Fn::Join" in str(
        schedule["Target"]["Arn"]
    )
    parameters = {
        p["Name"]: p["Value"] for p in schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
    }
    assert parameters["ExperimentId"] == "scheduled-capture-evaluation"
    assert parameters["CapturePeriodHours"] == "24.0"
    assert "data-capture/churn-prod-endpoint/" in str(parameters["InputDataUri"])
    assert "ground-truth/churn-prod-endpoint/" in str(parameters["GroundTruthUri"])


def test_without_labels_the_capture_schedule_keeps_the_ground_truth_placeholder() -> None:
    from stacks.serving_stack import capture_evaluation_parameters

    parameters = capture_evaluation_parameters(
        dataclasses.replace(PROD, capture_evaluation_ground_truth=False), "artifacts", "landing"
    )
    assert "GroundTruthUri" not in parameters
    assert parameters["InputDataUri"] == "s3://artifacts/data-capture/churn-prod-endpoint/"


def test_a_sandbox_has_no_capture_schedule(synthesized) -> None:
    assert not of_type(serving_template(synthesized, "dev/sandbox=ci"), "AWS::Scheduler::Schedule")
