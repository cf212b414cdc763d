"""The unit's managed MLflow and the function that records every finished execution of its pipelines there."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, Fn, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from pipeline_defs import contract
from platform_constructs.dead_letter_queue import DeadLetterQueue
from platform_constructs.training_trigger import RULE_MAX_EVENT_AGE, RULE_RETRY_ATTEMPTS, logged_function

FUNCTION_DIR = Path(__file__).resolve().parents[1] / "lambda" / "track_execution"
PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
TERMINAL_STATUSES = ["Succeeded", "Failed", "Stopped"]
# The MLflow App's artifact store: its own prefix of the artifacts bucket, beside the pipelines' outputs.
MLFLOW_ARTIFACTS_PREFIX = "mlflow/"
# The REST calls the function makes (handler.py): IAM's sagemaker-mlflow actions of the same names.
MLFLOW_ACTIONS = [
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:UpdateRun",
]
# A few dozen SageMaker and MLflow calls with boto's and the handler's own retries (3 attempts of at most 20 s each).
FUNCTION_TIMEOUT = Duration.minutes(5)


class ExecutionTracking(Construct):
    """A serverless MLflow App, and EventBridge -> Lambda -> MLflow's REST API for each finished execution.

    The App keeps its artifacts under `mlflow/` in the artifacts bucket (encrypted with the unit's data key) and runs
    with a role that may use that prefix and that key only. The function reads what `mlops report --env` reads (the
    execution, its steps, their processing jobs and JSON reports) and may call six MLflow operations on this App.
    Its failures are retried, then kept in `dead_letter_queue`; `alarms` (function errors, DLQ depth) are for the
    unit's topic (the stage adds the action).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        pipeline_names: Sequence[str],
        artifacts_bucket_name: str,
        artifacts_bucket_arn_export: str,
        data_key: kms.IKey,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        partition = RegionInfo.get(stack.region).partition or stack.partition
        artifacts_bucket_arn = Fn.import_value(artifacts_bucket_arn_export)

        def objects(prefix: str) -> str:
            return Fn.join("", [artifacts_bucket_arn, f"/{prefix}*"])

        self.app_role = iam.Role(
            self,
            "AppRole",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"The MLflow App {app_name}: its artifact store in the artifacts bucket",
            inline_policies={
                "ArtifactStore": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ReadWriteMlflowArtifacts",
                            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                            resources=[objects(MLFLOW_ARTIFACTS_PREFIX)],
                        ),
                        iam.PolicyStatement(
                            sid="ListMlflowArtifacts",
                            actions=["s3:ListBucket", "s3:GetBucketLocation"],
                            resources=[artifacts_bucket_arn],
                            conditions={"StringLike": {"s3:prefix": [f"{MLFLOW_ARTIFACTS_PREFIX}*", ""]}},
                        ),
                        # The bucket encrypts with the unit's data key (SSE-KMS): through S3 only.
                        iam.PolicyStatement(
                            sid="EncryptMlflowArtifacts",
                            actions=["kms:Decrypt", "kms:GenerateDataKey"],
                            resources=[data_key.key_arn],
                            conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
                        ),
                    ]
                )
            },
        )
        Validations.of(self.app_role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{artifacts_bucket_arn_export}/{MLFLOW_ARTIFACTS_PREFIX}*]",
                reason="The App writes each run's artifacts under keys it generates, all below its own prefix.",
            )
        )
        self.app = sagemaker.CfnMlflowApp(
            self,
            "App",
            name=app_name,
            artifact_store_uri=f"s3://{artifacts_bucket_name}/{MLFLOW_ARTIFACTS_PREFIX}",
            role_arn=self.app_role.role_arn,
            # Versions are registered by the training pipeline in the unit's model package group, with its gate.
            model_registration_mode="AutoModelRegistrationDisabled",
        )
        self.app.apply_removal_policy(removal_policy)

        self.dead_letter_queue = DeadLetterQueue(self, "DeadLetterQueue").queue
        self.function, self.log_group = logged_function(
            self,
            "Function",
            code_dir=FUNCTION_DIR,
            description=f"Records each finished execution of {', '.join(pipeline_names)} in the MLflow App {app_name}",
            environment={
                "MLFLOW_TRACKING_ARN": self.app.attr_arn,
                "PIPELINE_NAMES": ",".join(pipeline_names),
                "ARTIFACTS_BUCKET": artifacts_bucket_name,
            },
            role=self._function_role(partition, pipeline_names, data_key, artifacts_bucket_arn_export),
            # One at a time: two deliveries of one execution never race to create its parent run.
            reserved_concurrency=1,
            log_retention_days=log_retention_days,
            log_removal_policy=removal_policy,
            dead_letter_queue=self.dead_letter_queue,
            logged="execution ARNs, run ids and error messages",
            calls="the SageMaker, S3 (its step reports) and MLflow App APIs",
            timeout=FUNCTION_TIMEOUT,
        )
        pipeline_arns = [stack.format_arn(service="sagemaker", resource="pipeline", resource_name=name)
                         for name in pipeline_names]  # fmt: skip
        self.rule = events.Rule(
            self,
            "ExecutionEndedRule",
            description="A pipeline execution of this unit ended: record it in MLflow",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STATUS_CHANGE],
                detail={"pipelineArn": pipeline_arns, "currentPipelineExecutionStatus": TERMINAL_STATUSES},
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                retry_attempts=RULE_RETRY_ATTEMPTS,
                max_event_age=RULE_MAX_EVENT_AGE,
                dead_letter_queue=self.dead_letter_queue,
            )
        )
        self.alarms = [
            cloudwatch.Alarm(
                self,
                "FailuresAlarm",
                alarm_description="Recording a pipeline execution in MLflow failed (it is retried, then kept in the "
                "DLQ); the function's log says why",
                metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "DeadLetterAlarm",
                alarm_description="An execution could not be recorded in MLflow after all retries: its event waits "
                "in the DLQ (mlops dlq replay re-sends it)",
                metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum"
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]

    def _function_role(
        self, partition: str, pipeline_names: Sequence[str], data_key: kms.IKey, bucket_export: str
    ) -> iam.Role:
        """Read the executions, their jobs and reports; write runs to this App; its own log group."""
        stack = Stack.of(self)

        def sagemaker_arn(resource: str) -> str:
            return f"arn:{partition}:sagemaker:{stack.region}:{stack.account}:{resource}"

        executions = [sagemaker_arn(f"pipeline/{name}/execution/*") for name in pipeline_names]
        jobs = [sagemaker_arn(f"{kind}/{contract.PIPELINE_JOB_PREFIX}*") for kind in ("processing-job", "training-job")]
        reports = Fn.join("", [Fn.import_value(bucket_export), f"/{contract.ARTIFACTS_PREFIX}*"])
        role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Records finished pipeline executions of this unit in its MLflow App",
            inline_policies={
                "RecordExecutions": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ReadExecutions",
                            actions=[
                                "sagemaker:DescribePipelineExecution",
                                "sagemaker:ListPipelineExecutionSteps",
                                "sagemaker:ListPipelineParametersForExecution",
                            ],
                            resources=executions,
                        ),
                        iam.PolicyStatement(
                            sid="ReadStepJobs",
                            actions=["sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob"],
                            resources=jobs,
                        ),
                        iam.PolicyStatement(sid="ReadStepReports", actions=["s3:GetObject"], resources=[reports]),
                        iam.PolicyStatement(
                            sid="WriteRuns",
                            actions=["sagemaker:CallMlflowAppApi", *MLFLOW_ACTIONS],
                            resources=[self.app.attr_arn],
                        ),
                    ]
                )
            },
        )
        data_key.grant_decrypt(role)
        reasons = {
            **{
                f"Resource::arn:{partition}:sagemaker:{stack.region}:{stack.account}:pipeline/{name}/execution/*": (
                    "Executions of this unit's own pipelines; execution ids are generated at run time."
                )
                for name in pipeline_names
            },
            **{
                f"Resource::{job}": "SageMaker Pipelines names each job pipelines-<execution id>-... at run time."
                for job in jobs
            },
            f"Resource::{bucket_export}/{contract.ARTIFACTS_PREFIX}*": "Each execution writes its reports under its "
            "own id.",
        }
        Validations.of(role).acknowledge(
            *(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items())
        )
        return role
