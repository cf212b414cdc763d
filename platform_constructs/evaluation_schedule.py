"""Run a pipeline on a schedule: the eval-only pipeline, so a regression or drift of the approved model shows without
new data; the scoring pipeline, so the retention team's list is fresh."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from platform_constructs.dead_letter_queue import DeadLetterQueue

# Scheduler retries a failed StartPipelineExecution (throttling, pipeline busy) for up to an hour, then
# hands the attempt to the DLQ; a later retry would run close to, or on top of, the next scheduled run.
RETRY_ATTEMPTS = 10
MAX_EVENT_AGE_SECONDS = 3600


class EvaluationSchedule(Construct):
    """An EventBridge Scheduler schedule that starts `pipeline_name` with `pipeline_parameters` ({name: value}).

    L1 schedule: the L2 target `SageMakerStartPipelineExecution` needs an `IPipeline`, which no CDK class
    implements for a `CfnPipeline`. The schedule's role may start this one pipeline and write to its own
    dead-letter queue (Scheduler delivers dead letters with the schedule's role), nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        schedule_expression: str,
        pipeline_parameters: Mapping[str, str],
        purpose: str = "Re-evaluates the approved model",
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
        self.dead_letter_queue = DeadLetterQueue(self, "DeadLetterQueue").queue

        role = iam.Role(
            self,
            "Role",
            # Only schedules of this account may use the role (confused-deputy protection).
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"Lets EventBridge Scheduler start the SageMaker pipeline {pipeline_name}",
            inline_policies={
                "StartEvaluationPipeline": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]),
                        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]),
                    ]
                )
            },
        )

        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description=f"{purpose} with {pipeline_name}",
            schedule_expression=schedule_expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=pipeline_arn,
                role_arn=role.role_arn,
                sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[
                        scheduler.CfnSchedule.SageMakerPipelineParameterProperty(name=str(name), value=value)
                        for name, value in pipeline_parameters.items()
                    ]
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=RETRY_ATTEMPTS, maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letter_queue.queue_arn),
            ),
        )
