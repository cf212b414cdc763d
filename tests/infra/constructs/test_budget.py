"""UnitBudget alone: a monthly limit on the environment tag, three alerts to the topic, after its policies."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk.assertions import Template

from platform_constructs.budget import UnitBudget
from platform_constructs.notification_topic import NotificationTopic
from tests.infra.constructs.conftest import only


def test_budget_filters_on_the_environment_tag_and_alerts_the_topic(stack: Stack) -> None:
    topic = NotificationTopic(stack, "Notifications", emails=(), removal_policy=RemovalPolicy.DESTROY)
    UnitBudget(
        stack, "Budget", budget_name="churn-prod-monthly", monthly_limit_usd=1000, environment="prod", topic=topic
    )
    template = Template.from_stack(stack)
    _, budget = only(template.find_resources("AWS::Budgets::Budget"))
    topic_id, _ = only(template.find_resources("AWS::SNS::Topic"))
    assert budget["Properties"]["Budget"] == {
        "BudgetName": "churn-prod-monthly",
        "BudgetType": "COST",
        "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": 1000, "Unit": "USD"},
        "CostFilters": {"TagKeyValue": ["user:environment$prod"]},
    }
    alerts = [
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"], n["Notification"]["ThresholdType"])
        for n in budget["Properties"]["NotificationsWithSubscribers"]
    ]
    assert alerts == [("ACTUAL", 80, "PERCENTAGE"), ("ACTUAL", 100, "PERCENTAGE"), ("FORECASTED", 100, "PERCENTAGE")]
    for notification in budget["Properties"]["NotificationsWithSubscribers"]:
        assert notification["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": topic_id}}]
    policy_id, _ = only(template.find_resources("AWS::SNS::TopicPolicy"))
    key_id, _ = only(template.find_resources("AWS::KMS::Key"))
    # Budgets checks it may publish when the budget is created: both policies must exist first.
    assert {policy_id, key_id} <= set(budget["DependsOn"])
    publishers = [s.get("Principal") for s in _topic_statements(template)]
    assert {"Service": "budgets.amazonaws.com"} in publishers


def _topic_statements(template: Template) -> list[dict]:
    _, policy = only(template.find_resources("AWS::SNS::TopicPolicy"))
    statements: list[dict] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements
