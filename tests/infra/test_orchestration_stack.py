"""The orchestration stack: the dataset trigger (rule, function, DLQ, IAM) and the eval-only pipeline's schedule."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from aws_cdk.assertions import Template

from config import ConfigError, EnvironmentConfig
from config.environments import environment_values
from tests.helpers import FUNCTION_DIR, load_module
from tests.infra.conftest import ALL_UNITS

pytestmark = pytest.mark.heavy(seconds=8)  # scheduled first, longest first (tests/conftest.py)

SCHEDULED_UNITS = ["dev", "staging", "prod"]
SANDBOX_UNIT = "dev/sandbox=ci"
LANDING_BUCKET_ID = "TrainingDataBucketEEAF1117"
FOURTEEN_DAYS = 14 * 24 * 3600


def load_event_pattern_module() -> ModuleType:
    return load_module("event_pattern_under_test", FUNCTION_DIR / "event_pattern.py")


def orchestration(synthesized, unit: str) -> Template:
    stage, _ = synthesized(unit)
    return Template.from_stack(stage.orchestration)


def only(resources: dict) -> tuple[str, dict]:
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def logical_id(template: Template, resource_type: str, path_fragment: str) -> str:
    """The logical id of the one resource of `resource_type` whose id contains `path_fragment`."""
    matches = [lid for lid in template.find_resources(resource_type) if path_fragment in lid]
    assert len(matches) == 1, (resource_type, path_fragment, matches)
    return matches[0]


def named(resources: dict, prefix: str) -> dict:
    """The resources whose logical id starts with `prefix` (the construct: TrainingTrigger, EvaluationSchedule, ...)."""
    return {lid: resource for lid, resource in resources.items() if lid.startswith(prefix)}


def function_of(template: Template, trigger: str = "TrainingTrigger") -> tuple[str, dict]:
    return only(named(template.find_resources("AWS::Lambda::Function"), trigger))


def trigger_queue_id(template: Template) -> str:
    return logical_id(template, "AWS::SQS::Queue", "TrainingTriggerDeadLetterQueue")


def pipeline_arn(unit: str, pipeline_name: str) -> str:
    config = ALL_UNITS[unit]
    return f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/{pipeline_name}"


def landing_bucket_reference(synthesized, unit: str) -> dict:
    """How the orchestration stack refers to the storage stack's landing bucket (checked to lead to it)."""
    stage, _ = synthesized(unit)
    _, function = function_of(orchestration(synthesized, unit))
    reference = function["Properties"]["Environment"]["Variables"]["LANDING_BUCKET"]
    output_name = reference["Fn::GetStackOutput"]["OutputName"]
    assert reference["Fn::GetStackOutput"]["StackName"] == stage.storage.stack_name
    storage_outputs = Template.from_stack(stage.storage).to_json()["Outputs"]
    assert storage_outputs[output_name]["Value"] == {"Ref": LANDING_BUCKET_ID}
    return reference


def role_statements(template: Template, role_id: str) -> list[dict]:
    """Every statement granted to the role: its inline policies and every AWS::IAM::Policy attached to it."""
    role = template.find_resources("AWS::IAM::Role")[role_id]
    statements = [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


# --- the rule -------------------------------------------------------------------------------------------------


def trigger_rules(template):
    """The dataset trigger's rule(s); the lifecycle notification rules are tested in test_notifications.py."""
    rules = template.find_resources("AWS::Events::Rule")
    return {key: value for key, value in rules.items() if key.startswith("TrainingTrigger")}


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_rule_matches_exactly_the_shared_marker_pattern_of_the_landing_bucket(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    _, rule = only(trigger_rules(template))
    expected = load_event_pattern_module().marker_event_pattern(
        landing_bucket_reference(synthesized, unit), config.dataset_prefix, config.marker_name
    )
    assert rule["Properties"]["EventPattern"] == expected
    assert expected["detail"]["object"]["key"] == [{"wildcard": "datasets/*/_SUCCESS"}]
    # The default bus, where S3 sends its events.
    assert "EventBusName" not in rule["Properties"]
    assert rule["Properties"]["State"] == "ENABLED"


def test_rule_target_retries_then_dead_letters_into_the_queue(synthesized):
    template = orchestration(synthesized, "dev")
    rule_id, rule = only(trigger_rules(template))
    function_id, _ = function_of(template)
    queue_id = trigger_queue_id(template)
    assert rule["Properties"]["Targets"] == [
        {
            "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
            "Id": "Target0",
            "RetryPolicy": {"MaximumEventAgeInSeconds": 24 * 3600, "MaximumRetryAttempts": 185},
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}},
        }
    ]
    # EventBridge may invoke the function and write to the DLQ, each only on behalf of this rule.
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        },
    )
    queue_policy = next(
        p
        for p in template.find_resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    )
    allows = [s for s in queue_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert [{k: v for k, v in s.items() if k != "Sid"} for s in allows] == [
        {
            "Action": "sqs:SendMessage",
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        }
    ]


# --- the function ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_function_is_configured_only_through_its_four_environment_variables(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    _, function = function_of(template)
    props = function["Properties"]
    assert props["Environment"]["Variables"] == {
        "PIPELINE_NAME": config.training_pipeline_name,
        "LANDING_BUCKET": landing_bucket_reference(synthesized, unit),
        "DATASET_PREFIX": config.dataset_prefix,
        "MARKER_NAME": config.marker_name,
    }
    assert props["Handler"] == "handler.handler"
    assert props["Runtime"] == "python3.14"
    # The handler's boto retries (4 attempts x 25 s plus backoff) must fit in the timeout.
    assert props["Timeout"] == 120
    assert props["MemorySize"] == 256
    assert props["ReservedConcurrentExecutions"] == config.trigger_reserved_concurrency
    log_group_id = logical_id(template, "AWS::Logs::LogGroup", "TrainingTriggerLogGroup")
    assert props["LoggingConfig"] == {"LogFormat": "JSON", "LogGroup": {"Ref": log_group_id}}


def test_sandbox_function_runs_one_invocation_at_a_time(synthesized):
    _, function = function_of(orchestration(synthesized, SANDBOX_UNIT))
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1


def test_failed_async_invocations_are_retried_then_sent_to_the_queue(synthesized):
    template = orchestration(synthesized, "dev")
    function_id, _ = function_of(template)
    _, invoke_config = only(named(template.find_resources("AWS::Lambda::EventInvokeConfig"), "TrainingTrigger"))
    assert invoke_config["Properties"] == {
        "FunctionName": {"Ref": function_id},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 6 * 3600,
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [trigger_queue_id(template), "Arn"]}}},
    }


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_log_group_is_explicit_with_the_configured_retention(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    _, log_group = only(named(template.find_resources("AWS::Logs::LogGroup"), "TrainingTrigger"))
    assert log_group["Properties"]["RetentionInDays"] == config.log_retention_days
    assert log_group["DeletionPolicy"] == ("Retain" if config.retain_data else "Delete")
    # No deprecated log-retention custom resource (Function(log_retention=...)).
    template.resource_count_is("Custom::LogRetention", 0)


def test_log_retention_per_environment():
    assert {unit: config.log_retention_days for unit, config in ALL_UNITS.items()} == {
        "dev": 30,
        "staging": 90,
        "prod": 365,
        SANDBOX_UNIT: 7,
    }


def test_function_assets_are_the_handler_folders_without_bytecode(synthesized):
    _, assembly = synthesized("dev")
    outdir = Path(assembly.directory).parent
    staged = [path for path in outdir.glob("asset.*") if (path / "handler.py").exists()]
    # The start-pipeline folder (one asset for both triggers: same content), the retraining function's and the tracking
    # function's (Tracking stack).
    assert sorted(sorted(p.name for p in folder.iterdir()) for folder in staged) == [
        ["event_pattern.py", "handler.py"],
        ["handler.py"],
        ["handler.py", "run_structure.py"],
    ]


# --- least privilege ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_function_role_may_start_and_list_executions_of_the_training_pipeline_only(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    function_id, function = function_of(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role

    statements = role_statements(template, role_id)
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements)
    assert all(resource != "*" for s in statements for resource in as_list(s["Resource"]))
    grants = {
        (action, json.dumps(s["Resource"], sort_keys=True)) for s in statements for action in as_list(s["Action"])
    }
    training_pipeline = json.dumps(pipeline_arn(unit, config.training_pipeline_name))
    log_group = json.dumps(
        {"Fn::GetAtt": [logical_id(template, "AWS::Logs::LogGroup", "TrainingTriggerLogGroup"), "Arn"]}, sort_keys=True
    )
    queue = json.dumps({"Fn::GetAtt": [trigger_queue_id(template), "Arn"]}, sort_keys=True)
    assert grants == {
        ("sagemaker:StartPipelineExecution", training_pipeline),
        ("sagemaker:ListPipelineExecutions", training_pipeline),
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
        # The on-failure destination's grant (CDK's SqsDestination).
        ("sqs:SendMessage", queue),
        ("sqs:GetQueueAttributes", queue),
        ("sqs:GetQueueUrl", queue),
    }
    # The function's permissions are in place before it can run.
    assert (
        logical_id(template, "AWS::IAM::Policy", "TrainingTriggerRole")
        in template.to_json()["Resources"][function_id]["DependsOn"]
    )


# --- dead-letter queues ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_dead_letter_queues_are_encrypted_tls_only_and_keep_messages_14_days(synthesized, unit):
    template = orchestration(synthesized, unit)
    queues = template.find_resources("AWS::SQS::Queue")
    # The two triggers' (training, scoring); the eval-only schedule's and the retraining function's (not in sandboxes);
    # the scoring schedule's (prod).
    assert len(queues) == {SANDBOX_UNIT: 2, "prod": 5}.get(unit, 4)
    policies = template.find_resources("AWS::SQS::QueuePolicy").values()
    for queue_id, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, queue_id
        assert queue["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS, queue_id
        statements = [
            s
            for p in policies
            if {"Ref": queue_id} in p["Properties"]["Queues"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        } in statements, queue_id


# --- the evaluation schedule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", SCHEDULED_UNITS)
def test_schedule_starts_the_eval_pipeline_with_retries_and_a_dlq(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    _, schedule = only(named(template.find_resources("AWS::Scheduler::Schedule"), "EvaluationSchedule"))
    queue_id = logical_id(template, "AWS::SQS::Queue", "EvaluationScheduleDeadLetterQueue")
    role_id = logical_id(template, "AWS::IAM::Role", "EvaluationScheduleRole")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == config.evaluation_schedule
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["State"] == "ENABLED"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["Target"] == {
        "Arn": pipeline_arn(unit, config.evaluation_pipeline_name),
        "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "SageMakerPipelineParameters": {
            "PipelineParameterList": [{"Name": "ExperimentId", "Value": "scheduled-evaluation"}]
        },
        "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}},
    }


def test_prod_evaluates_daily_and_dev_weekly(synthesized):
    expressions = {
        unit: only(named(orchestration(synthesized, unit).find_resources("AWS::Scheduler::Schedule"), "Evaluation"))[1][
            "Properties"
        ]["ScheduleExpression"]
        for unit in SCHEDULED_UNITS
    }
    assert expressions == {
        "dev": "cron(0 6 ? * MON *)",
        "staging": "cron(0 6 ? * MON *)",
        "prod": "cron(0 6 ? * * *)",
    }


def test_sandbox_has_no_schedule(synthesized):
    stage, _ = synthesized(SANDBOX_UNIT)
    template = orchestration(synthesized, SANDBOX_UNIT)
    assert stage.orchestration.evaluation_schedule is None
    template.resource_count_is("AWS::Scheduler::Schedule", 0)
    roles = template.find_resources("AWS::IAM::Role")
    assert [lid for lid in roles if "EvaluationSchedule" in lid] == []
    assert "EvaluationScheduleDeadLetterQueueUrl" not in template.to_json()["Outputs"]


@pytest.mark.parametrize("unit", SCHEDULED_UNITS)
def test_scheduler_role_may_only_start_the_eval_pipeline_and_write_its_dlq(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    role_id = logical_id(template, "AWS::IAM::Role", "EvaluationScheduleRole")
    role = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": config.account}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role
    queue_id = logical_id(template, "AWS::SQS::Queue", "EvaluationScheduleDeadLetterQueue")
    assert role_statements(template, role_id) == [
        {
            "Action": "sagemaker:StartPipelineExecution",
            "Effect": "Allow",
            "Resource": pipeline_arn(unit, config.evaluation_pipeline_name),
        },
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [queue_id, "Arn"]}},
    ]


# --- the stack ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_outputs_give_the_replay_tool_its_arguments(synthesized, unit):
    template = orchestration(synthesized, unit)
    function_id, _ = function_of(template)
    outputs = template.to_json()["Outputs"]
    assert outputs["StartPipelineFunctionName"]["Value"] == {"Ref": function_id}
    assert outputs["TrainingTriggerDeadLetterQueueUrl"]["Value"] == {"Ref": trigger_queue_id(template)}
    if unit != SANDBOX_UNIT:
        queue_id = logical_id(template, "AWS::SQS::Queue", "EvaluationScheduleDeadLetterQueue")
        assert outputs["EvaluationScheduleDeadLetterQueueUrl"]["Value"] == {"Ref": queue_id}


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_stack_is_part_of_the_unit_and_deploys_after_storage(synthesized, unit):
    config = ALL_UNITS[unit]
    stage, _ = synthesized(unit)
    stack = stage.orchestration
    assert stack.stack_name == f"{config.name_prefix}-Orchestration"
    assert (stack.account, stack.region) == (config.account, config.region)
    assert stack.termination_protection is config.termination_protection
    assert stage.storage in stack.dependencies


@pytest.mark.parametrize("days", [0, 10, 4000])
def test_log_retention_must_be_a_cloudwatch_retention_period(days):
    with pytest.raises(ConfigError, match="is not a CloudWatch Logs retention period") as caught:
        EnvironmentConfig.create(**{**environment_values("dev"), "log_retention_days": days})
    assert caught.value.field == "log_retention_days"


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_each_unit_has_a_topic_and_each_environment_but_sandboxes_a_budget(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    topic_id, _ = only(template.find_resources("AWS::SNS::Topic"))
    assert template.to_json()["Outputs"]["NotificationTopicArn"]["Value"] == {"Ref": topic_id}
    emails = [s["Properties"]["Endpoint"] for s in template.find_resources("AWS::SNS::Subscription").values()]
    assert emails == list(config.notification_emails)
    budgets = template.find_resources("AWS::Budgets::Budget")
    if config.sandbox:
        assert budgets == {}  # dev's budget covers the sandboxes in its account
        return
    _, budget = only(budgets)
    assert budget["Properties"]["Budget"]["BudgetLimit"] == {"Amount": config.monthly_budget_usd, "Unit": "USD"}
    assert budget["Properties"]["Budget"]["CostFilters"] == {"TagKeyValue": [f"user:environment${config.env_name}"]}


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("monthly_budget_usd", 0, "outside 1..1000000 USD"),
        ("notification_emails", ("not-an-address",), "is not an email address"),
        ("notification_emails", ["a@example.com"], "is not a tuple of strings"),
    ],
)
def test_budget_and_email_config_is_validated(field, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        EnvironmentConfig.create(**{**environment_values("dev"), field: value})


# --- the scoring trigger and schedule -------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_a_customer_list_under_the_scoring_prefix_starts_the_scoring_pipeline_with_its_own_queue(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    _, rule = only(named(template.find_resources("AWS::Events::Rule"), "ScoringTrigger"))
    expected = load_event_pattern_module().marker_event_pattern(
        landing_bucket_reference(synthesized, unit), config.scoring_data_prefix, config.marker_name
    )
    assert rule["Properties"]["EventPattern"] == expected
    assert expected["detail"]["object"]["key"] == [{"wildcard": "scoring/*/_SUCCESS"}]
    function_id, function = function_of(template, "ScoringTrigger")
    assert function["Properties"]["Environment"]["Variables"] == {
        "PIPELINE_NAME": config.scoring_pipeline_name,
        "LANDING_BUCKET": landing_bucket_reference(synthesized, unit),
        "DATASET_PREFIX": config.scoring_data_prefix,
        "MARKER_NAME": config.marker_name,
    }
    queue_id = logical_id(template, "AWS::SQS::Queue", "ScoringTriggerDeadLetterQueue")
    assert rule["Properties"]["Targets"][0]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    outputs = template.to_json()["Outputs"]
    assert outputs["StartScoringFunctionName"]["Value"] == {"Ref": function_id}
    assert outputs["ScoringTriggerDeadLetterQueueUrl"]["Value"] == {"Ref": queue_id}


def test_only_prod_scores_on_a_schedule_monthly(synthesized):
    schedules = {
        unit: named(orchestration(synthesized, unit).find_resources("AWS::Scheduler::Schedule"), "ScoringSchedule")
        for unit in sorted(ALL_UNITS)
    }
    assert {unit: len(found) for unit, found in schedules.items()} == {unit: int(unit == "prod") for unit in schedules}
    _, schedule = only(schedules["prod"])
    target = schedule["Properties"]["Target"]
    assert schedule["Properties"]["ScheduleExpression"] == "cron(0 5 1 * ? *)"
    assert target["Arn"] == pipeline_arn("prod", ALL_UNITS["prod"].scoring_pipeline_name)
    parameters = target["SageMakerPipelineParameters"]["PipelineParameterList"]
    assert parameters == [{"Name": "ExperimentId", "Value": "scheduled-scoring"}]


# --- retraining on drift --------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_drift_alarms_and_runs_failed_by_drift_invoke_the_retraining_function_except_in_sandboxes(synthesized, unit):
    config = ALL_UNITS[unit]
    template = orchestration(synthesized, unit)
    rules = named(template.find_resources("AWS::Events::Rule"), "Retraining")
    if unit == SANDBOX_UNIT:
        assert rules == {} and named(template.find_resources("AWS::Lambda::Function"), "Retraining") == {}
        return
    function_id, function = function_of(template, "Retraining")
    assert function["Properties"]["Environment"]["Variables"]["TRAINING_PIPELINE"] == config.training_pipeline_name
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1
    patterns = {
        lid.removeprefix("Retraining").split("Rule")[0]: rule["Properties"]["EventPattern"]
        for lid, rule in rules.items()
    }
    alarm, failure = patterns["DriftAlarm"], patterns["DriftFailure"]
    assert alarm["detail"]["alarmName"] == [{"prefix": f"{config.name_prefix}-Monitoring-"}]
    assert alarm["detail"]["state"] == {"value": ["ALARM"]}
    assert failure["detail"]["currentPipelineExecutionStatus"] == ["Failed"]
    assert failure["detail"]["pipelineArn"] == [
        pipeline_arn(unit, name) for name in (config.evaluation_pipeline_name, config.scoring_pipeline_name)
    ]
    for rule in rules.values():
        assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    role_id = logical_id(template, "AWS::IAM::Role", "RetrainingRole")
    started = [s for s in role_statements(template, role_id) if "sagemaker:StartPipelineExecution" in s["Action"]]
    assert [s["Resource"] for s in started] == [pipeline_arn(unit, config.training_pipeline_name)]
