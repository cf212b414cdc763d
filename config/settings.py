"""The configuration type of one deployable unit.

Validation happens when a config is built, so a bad value stops `cdk synth` before any construct exists, with one
message that names the field and the fix: the rules, and why they are a table, are in config/rules.py.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from config.rules import ENVIRONMENT_NAMES, OWN_MODELS, ConfigError, check

# The GitHub environment of each unit, as the workflows name them: prod's has the required reviewers.
GITHUB_ENVIRONMENTS = {"dev": "dev", "staging": "staging", "prod": "production"}
# Model Monitor's cron grammar (CreateMonitoringSchedule): minute 0, then hourly `*`, daily `H`, or every N hours `H/N`.
_MONITORING_CRON_PATTERN = re.compile(r"^cron\(0 (?P<hour>\*|\d{1,2})(?:/(?P<every>\d{1,2}))? \? \* \* \*\)$")
# Hourly model-quality executions run a merge job and an analysis job within the hour (Model Monitor docs).
HOURLY_MONITORING_MAX_RUNTIME_SECONDS = 1800
# Other executions: at most a day (CreateMonitoringSchedule's MaxRuntimeInSeconds).
MONITORING_MAX_RUNTIME_SECONDS = 86_400


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Everything that differs between dev, staging, prod and a developer sandbox."""

    project: str
    env_name: str
    account: str
    region: str
    owner: str
    cost_center: str
    sandbox: str | None = None
    # Stateful resources (key, buckets, model registry) survive stack deletion when True.
    retain_data: bool
    termination_protection: bool
    processing_instance_type: str
    # Instances of the Preprocess job, each with its share of the dataset's files (ShardedByS3Key): more than one
    # when a dataset outgrows one instance's memory (README, "Scale").
    preprocess_instance_count: int = 1
    training_instance_type: str
    # The training engine (README, "Training engines"): 'scikit-learn' (one instance) or 'xgboost' (SageMaker's XGBoost
    # image, training_instance_count instances, each with its share of Preprocess's training files).
    training_engine: str = "scikit-learn"
    training_instance_count: int = 1
    noncurrent_version_retention_days: int
    access_log_retention_days: int
    incomplete_upload_days: int = 7
    model_approval_status: str
    cache_expire_after: str
    # The training gate is decided here: these are the defaults of its pipeline parameters (a run may pass others,
    # checked by the rules in pipeline_defs/contract.py). A candidate registers when its ROC AUC is at least
    # minimum_score (MinimumScore; an absolute floor, also for a first model and for the eval-only pipeline's health)
    # and, with an approved incumbent, the lower bound of the confidence_level interval on its regression (incumbent -
    # candidate ROC AUC) is at most max_regression (ConfidenceLevel goes to Evaluate, MaxRegression only to the gate).
    # A candidate exactly max_regression worse is then rejected with probability (1 - level) / 2 = 2.5 %.
    minimum_score: float = 0.7
    max_regression: float = 0.01
    confidence_level: float = 0.95
    # Producers write s3://<landing bucket>/<dataset_prefix><dataset-id>/... and the marker file last.
    dataset_prefix: str = "datasets/"
    # Recent labelled production data; the scheduled eval-only pipeline evaluates what is under it.
    evaluation_data_prefix: str = "evaluation/latest/"
    marker_name: str = "_SUCCESS"
    # The scoring pipeline (README, "Scoring the customer base"): a customer list landing as
    # s3://<landing bucket>/<scoring_data_prefix><dataset-id>/... (marker last) is scored by batch transform.
    scoring_data_prefix: str = "scoring/"
    # EventBridge Scheduler expression of the scoring pipeline; None: no schedule. A scheduled run scores what is under
    # <scoring_data_prefix>latest/.
    scoring_schedule: str | None = None
    # Which version scores: `pinned` (the unit's pin in config/deployments.json, else the latest Approved) or
    # `latest` (always the latest Approved); the pipeline's ModelPackageArn default, overridable per run.
    scoring_model: str = "pinned"
    transform_instance_type: str = "ml.m5.large"
    # Transform instances, each scoring whole objects of the prepared input (written as this many files).
    transform_instance_count: int = 2
    # Customers by highest score in the scoring summary (the retention team's list is the whole output).
    scoring_top_n: int = 20
    # Drift alarms and runs failed by drift start training on the newest dataset when it is newer than the approved
    # version's (else a "needs fresh labelled data" message): lambda/retrain. Off in sandboxes.
    auto_retrain: bool = True
    # EventBridge Scheduler expression for the eval-only pipeline; None switches the schedule off.
    evaluation_schedule: str | None = None
    # The path that works in every account (with or without Model Monitor): when a version is served, this schedule
    # runs the eval-only pipeline on the endpoint's capture of the last capture_evaluation_period_hours, merged with
    # the ground truth by inference id (None: off). Keep the period equal to the schedule's interval.
    capture_evaluation_schedule: str | None = None
    capture_evaluation_period_hours: int = 24
    # Whether producers send labels (mlops ground-truth put): without any, the runs check drift only (a processing
    # input may not be an empty S3 prefix, so the schedule then leaves GroundTruthUri at its placeholder).
    capture_evaluation_ground_truth: bool = True
    trigger_reserved_concurrency: int = 2
    # CloudWatch Logs retention of the platform's functions (the dataset trigger).
    log_retention_days: int = 30
    # AWS Budgets limit of the unit (USD a month; alerts at 80 %/100 % actual and 100 % forecast). Sandboxes share
    # dev's account and its budget, so they get none of their own.
    monthly_budget_usd: int = 100
    # Email subscriptions of the unit's notifications topic (budget alerts; each address confirms once by mail).
    notification_emails: tuple[str, ...] = ()
    # `mlops steps` calls a step's code (or an experiment file) stable once unchanged in git for this many days: the
    # team's rule for promoting notebook code into the pipeline.
    step_stable_after_days: int = 30
    # Retries of every processing/training step on transient service errors (capacity, throttling, internal).
    step_retry_max_attempts: int = 3
    step_retry_interval_seconds: int = 60
    step_retry_backoff_rate: float = 2.0
    # Serving: used only when config/deployments.json pins a model version for this unit (mlops promote).
    serving_instance_type: str = "ml.m5.large"
    serving_instance_count: int = 1
    # Application Auto Scaling between serving_instance_count and this; None: a fixed fleet.
    serving_max_instance_count: int | None = None
    # Target tracking: invocations per instance per minute (SageMakerVariantInvocationsPerInstance).
    serving_invocations_per_instance: int = 300
    # Share of requests the endpoint writes to data capture (the monitors read it).
    capture_sampling_percentage: int = 100
    # Blue/green with a canary and auto-rollback on the stack's alarms; False: SageMaker's all-at-once default.
    safe_rollout: bool = False
    rollout_canary_percent: int = 10
    # How long each traffic step bakes while the rollback alarms watch it.
    rollout_bake_seconds: int = 600
    # The latency rollback/alarm threshold: ModelLatency p99 over this many milliseconds.
    latency_alarm_p99_ms: int = 500
    # Model Monitor schedules on the endpoint (only when a version is pinned). Off where the account may not have
    # Model Monitor: it is closed to new customers since 2026-07-30.
    model_monitor: bool = False
    # When both monitors run (UTC): cron(0 * ? * * *) hourly, cron(0 H ? * * *) daily, cron(0 H/N ? * * *) every N h.
    monitoring_schedule: str = "cron(0 0 ? * * *)"
    monitoring_instance_type: str = "ml.m5.large"
    # Per execution; an hourly schedule allows at most 1800 s (the model-quality merge and analysis share it).
    monitoring_max_runtime_seconds: int = HOURLY_MONITORING_MAX_RUNTIME_SECONDS
    # The model is a binary classifier answering the churn probability: the analyzer thresholds it into a label.
    model_quality_problem_type: str = "BinaryClassification"
    model_quality_probability_threshold: float = 0.5
    # The model-quality window, relative to each execution: inferences from start to end offset are merged with
    # the ground truth that has arrived by then (labels arriving later are never counted).
    model_quality_start_offset: str = "-P2D"
    model_quality_end_offset: str = "-P1D"
    # Relative drop of an evaluation metric that counts as a model-quality violation (constraints and alarms). The
    # constraints are point comparisons against estimates from the evaluation slice, so a small tolerance alarms on an
    # unchanged model: the false-alarm rates by tolerance are in the README ("Monitoring locally"), measured by
    # bench/monitor_false_alarms.py.
    model_quality_tolerance: float = 0.15
    # A feature_baseline_drift_* metric above this alarms: the baseline's comparison_threshold.
    drift_alarm_threshold: float = 0.1
    # The GitHub repository (owner/name) whose workflows deploy this unit: its deploy role trusts only this
    # repository's OIDC tokens in the unit's GitHub environment (stacks/deployment_access_stack.py). None: no
    # deployment access (the unit is deployed from a laptop only).
    github_repository: str | None = None
    # An AWS Chatbot Slack channel subscribed to the notifications topic: the workspace id (from the Chatbot console,
    # after authorizing the workspace there once) and the channel id (C0123ABCD); both or neither.
    slack_workspace_id: str | None = None
    slack_channel_id: str | None = None
    # Build once, promote everywhere: `own` serves versions of the unit's own group; a unit name (e.g. dev) serves
    # versions registered in that unit's group, in its account, read cross-account (README, "One model, every account").
    model_source: str = OWN_MODELS
    # Managed MLflow (a serverless MLflow App) and the function that records every finished execution of the unit's
    # pipelines in it (README, "Tracking in AWS"). Off in sandboxes: their runs are a developer's trials.
    tracking_mlflow: bool = False

    @classmethod
    def create(cls, **values: Any) -> EnvironmentConfig:
        """Build a config, turning missing or unknown fields into a ConfigError."""
        unit = _unit_label(values)
        known = {f.name: f for f in dataclasses.fields(cls)}
        for name in values:
            if name not in known:
                raise ConfigError(unit, name, "unknown field", f"remove it or use one of {sorted(known)}")
        for name, field in known.items():
            has_default = field.default is not dataclasses.MISSING
            if name not in values and not has_default:
                raise ConfigError(unit, name, "required field is missing", f"add {name}=... to this environment")
        # The values' types are checked by __post_init__ (rules.check_types), with a message naming the field.
        return cls(**values)

    def __post_init__(self) -> None:
        check(self)

    @property
    def monitoring_interval_hours(self) -> int | None:
        """Hours between two monitoring executions (1 hourly, 24 daily), None if the schedule is not Model Monitor's."""
        match = _MONITORING_CRON_PATTERN.match(self.monitoring_schedule)
        if not match:
            return None
        hour, every = match["hour"], match["every"]
        if hour == "*":
            return None if every else 1
        interval = int(every) if every else 24
        return interval if int(hour) <= 23 and 1 <= interval <= 24 else None

    @property
    def monitoring_runtime_limit_seconds(self) -> int:
        """The longest execution monitoring_schedule allows: 1800 s when hourly, a day otherwise."""
        hourly = self.monitoring_interval_hours == 1
        return HOURLY_MONITORING_MAX_RUNTIME_SECONDS if hourly else MONITORING_MAX_RUNTIME_SECONDS

    @property
    def unit_name(self) -> str:
        """`dev`, `prod`, or `dev/sandbox=alice`: how errors and docs refer to this unit."""
        return f"{self.env_name}/sandbox={self.sandbox}" if self.sandbox else self.env_name

    @property
    def name_prefix(self) -> str:
        """`{project}-{env}[-{sandbox}]`: the prefix of every physical name and of the stage."""
        parts = [self.project, self.env_name] + ([self.sandbox] if self.sandbox else [])
        return "-".join(parts)

    def resource_name(self, purpose: str) -> str:
        return f"{self.name_prefix}-{purpose}"

    @property
    def model_package_group_name(self) -> str:
        return self.resource_name("models")

    @property
    def data_key_alias(self) -> str:
        """The alias of the unit's KMS key: how another account's roles name it (its id is generated)."""
        return f"alias/{self.resource_name('data')}"

    @property
    def serves_own_models(self) -> bool:
        return self.model_source == OWN_MODELS

    @property
    def mlflow_app_name(self) -> str:
        """The unit's MLflow App: the name people pick it by in SageMaker Studio."""
        return self.resource_name("mlflow")

    @property
    def endpoint_name(self) -> str:
        """The unit's real-time endpoint (fixed: clients, alarms and monitors call it by this name)."""
        return self.resource_name("endpoint")

    @property
    def training_pipeline_name(self) -> str:
        return self.resource_name("training")

    @property
    def evaluation_pipeline_name(self) -> str:
        return self.resource_name("evaluation")

    @property
    def scoring_pipeline_name(self) -> str:
        return self.resource_name("scoring")

    def pipeline_names(self) -> dict[str, str]:
        """{pipeline kind (`training`, `evaluation`, `scoring`): the unit's pipeline name}."""
        return {
            "training": self.training_pipeline_name,
            "evaluation": self.evaluation_pipeline_name,
            "scoring": self.scoring_pipeline_name,
        }

    @property
    def github_environment(self) -> str:
        """The GitHub environment that guards this unit's deploy job (.github/workflows/deploy.yml)."""
        return GITHUB_ENVIRONMENTS[self.env_name]

    @property
    def deploy_role_name(self) -> str:
        """The role CI assumes to deploy this unit: a fixed name, so its ARN is known before the first deploy."""
        return self.resource_name("github-deploy")

    @property
    def tags(self) -> dict[str, str]:
        """Cost-allocation tags put on every taggable resource of the unit."""
        tags = {
            "project": self.project,
            "environment": self.env_name,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "managed-by": "cdk",
        }
        # Sandboxes share the dev account: a tag of their own separates their cost from dev's.
        if self.sandbox:
            tags["sandbox"] = self.sandbox
        return tags


def _unit_label(values: dict[str, object]) -> str:
    env_name = values.get("env_name", "?")
    sandbox = values.get("sandbox")
    return f"{env_name}/sandbox={sandbox}" if sandbox else str(env_name)


__all__ = [
    "ENVIRONMENT_NAMES",
    "GITHUB_ENVIRONMENTS",
    "HOURLY_MONITORING_MAX_RUNTIME_SECONDS",
    "ConfigError",
    "EnvironmentConfig",
]
