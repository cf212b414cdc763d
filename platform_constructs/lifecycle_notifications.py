"""EventBridge rules that tell people, through the unit's topic, when the model lifecycle needs a human.

Each rule matches only this unit's pipelines or model package group and turns the event into a readable message
(an input transformer, not raw JSON) that names what happened and the command to run next.
"""

from __future__ import annotations

import jsii
from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

from platform_constructs.notification_topic import NotificationTopic

PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"


def _field(path: str) -> str:
    return events.EventField.from_path(path)


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """The topic as a rule target, with no permission of its own: the topic grants EventBridge publishing once,
    limited to this account's rules of this stack (NotificationTopic.allow_service_to_publish)."""

    def __init__(self, topic_arn: str, message: events.RuleTargetInput) -> None:
        self.topic_arn = topic_arn
        self.message = message

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic_arn, input=self.message)


class LifecycleNotifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: NotificationTopic,
        training_pipeline: str,
        evaluation_pipeline: str,
        scoring_pipeline: str,
        model_package_group: str,
        cli_options: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._topic = topic
        pipeline_arns = {
            name: f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:pipeline/{name}"
            for name in (training_pipeline, evaluation_pipeline, scoring_pipeline)
        }
        console = f"https://{stack.region}.console.aws.amazon.com/sagemaker/home?region={stack.region}#/pipelines"
        execution = f"{_field('$.detail.pipelineExecutionDisplayName')} ({_field('$.detail.pipelineExecutionArn')})"
        version = _field("$.detail.ModelPackageVersion")
        self.rules: dict[str, events.Rule] = {}
        self._rule(
            "PipelineEnded",
            "A training, eval-only or scoring execution failed or was stopped (a scoring run fails on drift)",
            self._pipeline_pattern(list(pipeline_arns.values()), ["Failed", "Stopped"]),
            f"{_field('$.detail.currentPipelineExecutionStatus')}: pipeline execution {execution} of "
            f"{_field('$.detail.pipelineArn')} ended at {_field('$.time')}. Steps and logs: {console}",
        )
        self._rule(
            "TrainingSucceeded",
            "A training execution succeeded (a version is registered only when the candidate passed the gate)",
            self._pipeline_pattern([pipeline_arns[training_pipeline]], ["Succeeded"]),
            f"Succeeded: training execution {execution}. New versions, if the candidate passed the gate: "
            f"mlops registry list {cli_options}",
        )
        self._rule(
            "ReviewNeeded",
            "A model version waits for a human's approval",
            self._package_pattern(model_package_group, ["PendingManualApproval"]),
            f"Review needed: {model_package_group} version {version} waits for approval "
            f"(experiment {_field('$.detail.CustomerMetadataProperties.experiment-id')}). "
            f"Look: mlops registry show {version} {cli_options} - then: mlops registry approve {version} "
            f'{cli_options} --reason "..." (or reject)',
        )
        self._rule(
            "ApprovalChanged",
            "A model version was approved or rejected",
            self._package_pattern(model_package_group, ["Approved", "Rejected"]),
            f"{model_package_group} version {version} is now {_field('$.detail.ModelApprovalStatus')}: "
            f"{_field('$.detail.ApprovalDescription')}. To serve an Approved version: mlops promote --version "
            f"{version} {cli_options}, then review and deploy the pin",
        )
        # One grant for every rule of this stack: EventBridge publishes as a service, limited to these rules.
        topic.allow_service_to_publish(
            "events.amazonaws.com",
            source_arn_pattern=f"arn:{stack.partition}:events:{stack.region}:{stack.account}:rule/{stack.stack_name}-*",
        )

    @staticmethod
    def _pipeline_pattern(pipeline_arns: list[str], statuses: list[str]) -> events.EventPattern:
        return events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=[PIPELINE_STATUS_CHANGE],
            detail={"pipelineArn": pipeline_arns, "currentPipelineExecutionStatus": statuses},
        )

    @staticmethod
    def _package_pattern(group: str, statuses: list[str]) -> events.EventPattern:
        return events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=[MODEL_PACKAGE_STATE_CHANGE],
            detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": statuses},
        )

    def _rule(self, construct_id: str, description: str, pattern: events.EventPattern, message: str) -> None:
        rule = events.Rule(self, construct_id, description=description, event_pattern=pattern)
        rule.add_target(_TopicTarget(self._topic.topic.topic_arn, events.RuleTargetInput.from_text(message)))
        self.rules[construct_id] = rule
