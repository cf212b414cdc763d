"""`mlops diff --env E` (botocore Stubber): what the next deploy changes, and what was changed in the console.

cdk.out is a small assembly holding the committed template snapshots (tests/infra/snapshots): a synthesized unit, so
no synth runs here. The deployed template and the live resources are derived from it, one change at a time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from config import load_config
from mlops import diff as diff_command
from mlops.cli import main
from tests.cli.conftest import stubbed_clients
from tests.helpers import REPO_ROOT

SNAPSHOTS = REPO_ROOT / "tests" / "infra" / "snapshots"
DEV = load_config("dev")
PROD = load_config("prod")
PROD_ARN = f"arn:aws:sagemaker:eu-west-1:{PROD.account}"
# What CloudFormation filled in when it deployed the dev unit: the values of the definitions' Fn::Sub variables.
DEPLOYED_VALUES = {
    "ArtifactsBucket": "churn-dev-storage-artifactsbucket454c14f5-1q2w3e4r5t6y",
    "LandingBucket": "churn-dev-storage-trainingdatabucketeeaf1117-7u8i9o0p",
    "DataKeyArn": "arn:aws:kms:eu-west-1:111111111111:key/0a1b2c3d-1111-2222-3333-444455556666",
    "PipelineRoleArn": "arn:aws:iam::111111111111:role/churn-dev-Pipelines-ExecutionRoleCDF74862-AbCdEf",
}
HAND_MADE_ROLE = "arn:aws:iam::111111111111:role/hand-made"
TRAINING, EVALUATION = DEV.training_pipeline_name, DEV.evaluation_pipeline_name


def snapshot(unit: str, stack: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads((SNAPSHOTS / unit / f"{stack}.json").read_text())
    return template


def assembly(tmp_path: Path, unit_prefix: str, templates: dict[str, dict[str, Any]]) -> Path:
    """A cloud assembly as `cdk synth` writes it (manifest + templates), holding `templates` ({stack id: template})."""
    directory = tmp_path / "cdk.out"
    directory.mkdir(parents=True)
    artifacts = {}
    for stack, template in templates.items():
        (directory / f"{stack}.template.json").write_text(json.dumps(template))
        artifacts[f"{unit_prefix}{stack}"] = {
            "type": "aws:cloudformation:stack",
            "displayName": f"{unit_prefix}/{stack}",
            "properties": {"templateFile": f"{stack}.template.json", "stackName": f"{unit_prefix}-{stack}"},
        }
    (directory / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    return directory


def definition_of(template: dict[str, Any], pipeline: str) -> str:
    """The Fn::Sub text of a pipeline's inline definition (the variables are `${Name}`)."""
    for resource in template["Resources"].values():
        if resource["Properties"].get("PipelineName") == pipeline:
            text: str = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
            return text
    raise AssertionError(f"no pipeline {pipeline}")


def with_definition(template: dict[str, Any], pipeline: str, edit: Any) -> dict[str, Any]:
    """A copy of `template` whose pipeline definition is `edit(definition)`."""
    changed = copy.deepcopy(template)
    for resource in changed["Resources"].values():
        if resource["Properties"].get("PipelineName") == pipeline:
            body = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
            body[0] = json.dumps(edit(json.loads(body[0])))
    return changed


def step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in definition["Steps"] if s["Name"] == name)
    return found


def live_definition(template: dict[str, Any], pipeline: str) -> str:
    """What DescribePipeline returns for a pipeline deployed from `template`: every variable filled in."""
    return re.sub(r"\$\{(\w+)\}", lambda match: DEPLOYED_VALUES[match.group(1)], definition_of(template, pipeline))


def described_pipeline(template: dict[str, Any], pipeline: str, definition: str | None = None) -> dict[str, Any]:
    return {
        "PipelineArn": f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{pipeline}",
        "PipelineName": pipeline,
        "PipelineDisplayName": pipeline,
        "PipelineDefinition": definition or live_definition(template, pipeline),
        "PipelineDescription": next(
            r["Properties"]["PipelineDescription"]
            for r in template["Resources"].values()
            if r["Properties"].get("PipelineName") == pipeline
        ),
        "RoleArn": DEPLOYED_VALUES["PipelineRoleArn"],
        "PipelineStatus": "Active",
    }


def run_diff(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cdk_out: Path,
    deployed: dict[str, Any] | None,
    live: dict[str, str | None],
    env: str = "dev",
) -> tuple[int, str, str]:
    """`mlops diff --env dev` with the Pipelines stack deployed from `deployed` and each pipeline live as `live`
    ({name: DescribePipeline's definition; None: not found; a pipeline not named: live as deployed})."""
    with stubbed_clients(monkeypatch, diff_command, "cloudformation", "sagemaker") as stubs:
        stack = f"churn-{env}-Pipelines"
        if deployed is None:
            stubs["cloudformation"].add_client_error(
                "get_template",
                "ValidationError",
                f"Stack with id {stack} does not exist",
                expected_params={"StackName": stack, "TemplateStage": "Original"},
            )
        else:
            stubs["cloudformation"].add_response(
                "get_template",
                {"TemplateBody": json.dumps(deployed), "StagesAvailable": ["Original", "Processed"]},
                expected_params={"StackName": stack, "TemplateStage": "Original"},
            )
            # In the template's order: the order the command reads them in.
            for pipeline in [
                r["Properties"]["PipelineName"]
                for r in deployed["Resources"].values()
                if "PipelineName" in r["Properties"]
            ]:
                # A pipeline the test says nothing about is live as deployed.
                definition = live[pipeline] if pipeline in live else live_definition(deployed, pipeline)
                if definition is None:
                    stubs["sagemaker"].add_client_error(
                        "describe_pipeline",
                        "ResourceNotFound",
                        f"Pipeline '{pipeline}' does not exist.",
                        expected_params={"PipelineName": pipeline},
                    )
                else:
                    stubs["sagemaker"].add_response(
                        "describe_pipeline",
                        described_pipeline(deployed, pipeline, definition),
                        expected_params={"PipelineName": pipeline},
                    )
        code = main(["diff", "--env", env, "--assembly", str(cdk_out)])
    out, err = capsys.readouterr()
    return code, out, err


def section(out: str, resource: str) -> list[str]:
    """The lines under one resource's line, up to the next resource or stack."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {resource}:"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    return [lines[start], *lines[start + 1 : end]]


@pytest.fixture
def pipelines_template() -> dict[str, Any]:
    return snapshot("dev", "Pipelines")


def test_a_deployed_definition_one_argument_behind_cdk_out_is_what_the_next_deploy_changes(
    tmp_path, monkeypatch, capsys, pipelines_template
):
    old_type = step(json.loads(definition_of(pipelines_template, TRAINING)), "Train")["Arguments"]["ResourceConfig"]
    deployed = with_definition(
        pipelines_template,
        TRAINING,
        lambda d: step(d, "Train")["Arguments"]["ResourceConfig"].update(InstanceType="ml.m5.4xlarge") or d,
    )
    live = {TRAINING: live_definition(deployed, TRAINING), EVALUATION: live_definition(deployed, EVALUATION)}

    code, out, err = run_diff(
        monkeypatch, capsys, assembly(tmp_path, "churn-dev", {"Pipelines": pipelines_template}), deployed, live
    )

    assert (code, err) == (0, "")
    assert section(out, f"pipeline {TRAINING}") == [
        f"  pipeline {TRAINING}: changes",
        "    the next deploy changes (deployed template -> cdk.out):",
        f"      Train.ResourceConfig.InstanceType: ml.m5.4xlarge -> {old_type['InstanceType']}",
    ]
    assert section(out, f"pipeline {EVALUATION}") == [f"  pipeline {EVALUATION}: no changes"]
    assert (
        out.splitlines()[1]
        == "the next deploy changes 1 resource; 0 resources changed in the console since the last deploy"
    )


def test_a_definition_edited_in_the_console_shows_against_the_deployed_template(
    tmp_path, monkeypatch, capsys, pipelines_template
):
    edited = json.loads(live_definition(pipelines_template, EVALUATION))
    cluster = step(edited, "Evaluate")["Arguments"]["ProcessingResources"]["ClusterConfig"]
    before = cluster["InstanceCount"]
    cluster["InstanceCount"] = before + 1
    live = {TRAINING: live_definition(pipelines_template, TRAINING), EVALUATION: json.dumps(edited)}

    code, out, _ = run_diff(
        monkeypatch,
        capsys,
        assembly(tmp_path, "churn-dev", {"Pipelines": pipelines_template}),
        pipelines_template,
        live,
    )

    assert code == 0
    # Every bucket name, key and role ARN in the live definition stands where the template has a placeholder: the
    # console's one change is all that shows, and the next deploy (same template) leaves it in place.
    assert section(out, f"pipeline {EVALUATION}") == [
        f"  pipeline {EVALUATION}: changes",
        "    changed in the console (deployed template -> AWS):",
        f"      Evaluate.ProcessingResources.ClusterConfig.InstanceCount: {before} -> {before + 1}",
        "    the next deploy keeps these: CloudFormation sees no change to this resource",
    ]
    assert section(out, f"pipeline {TRAINING}") == [f"  pipeline {TRAINING}: no changes"]


def test_a_role_changed_on_the_first_step_only_shows_on_that_step(tmp_path, monkeypatch, capsys, pipelines_template):
    # The deployed role fills the placeholder everywhere else: the placeholder stands for that value, not for the
    # first one met, so the one edited step is the one that shows.
    edited = json.loads(live_definition(pipelines_template, TRAINING))
    first = edited["Steps"][0]
    first["Arguments"]["RoleArn"] = HAND_MADE_ROLE
    live = {TRAINING: json.dumps(edited), EVALUATION: live_definition(pipelines_template, EVALUATION)}

    _, out, _ = run_diff(
        monkeypatch,
        capsys,
        assembly(tmp_path, "churn-dev", {"Pipelines": pipelines_template}),
        pipelines_template,
        live,
    )

    assert section(out, f"pipeline {TRAINING}")[1:3] == [
        "    changed in the console (deployed template -> AWS):",
        f"      {first['Name']}.RoleArn: <GetAtt ExecutionRoleCDF74862.Arn> -> {HAND_MADE_ROLE}",
    ]


def test_an_undeployed_stack_is_created_by_the_next_deploy_and_nothing_else_is_read(
    tmp_path, monkeypatch, capsys, pipelines_template
):
    code, out, _ = run_diff(
        monkeypatch, capsys, assembly(tmp_path, "churn-dev", {"Pipelines": pipelines_template}), None, {}
    )

    assert code == 0
    assert section(out, f"pipeline {TRAINING}") == [f"  pipeline {TRAINING}: created by the next deploy"]
    assert section(out, f"pipeline {EVALUATION}") == [f"  pipeline {EVALUATION}: created by the next deploy"]


def test_json_lists_each_resource_with_its_state_and_lines(tmp_path, monkeypatch, capsys, pipelines_template):
    cdk_out = assembly(tmp_path, "churn-dev", {"Pipelines": pipelines_template})
    with stubbed_clients(monkeypatch, diff_command, "cloudformation", "sagemaker") as stubs:
        stubs["cloudformation"].add_client_error(
            "get_template", "ValidationError", "Stack with id churn-dev-Pipelines does not exist"
        )
        assert main(["diff", "--env", "dev", "--assembly", str(cdk_out), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["unit"] == "churn-dev"
    assert {(r["stack"], r["resource"], r["state"]) for r in answer["resources"]} == {
        ("churn-dev-Pipelines", f"pipeline {name}", "created by the next deploy")
        for name in DEV.pipeline_names().values()
    }
    assert all(r["next_deploy"] == r["changed_in_console"] == [] for r in answer["resources"])


def test_a_pipeline_deleted_in_the_console_is_missing_in_aws(tmp_path, monkeypatch, capsys, pipelines_template):
    live = {TRAINING: None, EVALUATION: live_definition(pipelines_template, EVALUATION)}

    code, out, _ = run_diff(
        monkeypatch,
        capsys,
        assembly(tmp_path, "churn-dev", {"Pipelines": pipelines_template}),
        pipelines_template,
        live,
    )

    assert code == 0
    assert section(out, f"pipeline {TRAINING}") == [
        f"  pipeline {TRAINING}: missing in AWS: deleted outside CloudFormation"
    ]
    assert "1 resource changed in the console" in out


def test_a_cdk_out_of_another_unit_is_refused_in_one_line_before_any_aws_call(
    tmp_path, monkeypatch, capsys, pipelines_template
):
    cdk_out = assembly(tmp_path, "churn-staging", {"Pipelines": pipelines_template})
    with stubbed_clients(monkeypatch, diff_command, "cloudformation", "sagemaker"):  # no call expected
        code = main(["diff", "--env", "dev", "--assembly", str(cdk_out)])
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: {cdk_out} holds churn-staging, not churn-dev; synthesize the unit into its own folder first: "
        f"`cdk synth -c env=dev --output cdk.out`, then pass --assembly cdk.out\n"
    )


def test_a_missing_or_damaged_cdk_out_is_one_line_naming_it_and_the_synth(
    tmp_path, monkeypatch, capsys, pipelines_template
):
    damaged = assembly(tmp_path / "damaged", "churn-dev", {"Pipelines": pipelines_template})
    (damaged / "Pipelines.template.json").write_text('{"Resources": ')
    with stubbed_clients(monkeypatch, diff_command, "cloudformation", "sagemaker"):  # no call expected
        assert main(["diff", "--env", "dev", "--assembly", str(tmp_path / "nothing")]) == 2
        assert main(["diff", "--env", "dev", "--assembly", str(damaged)]) == 2
    missing, unreadable = capsys.readouterr().err.splitlines()
    assert missing.startswith(f"error: {tmp_path / 'nothing'} holds no synthesized unit") and "make synth" in missing
    assert unreadable.startswith("error: ") and "Pipelines.template.json" in unreadable and "make synth" in unreadable


# Serving and monitoring ------------------------------------------------------------------------------------------
def deployed_value(value: Any) -> Any:
    """A template value as CloudFormation resolves it: each reference becomes one made-up value of its own."""
    if isinstance(value, list):
        return [deployed_value(item) for item in value]
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(deployed_value(part) for part in parts)
    if isinstance(value, dict) and any(key == "Ref" or key.startswith("Fn::") for key in value):
        # Long enough for every ARN and name field's minimum length in the API's shapes.
        return f"arn:aws:resolved:eu-west-1:333333333333:{hashlib.sha256(json.dumps(value).encode()).hexdigest()[:12]}"
    if isinstance(value, dict):
        return {key: deployed_value(item) for key, item in value.items()}
    return value


def resource_of(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    properties: dict[str, Any] = next(
        r["Properties"] for r in template["Resources"].values() if r["Type"] == resource_type
    )
    return deployed_value({key: value for key, value in properties.items() if key != "Tags"})


def test_serving_and_monitoring_compare_the_endpoint_s_current_config_and_the_schedules(tmp_path, monkeypatch, capsys):
    serving, monitoring = snapshot("prod", "Serving"), snapshot("prod", "Monitoring")
    cdk_out = assembly(tmp_path, "churn-prod", {"Serving": serving, "Monitoring": monitoring})
    endpoint = resource_of(serving, "AWS::SageMaker::Endpoint")
    endpoint["LastDeploymentConfig"] = endpoint.pop("DeploymentConfig")
    config = resource_of(serving, "AWS::SageMaker::EndpointConfig")
    variant = config["ProductionVariants"][0]
    variant["InitialInstanceCount"] += 1  # scaled by hand: a new config made in the console, the endpoint moved to it
    schedules = [
        r["Properties"] for r in monitoring["Resources"].values() if r["Type"] == "AWS::SageMaker::MonitoringSchedule"
    ]
    times = {"CreationTime": "2026-12-01T00:00:00Z", "LastModifiedTime": "2026-12-01T00:00:00Z"}
    with stubbed_clients(monkeypatch, diff_command, "cloudformation", "sagemaker") as stubs:
        for stack, template in (("churn-prod-Serving", serving), ("churn-prod-Monitoring", monitoring)):
            stubs["cloudformation"].add_response(
                "get_template",
                {"TemplateBody": json.dumps(template)},
                expected_params={"StackName": stack, "TemplateStage": "Original"},
            )
            if stack.endswith("Serving"):
                stubs["sagemaker"].add_response(
                    "describe_endpoint",
                    {
                        **endpoint,
                        "EndpointConfigName": "hand-made-config",
                        "EndpointArn": f"{PROD_ARN}:endpoint/{PROD.endpoint_name}",
                        "EndpointStatus": "InService",
                        **times,
                    },
                    expected_params={"EndpointName": PROD.endpoint_name},
                )
                stubs["sagemaker"].add_response(
                    "describe_endpoint_config",
                    {
                        **config,
                        "EndpointConfigName": "hand-made-config",
                        "EndpointConfigArn": f"{PROD_ARN}:endpoint-config/hand-made-config",
                        "CreationTime": times["CreationTime"],
                    },
                    expected_params={"EndpointConfigName": "hand-made-config"},  # the one the endpoint runs
                )
            else:
                for schedule in schedules:
                    live = deployed_value({k: v for k, v in schedule.items() if k != "Tags"})
                    stubs["sagemaker"].add_response(
                        "describe_monitoring_schedule",
                        {
                            **live,
                            "MonitoringScheduleArn": f"{PROD_ARN}:monitoring-schedule/x",
                            "MonitoringScheduleStatus": "Scheduled",
                            **times,
                        },
                        expected_params={"MonitoringScheduleName": schedule["MonitoringScheduleName"]},
                    )
        code = main(["diff", "--env", "prod", "--assembly", str(cdk_out)])
    out = capsys.readouterr().out

    assert code == 0
    assert section(out, "endpoint config") == [
        "  endpoint config: changes",
        "    changed in the console (deployed template -> AWS):",
        f"      ProductionVariants[AllTraffic].InitialInstanceCount: {variant['InitialInstanceCount'] - 1} -> "
        f"{variant['InitialInstanceCount']}",
        "    the next deploy keeps these: CloudFormation sees no change to this resource",
    ]
    assert section(out, f"endpoint {PROD.endpoint_name}") == [f"  endpoint {PROD.endpoint_name}: no changes"]
    for schedule in schedules:
        name = schedule["MonitoringScheduleName"]
        assert section(out, f"monitoring schedule {name}") == [f"  monitoring schedule {name}: no changes"]


def test_a_missing_endpoint_leaves_its_config_uncompared_with_aws(tmp_path, monkeypatch, capsys):
    serving = snapshot("prod", "Serving")
    with stubbed_clients(monkeypatch, diff_command, "cloudformation", "sagemaker") as stubs:
        stubs["cloudformation"].add_response(
            "get_template",
            {"TemplateBody": json.dumps(serving)},
            expected_params={"StackName": "churn-prod-Serving", "TemplateStage": "Original"},
        )
        stubs["sagemaker"].add_client_error(
            "describe_endpoint",
            "ValidationException",
            f'Could not find endpoint "{PROD.endpoint_name}".',
            expected_params={"EndpointName": PROD.endpoint_name},
        )  # and no DescribeEndpointConfig: only the live endpoint knows its config's name
        code = main(
            ["diff", "--env", "prod", "--assembly", str(assembly(tmp_path, "churn-prod", {"Serving": serving}))]
        )
    out = capsys.readouterr().out
    assert code == 0
    assert section(out, f"endpoint {PROD.endpoint_name}") == [
        f"  endpoint {PROD.endpoint_name}: missing in AWS: deleted outside CloudFormation"
    ]
    assert section(out, "endpoint config") == [
        "  endpoint config: not compared with AWS: no live endpoint names its config"
    ]
    assert section(out, "model") == ["  model: no changes"]
