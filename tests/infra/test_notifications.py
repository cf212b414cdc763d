"""The unit's lifecycle notifications: each rule matches the documented sample event of its own unit only, and its
input transformer turns it into a readable message with the next command; every alarm tells the topic.

Sample events: tests/infra/fixtures/events/, in the shapes of "Events that Amazon SageMaker sends to Amazon
EventBridge" (pipeline execution status change, model package state change). Matching uses moto's implementation of
EventBridge patterns.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from tests.infra.conftest import stack_templates

EVENTS = Path(__file__).parent / "fixtures" / "events"


def sample(name: str, **detail: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["detail"].update(detail)
    return event


def rules(synthesized, unit: str) -> dict[str, dict[str, Any]]:
    """{rule construct id: its properties} of the unit's lifecycle rules."""
    template = stack_templates(synthesized(unit)[1])["Orchestration"]
    found = {}
    for logical_id, resource in template["Resources"].items():
        name = re.match(r"LifecycleNotifications(\w+?)[0-9A-F]{8}$", logical_id)
        if resource["Type"] == "AWS::Events::Rule" and name:
            found[name.group(1)] = resource["Properties"]
    return found


def matches(rule: dict[str, Any], event: dict[str, Any]) -> bool:
    return bool(EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event))


def message(rule: dict[str, Any], event: dict[str, Any]) -> str:
    """What SNS receives: the input template with each <name> replaced by its JSON path's value in `event`."""
    transformer = rule["Targets"][0]["InputTransformer"]
    values = {}
    for name, path in transformer["InputPathsMap"].items():
        value: Any = event
        for key in path.removeprefix("$.").split("."):
            value = value.get(key) if isinstance(value, dict) else None
        values[name] = value
    return json.loads(re.sub(r"<([\w-]+)>", lambda m: str(values[m.group(1)]), transformer["InputTemplate"]))


DEV_FAILED = sample("pipeline_execution_status_change")
DEV_PENDING = sample("model_package_state_change")


@pytest.mark.parametrize(
    ("rule", "event", "expected"),
    [
        ("PipelineEnded", DEV_FAILED, True),
        (
            "PipelineEnded",
            sample(
                "pipeline_execution_status_change",
                pipelineArn=DEV_FAILED["detail"]["pipelineArn"].replace("churn-dev-training", "churn-dev-scoring"),
            ),
            True,
        ),
        ("PipelineEnded", sample("pipeline_execution_status_change", currentPipelineExecutionStatus="Stopped"), True),
        (
            "PipelineEnded",
            sample("pipeline_execution_status_change", currentPipelineExecutionStatus="Succeeded"),
            False,
        ),
        (
            "TrainingSucceeded",
            sample("pipeline_execution_status_change", currentPipelineExecutionStatus="Succeeded"),
            True,
        ),
        ("TrainingSucceeded", DEV_FAILED, False),
        ("ReviewNeeded", DEV_PENDING, True),
        ("ReviewNeeded", sample("model_package_state_change", ModelApprovalStatus="Approved"), False),
        ("ApprovalChanged", sample("model_package_state_change", ModelApprovalStatus="Approved"), True),
        ("ApprovalChanged", sample("model_package_state_change", ModelApprovalStatus="Rejected"), True),
        ("ApprovalChanged", DEV_PENDING, False),
    ],
)
def test_each_rule_matches_its_events(synthesized, rule: str, event: dict, expected: bool) -> None:
    assert matches(rules(synthesized, "dev")[rule], event) is expected


def test_no_rule_matches_another_units_events(synthesized) -> None:
    prod_failed = copy.deepcopy(DEV_FAILED)
    prod_failed["detail"]["pipelineArn"] = prod_failed["detail"]["pipelineArn"].replace("churn-dev", "churn-prod")
    prod_pending = sample("model_package_state_change", ModelPackageGroupName="churn-prod-models")
    sandbox_failed = copy.deepcopy(DEV_FAILED)
    sandbox_failed["detail"]["pipelineArn"] = sandbox_failed["detail"]["pipelineArn"].replace("dev", "dev-ci")
    for rule in rules(synthesized, "dev").values():
        assert not any(matches(rule, event) for event in (prod_failed, prod_pending, sandbox_failed))
    sandbox_rules = rules(synthesized, "dev/sandbox=ci")
    assert matches(sandbox_rules["PipelineEnded"], sandbox_failed)
    assert not matches(sandbox_rules["PipelineEnded"], DEV_FAILED)


def test_messages_are_readable_and_say_what_to_run(synthesized) -> None:
    dev = rules(synthesized, "dev")
    failed = message(dev["PipelineEnded"], DEV_FAILED)
    assert failed.startswith("Failed: pipeline execution dataset-2026-11-20 (arn:aws:sagemaker:")
    assert "console.aws.amazon.com/sagemaker" in failed
    review = message(dev["ReviewNeeded"], DEV_PENDING)
    assert review.startswith("Review needed: churn-dev-models version 3 waits for approval")
    assert "(experiment dataset-2026-11-20)" in review
    assert "mlops registry approve 3 --env dev --reason" in review
    approved = sample("model_package_state_change", ModelApprovalStatus="Approved", ApprovalDescription="+0.01 AUC")
    assert message(dev["ApprovalChanged"], approved).startswith(
        "churn-dev-models version 3 is now Approved: +0.01 AUC."
    )
    sandbox_review = message(rules(synthesized, "dev/sandbox=ci")["ReviewNeeded"], DEV_PENDING)
    assert "--env dev --sandbox ci" in sandbox_review


def test_the_topic_lets_only_this_stacks_rules_and_this_accounts_alarms_publish(synthesized) -> None:
    template = stack_templates(synthesized("prod")[1])["Orchestration"]
    [policy] = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}
    events = statements["AllowPublishFromEventsAmazonawsCom"]
    assert events["Condition"]["ArnLike"]["aws:SourceArn"] == (
        "arn:aws:events:eu-west-1:333333333333:rule/churn-prod-Orchestration-*"
    )
    assert events["Condition"]["StringEquals"]["aws:SourceAccount"] == "333333333333"
    alarms = statements["AllowPublishFromCloudwatchAmazonawsCom"]
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == "arn:aws:cloudwatch:eu-west-1:333333333333:alarm:*"
    targets = [rule["Targets"][0]["Arn"] for rule in rules(synthesized, "prod").values()]
    assert len(targets) == 4 and all(target == {"Ref": targets[0]["Ref"]} for target in targets)


def test_every_serving_and_monitoring_alarm_notifies_the_topic(synthesized) -> None:
    templates = stack_templates(synthesized("prod")[1])
    alarms = [
        resource["Properties"]
        for stack in ("Serving", "Monitoring")
        for resource in templates[stack]["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert len(alarms) >= 4
    for alarm in alarms:
        [action] = alarm["AlarmActions"]
        assert "NotificationsTopic" in json.dumps(action)
        assert alarm["OKActions"] == alarm["AlarmActions"]


def test_the_tracking_rule_records_finished_executions_of_its_own_unit_only(synthesized) -> None:
    """Tracking in AWS: dev's function hears its pipelines' terminal states; a sandbox has no managed MLflow."""
    [rule] = [r["Properties"] for r in stack_templates(synthesized("dev")[1])["Tracking"]["Resources"].values()
              if r["Type"] == "AWS::Events::Rule"]  # fmt: skip
    for status in ("Succeeded", "Failed", "Stopped"):
        assert matches(rule, sample("pipeline_execution_status_change", currentPipelineExecutionStatus=status))
    evaluation = DEV_FAILED["detail"]["pipelineArn"].replace("training", "evaluation")
    assert matches(rule, sample("pipeline_execution_status_change", pipelineArn=evaluation))
    assert not matches(rule, sample("pipeline_execution_status_change", currentPipelineExecutionStatus="Executing"))
    for other in ("churn-prod", "churn-dev-ci"):
        arn = DEV_FAILED["detail"]["pipelineArn"].replace("churn-dev", other)
        assert not matches(rule, sample("pipeline_execution_status_change", pipelineArn=arn))
    assert "Tracking" not in stack_templates(synthesized("dev/sandbox=ci")[1])


def test_the_tracking_alarms_notify_the_topic(synthesized) -> None:
    templates = stack_templates(synthesized("dev")[1])
    alarms = [
        r["Properties"] for r in templates["Tracking"]["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert len(alarms) == 2
    for alarm in alarms:
        [action] = alarm["AlarmActions"]
        assert action["Fn::GetStackOutput"]["StackName"] == "churn-dev-Orchestration"
        assert "NotificationsTopic" in action["Fn::GetStackOutput"]["OutputName"]
        assert alarm["OKActions"] == alarm["AlarmActions"]
    [policy] = [r for r in templates["Orchestration"]["Resources"].values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    assert "AllowPublishFromCloudwatchAmazonawsCom" in {
        s.get("Sid") for s in policy["Properties"]["PolicyDocument"]["Statement"]
    }
