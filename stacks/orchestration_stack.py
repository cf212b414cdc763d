"""Stateless orchestration: the dataset triggers (training, scoring), the schedules (eval-only, scoring), the
notifications topic and the budget."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config import EnvironmentConfig
from pipeline_defs.contract import Parameter
from platform_constructs.budget import UnitBudget
from platform_constructs.evaluation_schedule import EvaluationSchedule
from platform_constructs.lifecycle_notifications import LifecycleNotifications
from platform_constructs.notification_topic import NotificationTopic, SlackChannel
from platform_constructs.retraining_trigger import RetrainingTrigger
from platform_constructs.training_trigger import TrainingTrigger

# Every scheduled run shares one experiment id, so the cost report shows scheduled evaluation as one line.
SCHEDULED_EXPERIMENT_ID = "scheduled-evaluation"
SCHEDULED_SCORING_EXPERIMENT_ID = "scheduled-scoring"


class OrchestrationStack(Stack):
    """Starts pipelines by name, so it deploys independently of the pipelines' own stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        landing_bucket: s3.IBucket,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)

        def trigger(construct_id: str, pipeline_name: str, prefix: str) -> TrainingTrigger:
            return TrainingTrigger(
                self,
                construct_id,
                landing_bucket=landing_bucket,
                pipeline_name=pipeline_name,
                dataset_prefix=prefix,
                marker_name=config.marker_name,
                reserved_concurrency=config.trigger_reserved_concurrency,
                log_retention_days=config.log_retention_days,
                log_removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
            )

        self.training_trigger = trigger("TrainingTrigger", config.training_pipeline_name, config.dataset_prefix)
        # The same function and grammar for customer lists: <scoring_data_prefix><dataset-id>/<marker> starts scoring,
        # once per dataset, with its own dead-letter queue (`mlops dlq replay --trigger scoring`).
        self.scoring_trigger = trigger("ScoringTrigger", config.scoring_pipeline_name, config.scoring_data_prefix)
        # `mlops dlq replay` finds the queue URL and the function name in these outputs.
        outputs = {
            "TrainingTriggerDeadLetterQueueUrl": self.training_trigger.dead_letter_queue.queue_url,
            "StartPipelineFunctionName": self.training_trigger.function.function_name,
            "ScoringTriggerDeadLetterQueueUrl": self.scoring_trigger.dead_letter_queue.queue_url,
            "StartScoringFunctionName": self.scoring_trigger.function.function_name,
        }

        def schedule(
            construct_id: str, pipeline: str, expression: str | None, experiment: str, **purpose: str
        ) -> EvaluationSchedule | None:
            """The pipeline's schedule (None when its expression is: off), its queue in the outputs."""
            if expression is None:
                return None
            created = EvaluationSchedule(
                self,
                construct_id,
                pipeline_name=pipeline,
                schedule_expression=expression,
                pipeline_parameters={Parameter.EXPERIMENT_ID: experiment},
                **purpose,
            )
            outputs[f"{construct_id}DeadLetterQueueUrl"] = created.dead_letter_queue.queue_url
            return created

        self.evaluation_schedule: EvaluationSchedule | None = schedule(
            "EvaluationSchedule", config.evaluation_pipeline_name, config.evaluation_schedule, SCHEDULED_EXPERIMENT_ID
        )
        self.scoring_schedule: EvaluationSchedule | None = schedule(
            "ScoringSchedule",
            config.scoring_pipeline_name,
            config.scoring_schedule,
            SCHEDULED_SCORING_EXPERIMENT_ID,
            purpose="Scores the customer list under the scoring prefix's latest/ folder",
        )

        # One topic per unit; budgets publish to it now, approvals and alarms can later.
        self.notification_topic = NotificationTopic(
            self,
            "Notifications",
            emails=config.notification_emails,
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
            slack=_slack_channel(config),
        )
        outputs["NotificationTopicArn"] = self.notification_topic.topic.topic_arn
        self.lifecycle_notifications = LifecycleNotifications(
            self,
            "LifecycleNotifications",
            topic=self.notification_topic,
            training_pipeline=config.training_pipeline_name,
            evaluation_pipeline=config.evaluation_pipeline_name,
            scoring_pipeline=config.scoring_pipeline_name,
            model_package_group=config.model_package_group_name,
            cli_options=f"--env {config.env_name}" + (f" --sandbox {config.sandbox}" if config.sandbox else ""),
        )
        # Drift (Model Monitor's alarms, eval-only and scoring runs failed by drift) retrains only when it can help.
        self.retraining: RetrainingTrigger | None = None
        if config.auto_retrain:
            self.retraining = RetrainingTrigger(
                self,
                "Retraining",
                landing_bucket=landing_bucket,
                dataset_prefix=config.dataset_prefix,
                marker_name=config.marker_name,
                training_pipeline=config.training_pipeline_name,
                drift_pipelines=[config.evaluation_pipeline_name, config.scoring_pipeline_name],
                model_package_group=config.model_package_group_name,
                # CloudFormation names the Monitoring stack's alarms <stack name>-<logical id>-<suffix>.
                alarm_name_prefix=f"{config.name_prefix}-Monitoring-",
                topic=self.notification_topic,
                log_retention_days=config.log_retention_days,
                log_removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
            )
        # Sandboxes share dev's account (and its `environment=dev` tag): dev's budget already covers them.
        self.budget: UnitBudget | None = None
        if config.sandbox is None:
            self.budget = UnitBudget(
                self,
                "Budget",
                budget_name=config.resource_name("monthly"),
                monthly_limit_usd=config.monthly_budget_usd,
                environment=config.env_name,
                topic=self.notification_topic,
            )

        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)


def _slack_channel(config: EnvironmentConfig) -> SlackChannel | None:
    """The unit's Slack channel when config names one (its rules require both ids or neither)."""
    if config.slack_workspace_id is None or config.slack_channel_id is None:
        return None
    return SlackChannel(
        name=config.resource_name("notifications"),
        workspace_id=config.slack_workspace_id,
        channel_id=config.slack_channel_id,
    )
