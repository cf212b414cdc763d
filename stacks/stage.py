"""The deployable unit of one environment: its stacks, split by lifecycle, and its cost-allocation tags."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import App, Environment, Stage, Validations
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from config import EnvironmentConfig
from config.deployments import ModelPin
from config.environments import deployment_access_configs
from platform_constructs.tagging import apply_tags
from stacks.deployment_access_stack import DeploymentAccessStack
from stacks.orchestration_stack import OrchestrationStack
from stacks.pipelines_stack import PipelinesStack
from stacks.storage_stack import StorageStack

if TYPE_CHECKING:  # imported where used: a unit with no pinned model (the common synth) never loads them
    from stacks.monitoring_stack import MonitoringStack
    from stacks.serving_stack import ServingStack
    from stacks.tracking_stack import TrackingStack


class MlPlatformStage(Stage):
    """`cdk deploy '<prefix>/*'` deploys this; stack names are `<prefix>-<Stack>` (e.g. churn-prod-Storage)."""

    def __init__(self, scope: Construct, *, config: EnvironmentConfig, pin: ModelPin | None) -> None:
        super().__init__(scope, config.name_prefix, env=Environment(account=config.account, region=config.region))
        self.config = config
        self.storage = StorageStack(self, "Storage", config=config, description=_describe(config, "stateful storage"))
        self.pipelines = PipelinesStack(
            self,
            "Pipelines",
            config=config,
            data_key=self.storage.data_key,
            artifacts_bucket_name=self.storage.artifacts_bucket.bucket_name,
            landing_bucket_name=self.storage.training_data_bucket.bucket_name,
            artifacts_bucket_arn_export=self.storage.artifacts_bucket_arn_export,
            landing_bucket_arn_export=self.storage.training_data_bucket_arn_export,
            # The scoring pipeline scores the served version by default; a version of another unit's group is read
            # only by the serving and monitoring roles, so such a unit scores the latest Approved of its own group.
            pinned_package_arn=pin.model_package_arn if pin is not None and config.serves_own_models else None,
            description=_describe(config, "training, eval-only and scoring SageMaker pipelines, their execution role"),
        )
        self.orchestration = OrchestrationStack(
            self,
            "Orchestration",
            config=config,
            landing_bucket=self.storage.training_data_bucket,
            description=_describe(config, "dataset triggers, schedules, notifications topic, budget"),
        )
        # The trigger and the schedule start pipelines by name: deploy the pipelines first.
        self.orchestration.add_stack_dependency(self.pipelines, "the trigger and the schedule start its pipelines")
        # Only a unit that serves a pinned version (config/deployments.json, written by mlops promote) has one.
        self.serving: ServingStack | None = None
        if pin is not None:
            from stacks.serving_stack import ServingStack

            self.serving = ServingStack(
                self,
                "Serving",
                config=config,
                pin=pin,
                data_key=self.storage.data_key,
                artifacts_bucket_name=self.storage.artifacts_bucket.bucket_name,
                artifacts_bucket_arn_export=self.storage.artifacts_bucket_arn_export,
                landing_bucket_name=self.storage.training_data_bucket.bucket_name,
                description=_describe(config, f"endpoint serving model version {pin.version}, data capture"),
            )
            # Its schedule starts the eval-only pipeline on the captured traffic by name.
            self.serving.add_stack_dependency(self.pipelines, "its capture schedule starts the eval-only pipeline")
        # Model Monitor schedules on that endpoint, where the account has Model Monitor (config.model_monitor).
        self.monitoring: MonitoringStack | None = None
        if pin is not None and self.serving is not None and config.model_monitor:
            from stacks.monitoring_stack import MonitoringStack

            self.monitoring = MonitoringStack(
                self,
                "Monitoring",
                config=config,
                pin=pin,
                data_key=self.storage.data_key,
                artifacts_bucket_name=self.storage.artifacts_bucket.bucket_name,
                landing_bucket_name=self.storage.training_data_bucket.bucket_name,
                artifacts_bucket_arn_export=self.storage.artifacts_bucket_arn_export,
                landing_bucket_arn_export=self.storage.training_data_bucket_arn_export,
                description=_describe(config, f"Model Monitor schedules on {config.endpoint_name}, their alarms"),
            )
            # The schedules name the endpoint: CreateMonitoringSchedule refuses an endpoint that does not exist.
            self.monitoring.add_stack_dependency(self.serving, "the schedules monitor its endpoint by name")
            if self.serving.model_source is not None:  # the baselines are the source unit's, as the model is
                from platform_constructs.model_registry_access import MONITORING_ROLE, read_source_models

                read_source_models(self.monitoring.role, MONITORING_ROLE, config, self.serving.model_source)
        # Managed MLflow and the function that records each finished execution in it (config.tracking_mlflow).
        self.tracking: TrackingStack | None = None
        if config.tracking_mlflow:
            from stacks.tracking_stack import TrackingStack

            self.tracking = TrackingStack(
                self,
                "Tracking",
                config=config,
                data_key=self.storage.data_key,
                artifacts_bucket_name=self.storage.artifacts_bucket.bucket_name,
                artifacts_bucket_arn_export=self.storage.artifacts_bucket_arn_export,
                description=_describe(config, "MLflow App, the function that records each execution in it"),
            )
        # GitHub's OIDC provider and the deploy roles of this account, held by one unit per account (never a sandbox).
        self.deployment_access: DeploymentAccessStack | None = None
        if access_configs := deployment_access_configs(config):
            self.deployment_access = DeploymentAccessStack(
                self,
                "DeploymentAccess",
                configs=access_configs,
                description=_describe(
                    config,
                    "GitHub OIDC provider, deploy roles of " + ", ".join(c.github_environment for c in access_configs),
                ),
            )
        self._notify_on_alarms()
        apply_tags(self, config.tags)

    def _notify_on_alarms(self) -> None:
        """Every alarm of the serving, monitoring and tracking stacks tells the unit's notifications topic."""
        alarms = [
            *(self.serving.endpoint.alarms if self.serving else []),
            *(self.monitoring.alarms if self.monitoring else []),
            *(self.tracking.tracking.alarms if self.tracking else []),
        ]
        if not alarms:
            return
        topic = self.orchestration.notification_topic
        topic.allow_service_to_publish(
            "cloudwatch.amazonaws.com",
            source_arn_pattern=f"arn:aws:cloudwatch:{self.config.region}:{self.config.account}:alarm:*",
        )
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic.topic))
            alarm.add_ok_action(cloudwatch_actions.SnsAction(topic.topic))


def _describe(config: EnvironmentConfig, purpose: str) -> str:
    return f"{config.project} ML platform ({config.unit_name}): {purpose}"


def new_app(*, builtin_validation: bool = False, **props: Any) -> App:
    """The CDK App every synth of a unit starts from (app.py, the tests).

    CDK's built-in CloudFormation validation (a WASM rule engine plus CDK's default rules) is off by default: it costs
    ~2 s at start-up and more on this unit's templates, most of a `cdk synth`, and finds nothing cfn-lint does not
    already gate. It still runs on every unit in `make test` (tests/infra/test_gates.py, errors and warnings both
    fail), so nothing it would reject reaches main; app.py turns it on with `CDK_VALIDATION=true`.
    """
    return App(builtin_cloud_formation_validation=builtin_validation, **props)


def build_unit(app: App, config: EnvironmentConfig, pin: ModelPin | None = None) -> MlPlatformStage:
    """Add the unit of `config` (serving `pin`, if any) to `app`, with cdk-nag's AwsSolutions checks as a synth gate.

    Any unacknowledged cdk-nag finding makes `app.synth()` fail.
    """
    stage = MlPlatformStage(app, config=config, pin=pin)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stage
