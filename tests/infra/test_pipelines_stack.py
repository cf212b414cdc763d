"""The pipelines stack: CloudFormation-owned pipelines, token substitution, least-privilege execution role."""

from __future__ import annotations

import dataclasses
import json

import pytest
from aws_cdk import Environment, Stage, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

from pipeline_defs import definitions, graph
from stacks.pipelines_stack import PipelinesStack
from stacks.stage import new_app
from stacks.storage_stack import StorageStack
from tests.helpers import cdk_json_context
from tests.infra.conftest import ALL_UNITS
from tests.pipeline_defs.test_definition_validation import all_request_errors


def pipelines_template(synthesized, unit: str) -> Template:
    stage, _ = synthesized(unit)
    return Template.from_stack(stage.pipelines)


def role_statements(template: Template) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for policy in policies.values() for s in policy["Properties"]["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_every_pipeline_is_owned_by_cloudformation(synthesized, unit):
    config = ALL_UNITS[unit]
    pipelines = pipelines_template(synthesized, unit).find_resources("AWS::SageMaker::Pipeline")
    names = {p["Properties"]["PipelineName"] for p in pipelines.values()}
    assert names == set(config.pipeline_names().values())
    for pipeline in pipelines.values():
        body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
        template_text, variables = body
        definition = json.loads(template_text)
        assert definition["Version"] == "2020-12-01"
        # Every placeholder became a CloudFormation value; none survives into the deployed definition.
        for placeholder in (
            definitions.ROLE_ARN_PLACEHOLDER,
            definitions.KMS_KEY_ARN_PLACEHOLDER,
            definitions.ARTIFACTS_BUCKET_PLACEHOLDER,
            definitions.LANDING_BUCKET_PLACEHOLDER,
        ):
            assert placeholder not in template_text
        assert all(f"${{{name}}}" in template_text for name in variables)
        assert pipeline["Properties"]["RoleArn"] == {"Fn::GetAtt": [_role_logical_id(synthesized, unit), "Arn"]}


def _role_logical_id(synthesized, unit: str) -> str:
    roles = pipelines_template(synthesized, unit).find_resources("AWS::IAM::Role")
    assert len(roles) == 1
    return next(iter(roles))


def test_execution_role_is_least_privilege(synthesized):
    template = pipelines_template(synthesized, "prod")
    statements = role_statements(template)
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a in ("*", "sagemaker:*", "s3:*", "kms:*") for a in actions)
    star = {s["Sid"] for s in statements if s["Resource"] == "*"}
    # Only APIs without resource-level permissions may use "*".
    assert star == {"ListModelPackages", "PullFrameworkImageToken", "PublishJobMetrics"}
    publish = next(s for s in statements if s.get("Sid") == "PublishJobMetrics")
    assert publish["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    pass_role = next(s for s in statements if s.get("Sid") == "PassSelfToJobs")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    register = next(s for s in statements if s.get("Sid") == "RegisterAndReadModels")
    assert register["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:333333333333:model-package-group/churn-prod-models",
        "arn:aws:sagemaker:eu-west-1:333333333333:model-package/churn-prod-models/*",
    ]
    jobs = next(s for s in statements if s.get("Sid") == "RunPipelineJobs")
    assert jobs["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:333333333333:processing-job/pipelines-*",
        "arn:aws:sagemaker:eu-west-1:333333333333:training-job/pipelines-*",
        "arn:aws:sagemaker:eu-west-1:333333333333:transform-job/pipelines-*",
    ]
    assert template.find_resources("AWS::IAM::ManagedPolicy") == {}
    role = next(iter(template.find_resources("AWS::IAM::Role").values()))
    assert "ManagedPolicyArns" not in role["Properties"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "333333333333"}
    }


def test_step_code_reads_are_limited_to_this_units_assets(synthesized):
    statements = role_statements(pipelines_template(synthesized, "dev"))
    code = next(s for s in statements if s.get("Sid") == "ReadStepCode")
    # six processing scripts, the feature contract, two source tarballs, the step library
    assert len(code["Resource"]) == 10
    assert all(r.startswith("arn:aws:s3:::cdk-hnb659fds-assets-111111111111-eu-west-1/") for r in code["Resource"])
    assert not any(r.endswith("*") for r in code["Resource"])


def build_large_definition_unit(tmp_path, config=ALL_UNITS["dev"], inline_definition_limit_bytes=1000):
    """The dev unit's storage and pipelines with an inline limit so small that both definitions go to S3."""
    app = new_app(context=cdk_json_context(), outdir=str(tmp_path))
    stage = Stage(app, config.name_prefix, env=Environment(account=config.account, region=config.region))
    storage = StorageStack(stage, "Storage", config=config)
    pipelines = PipelinesStack(
        stage,
        "Pipelines",
        config=config,
        data_key=storage.data_key,
        artifacts_bucket_name=storage.artifacts_bucket.bucket_name,
        landing_bucket_name=storage.training_data_bucket.bucket_name,
        artifacts_bucket_arn_export=storage.artifacts_bucket_arn_export,
        landing_bucket_arn_export=storage.training_data_bucket_arn_export,
        inline_definition_limit_bytes=inline_definition_limit_bytes,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # cdk-nag: the S3 branch's acknowledgements must cover every finding
    return pipelines


def test_a_large_definition_switches_to_an_s3_location(tmp_path):
    pipelines = build_large_definition_unit(tmp_path)
    template = Template.from_stack(pipelines)
    for pipeline in template.find_resources("AWS::SageMaker::Pipeline").values():
        location = pipeline["Properties"]["PipelineDefinition"]
        assert set(location) == {"PipelineDefinitionS3Location"}
        assert location["PipelineDefinitionS3Location"]["Key"].startswith("pipeline-definitions/")
    deployments = template.find_resources("Custom::CDKBucketDeployment")
    assert len(deployments) == 3
    for deployment in deployments.values():
        # The tokens are resolved at deploy time, exactly as for the inline definition.
        marker = next(iter(deployment["Properties"]["SourceMarkers"][0].values()))
        assert "Fn::Sub" in marker
    findings = list(lint(json.dumps(template.to_json()), config=ManualArgs(regions=["eu-west-1"])))
    assert findings == []


@pytest.mark.heavy(seconds=4)  # a definition build for a config no other test builds, and a stack synth
def test_the_xgboost_engine_trains_on_several_instances_with_a_share_of_the_files_each(tmp_path):
    """training_engine xgboost: SageMaker's XGBoost image, training_instance_count instances, the train channel
    ShardedByS3Key over Preprocess's per-host files; the request validates against the API model, cdk-nag passes."""
    config = dataclasses.replace(
        ALL_UNITS["dev"], training_engine="xgboost", training_instance_count=2, preprocess_instance_count=2
    )
    pipelines = build_large_definition_unit(tmp_path, config, inline_definition_limit_bytes=10**6)  # cdk-nag
    bodies = Template.from_stack(pipelines).find_resources("AWS::SageMaker::Pipeline")
    [text] = [
        p["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
        for p in bodies.values()
        if p["Properties"]["PipelineName"] == config.training_pipeline_name
    ]
    # Back to the build's placeholders (the API model's check needs ARN- and bucket-shaped values, not ${...}).
    for variable, placeholder in definitions.PLACEHOLDERS.items():
        text = text.replace(f"${{{variable.value}}}", placeholder)
    training = json.loads(text)
    train = next(step for step in graph.steps(training) if step["Name"] == "Train")["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:3.0-5")
    assert train["ResourceConfig"]["InstanceCount"] == 2
    assert train["HyperParameters"]["sagemaker_program"] == "train_xgboost.py"
    distribution = {
        channel["ChannelName"]: channel["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for channel in train["InputDataConfig"]
    }
    assert distribution == {"train": "ShardedByS3Key", "validation": "FullyReplicated", "contract": "FullyReplicated"}
    assert all_request_errors(training) == {}
