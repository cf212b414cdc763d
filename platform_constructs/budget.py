"""The unit's monthly cost budget: alerts on the notifications topic before the month's spend surprises anyone."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_budgets as budgets
from constructs import Construct

from platform_constructs.notification_topic import NotificationTopic

BUDGETS_SERVICE = "budgets.amazonaws.com"
# (notification type, percent of the limit): early warning at 80 % of actual spend, the limit reached, and a
# forecast that the month will end above it - the one alert that still leaves time to act.
ALERTS = (("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100))


class UnitBudget(Construct):
    """A monthly COST budget over everything tagged `environment=<environment>`, alerting through `topic`.

    The filter matches only once the `environment` tag is an active cost allocation tag in the payer account
    (`mlops cost tags --activate`); until then the budget sees no spend. Budgets refresh up to three times a day.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        budget_name: str,
        monthly_limit_usd: int,
        environment: str,
        topic: NotificationTopic,
    ) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        topic.allow_service_to_publish(
            BUDGETS_SERVICE, source_arn_pattern=f"arn:{Stack.of(self).partition}:budgets::{account}:*"
        )
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_limit_usd, unit="USD"),
                # user:<key>$<value>: a user-defined cost allocation tag. One value per budget (values are ORed).
                cost_filters={"TagKeyValue": [f"user:environment${environment}"]},
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=notification_type,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic.topic_arn)
                    ],
                )
                for notification_type, percent in ALERTS
            ],
        )
        # Budgets checks at creation that it may publish: create the topic policy and the key (its policy) first.
        # (The topic itself is referenced already; depending on it too is redundant, cfn-lint W3005.)
        topic_policy = topic.topic.node.try_find_child("Policy")
        self.budget.node.add_dependency(topic.key, *([topic_policy] if topic_policy is not None else []))
