"""The configuration type of one deployable unit, and the rules every value must follow.

Validation happens when a config is built, so a bad value stops `cdk synth` before any
construct exists, with one message that names the field and the fix.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import Any

from pipeline_defs.contract import APPROVAL_STATUSES, RETRY_MAX_ATTEMPTS_CAP, parse_duration

ENVIRONMENT_NAMES = ("dev", "staging", "prod")

_ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
_REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# Lower-case so the prefix is valid in S3 bucket names as well as everywhere else.
_NAME_PART_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_TAG_VALUE_PATTERN = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")
_INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_DATASET_PREFIX_PATTERN = re.compile(r"^(?:[A-Za-z0-9._-]+/)+$")
_MARKER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
# Model Monitor's cron grammar (CreateMonitoringSchedule): minute 0, then hourly `*`, daily `H`, or every N hours `H/N`.
_MONITORING_CRON_PATTERN = re.compile(r"^cron\(0 (?P<hour>\*|\d{1,2})(?:/(?P<every>\d{1,2}))? \? \* \* \*\)$")
# A StartTimeOffset/EndTimeOffset: a negative ISO 8601 duration in days, hours and minutes, at most 15 characters.
_OFFSET_PATTERN = re.compile(r"^-P(?=\d|T\d)(?:\d{1,4}D)?(?:T(?=\d)(?:\d{1,5}H)?(?:\d{1,6}M)?)?$")
# Hourly model-quality executions run a merge job and an analysis job within the hour (Model Monitor docs).
HOURLY_MONITORING_MAX_RUNTIME_SECONDS = 1800
# CreateProcessingJob's limit on ProcessingResources.ClusterConfig.InstanceCount (botocore's service model).
MAX_PROCESSING_INSTANCES = 100
MODEL_QUALITY_PROBLEM_TYPES = ("BinaryClassification",)
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SCHEDULE_PATTERN = re.compile(r"^(cron\([^)]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
# The only retention periods CloudWatch Logs accepts (RetentionInDays).
# fmt: off
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on

# Physical names humans rely on, with the limit and pattern of the service that owns them.
# SageMaker: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} for model package groups, 256 for pipelines.
# The group's 63 characters also bound the name prefix (56), so stack names (prefix + "-Orchestration") stay far
# below CloudFormation's 128.
_SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
NAME_LIMITS = {
    "model_package_group_name": 63,
    "training_pipeline_name": 256,
    "evaluation_pipeline_name": 256,
}


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the field and the fix."""

    def __init__(self, unit: str, field: str, problem: str, fix: str) -> None:
        self.unit = unit
        self.field = field
        super().__init__(f"config error in '{unit}', field '{field}': {problem}. Fix: {fix}")


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
    noncurrent_version_retention_days: int
    access_log_retention_days: int
    incomplete_upload_days: int = 7
    model_approval_status: str
    cache_expire_after: str
    # Absolute ROC AUC floor: a first model (no approved incumbent) registers only above it.
    minimum_score: float = 0.7
    # Producers write s3://<landing bucket>/<dataset_prefix><dataset-id>/... and the marker file last.
    dataset_prefix: str = "datasets/"
    # Recent labelled production data; the scheduled eval-only pipeline evaluates what is under it.
    evaluation_data_prefix: str = "evaluation/latest/"
    marker_name: str = "_SUCCESS"
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
        # The values' types are checked by __post_init__ (_check_types), with a message naming the field.
        return cls(**values)

    def __post_init__(self) -> None:
        self._check_types()
        unit = self.unit_name
        _require(
            unit,
            "env_name",
            self.env_name in ENVIRONMENT_NAMES,
            f"'{self.env_name}' is not an environment",
            f"use one of {', '.join(ENVIRONMENT_NAMES)}",
        )
        _require(
            unit,
            "project",
            bool(_NAME_PART_PATTERN.match(self.project)) and len(self.project) <= 20,
            f"'{self.project}' is not a valid project name",
            "use 1-20 lower-case letters, digits and single hyphens, starting with a letter",
        )
        if self.sandbox is not None:
            _require(
                unit,
                "sandbox",
                bool(_NAME_PART_PATTERN.match(self.sandbox)),
                f"'{self.sandbox}' has characters that cannot be part of resource names",
                "use lower-case letters, digits and single hyphens, starting with a letter (e.g. -c sandbox=alice)",
            )
            _require(
                unit,
                "sandbox",
                self.env_name == "dev",
                "sandboxes live in the dev account",
                "derive sandboxes from dev (drop -c env or pass -c env=dev)",
            )
        _require(
            unit,
            "account",
            bool(_ACCOUNT_PATTERN.match(self.account)),
            f"'{self.account}' is not an AWS account id",
            "use the 12-digit account id, as a string",
        )
        _require(
            unit,
            "region",
            bool(_REGION_PATTERN.match(self.region)),
            f"'{self.region}' is not an AWS region",
            "use an explicit region such as eu-west-1 (image URIs depend on it)",
        )
        for field in ("owner", "cost_center"):
            value = getattr(self, field)
            _require(
                unit,
                field,
                bool(_TAG_VALUE_PATTERN.match(value)),
                f"'{value}' cannot be a tag value",
                "use 1-256 letters, digits, spaces and _ . : / = + - @",
            )
        for field in ("processing_instance_type", "training_instance_type"):
            value = getattr(self, field)
            _require(
                unit,
                field,
                bool(_INSTANCE_TYPE_PATTERN.match(value)),
                f"'{value}' is not a SageMaker instance type",
                "use a type such as ml.m5.large",
            )
        _require(
            unit,
            "preprocess_instance_count",
            1 <= self.preprocess_instance_count <= MAX_PROCESSING_INSTANCES,
            f"{self.preprocess_instance_count} is outside 1..{MAX_PROCESSING_INSTANCES} instances",
            "use 1, or more instances (one share of the dataset's files each) for a dataset beyond one instance",
        )
        for field in ("noncurrent_version_retention_days", "access_log_retention_days", "incomplete_upload_days"):
            value = getattr(self, field)
            _require(
                unit,
                field,
                1 <= value <= 3650,
                f"{value} is outside 1..3650 days",
                "use a number of days in that range",
            )
        _require(
            unit,
            "model_approval_status",
            self.model_approval_status in APPROVAL_STATUSES,
            f"'{self.model_approval_status}' is not a model approval status",
            f"use one of {', '.join(APPROVAL_STATUSES)}",
        )
        _require(
            unit,
            "minimum_score",
            0.0 <= self.minimum_score <= 1.0,
            f"{self.minimum_score} is not a ROC AUC",
            "use a score between 0 and 1, e.g. 0.7",
        )
        _require(
            unit,
            "cache_expire_after",
            _is_duration(self.cache_expire_after),
            f"'{self.cache_expire_after}' is not an ISO 8601 duration",
            "use a duration such as P30D or PT12H",
        )
        for prefix_field in ("dataset_prefix", "evaluation_data_prefix"):
            prefix = getattr(self, prefix_field)
            _require(
                unit,
                prefix_field,
                bool(_DATASET_PREFIX_PATTERN.match(prefix)),
                f"'{prefix}' is not a usable S3 prefix",
                "use path segments of letters, digits and . _ - each ending with '/', e.g. datasets/",
            )
        _require(
            unit,
            "marker_name",
            bool(_MARKER_NAME_PATTERN.match(self.marker_name)),
            f"'{self.marker_name}' is not a usable marker file name",
            "use letters, digits and . _ -, e.g. _SUCCESS",
        )
        if self.evaluation_schedule is not None:
            _require(
                unit,
                "evaluation_schedule",
                bool(_SCHEDULE_PATTERN.match(self.evaluation_schedule)),
                f"'{self.evaluation_schedule}' is not a schedule expression",
                "use cron(...) or rate(...), e.g. cron(0 6 ? * MON *), or None to switch it off",
            )
        if self.capture_evaluation_schedule is not None:
            _require(
                unit,
                "capture_evaluation_schedule",
                bool(_SCHEDULE_PATTERN.match(self.capture_evaluation_schedule)),
                f"'{self.capture_evaluation_schedule}' is not a schedule expression",
                "use cron(...) or rate(...), e.g. cron(0 7 ? * * *), or None to switch it off",
            )
        _require(
            unit,
            "capture_evaluation_period_hours",
            1 <= self.capture_evaluation_period_hours <= 24 * 31,
            f"{self.capture_evaluation_period_hours} is outside 1..744",
            "use the schedule's interval in hours, e.g. 24 for a daily schedule",
        )
        _require(
            unit,
            "trigger_reserved_concurrency",
            1 <= self.trigger_reserved_concurrency <= 10,
            f"{self.trigger_reserved_concurrency} is outside 1..10",
            "one run per dataset needs little concurrency; use 1-10",
        )
        _require(
            unit,
            "log_retention_days",
            self.log_retention_days in LOG_RETENTION_DAYS,
            f"{self.log_retention_days} is not a CloudWatch Logs retention period",
            f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
        )
        _require(
            unit,
            "monthly_budget_usd",
            1 <= self.monthly_budget_usd <= 1_000_000,
            f"{self.monthly_budget_usd} is outside 1..1000000 USD",
            "give the unit a monthly cost limit in whole dollars, e.g. 200",
        )
        for email in self.notification_emails:
            _require(
                unit,
                "notification_emails",
                bool(_EMAIL_PATTERN.match(email)),
                f"{email!r} is not an email address",
                "list addresses such as ml-platform@example.com",
            )
        self._check_serving()
        self._check_retries()
        self._check_monitoring()
        self._check_names()

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            expected = hints[field.name]
            value = getattr(self, field.name)
            if typing.get_origin(expected) is tuple:  # tuple[str, ...]: a tuple of strings (a list would be mutable)
                if not (isinstance(value, tuple) and all(isinstance(item, str) for item in value)):
                    raise ConfigError(
                        self.unit_name,
                        field.name,
                        f"{value!r} is not a tuple of strings",
                        f"give {field.name} a tuple such as ('ml-platform@example.com',)",
                    )
                continue
            allowed = typing.get_args(expected) or (expected,)
            if value is None and type(None) in allowed:
                continue
            # bool is a subclass of int: an int field must not silently accept True.
            ok = any(
                isinstance(value, t) and not (t is int and isinstance(value, bool))
                for t in allowed
                if t is not type(None)
            )
            if not ok:
                names = " or ".join(t.__name__ for t in allowed)
                raise ConfigError(
                    self.unit_name,
                    field.name,
                    f"{value!r} is a {type(value).__name__}, not {names}",
                    f"give {field.name} a {names} value",
                )

    def _check_retries(self) -> None:
        unit = self.unit_name
        _require(
            unit,
            "step_retry_max_attempts",
            1 <= self.step_retry_max_attempts <= RETRY_MAX_ATTEMPTS_CAP,
            f"{self.step_retry_max_attempts} is outside 1..{RETRY_MAX_ATTEMPTS_CAP}",
            "use a small number of attempts, e.g. 3",
        )
        _require(
            unit,
            "step_retry_interval_seconds",
            1 <= self.step_retry_interval_seconds <= 3600,
            f"{self.step_retry_interval_seconds} is outside 1..3600 seconds",
            "wait e.g. 60 seconds before the first retry",
        )
        _require(
            unit,
            "step_retry_backoff_rate",
            1.0 <= self.step_retry_backoff_rate <= 10.0,
            f"{self.step_retry_backoff_rate} is outside 1..10",
            "multiply the wait by e.g. 2.0 per attempt",
        )

    def _check_serving(self) -> None:
        unit = self.unit_name
        _require(
            unit,
            "serving_instance_type",
            bool(_INSTANCE_TYPE_PATTERN.match(self.serving_instance_type)),
            f"'{self.serving_instance_type}' is not a SageMaker instance type",
            "use a type such as ml.m5.large",
        )
        _require(
            unit,
            "serving_instance_count",
            1 <= self.serving_instance_count <= 100,
            f"{self.serving_instance_count} is outside 1..100 instances",
            "serve with at least one instance",
        )
        maximum = self.serving_max_instance_count
        _require(
            unit,
            "serving_max_instance_count",
            maximum is None or self.serving_instance_count <= maximum <= 100,
            f"{maximum} is below serving_instance_count ({self.serving_instance_count}) or above 100",
            "use None (no autoscaling) or a maximum between serving_instance_count and 100",
        )
        for field, low, high in (
            ("capture_sampling_percentage", 0, 100),
            ("rollout_canary_percent", 1, 50),
            ("rollout_bake_seconds", 0, 3600),
            ("serving_invocations_per_instance", 1, 100_000),
            ("latency_alarm_p99_ms", 1, 60_000),
        ):
            value = getattr(self, field)
            _require(unit, field, low <= value <= high, f"{value} is outside {low}..{high}", "use a value in range")

    def _check_monitoring(self) -> None:
        unit = self.unit_name
        _require(
            unit,
            "monitoring_schedule",
            self.monitoring_interval_hours is not None,
            f"'{self.monitoring_schedule}' is not a Model Monitor schedule",
            "use cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H) or cron(0 H/N ? * * *) (every N h)",
        )
        _require(
            unit,
            "monitoring_instance_type",
            bool(_INSTANCE_TYPE_PATTERN.match(self.monitoring_instance_type)),
            f"'{self.monitoring_instance_type}' is not a SageMaker instance type",
            "use a type such as ml.m5.large",
        )
        limit = HOURLY_MONITORING_MAX_RUNTIME_SECONDS if self.monitoring_interval_hours == 1 else 86_400
        _require(
            unit,
            "monitoring_max_runtime_seconds",
            1 <= self.monitoring_max_runtime_seconds <= limit,
            f"{self.monitoring_max_runtime_seconds} is outside 1..{limit} seconds for this monitoring_schedule",
            "hourly executions get at most 1800 s, others at most 86400 s",
        )
        _require(
            unit,
            "model_quality_problem_type",
            self.model_quality_problem_type in MODEL_QUALITY_PROBLEM_TYPES,
            f"'{self.model_quality_problem_type}' is not what the model solves",
            "use BinaryClassification: the endpoint answers a churn probability",
        )
        _require(
            unit,
            "model_quality_probability_threshold",
            0.0 < self.model_quality_probability_threshold < 1.0,
            f"{self.model_quality_probability_threshold} is not a probability threshold",
            "use a value strictly between 0 and 1, e.g. 0.5",
        )
        for field in ("model_quality_start_offset", "model_quality_end_offset"):
            value = getattr(self, field)
            _require(
                unit,
                field,
                bool(_OFFSET_PATTERN.match(value)) and len(value) <= 15,
                f"'{value}' is not a Model Monitor time offset",
                "use a negative ISO 8601 duration of days/hours/minutes such as -P1D or -PT1H (15 characters at most)",
            )
        start, end = (
            parse_duration(value[1:]) for value in (self.model_quality_start_offset, self.model_quality_end_offset)
        )
        _require(
            unit,
            "model_quality_start_offset",
            start > end,
            f"the window {self.model_quality_start_offset}..{self.model_quality_end_offset} is empty",
            "start further back than the end, e.g. -P2D and -P1D",
        )
        for field, low, high in (("model_quality_tolerance", 0.0, 0.5), ("drift_alarm_threshold", 0.0, 1.0)):
            value = getattr(self, field)
            _require(unit, field, low < value <= high, f"{value} is outside ({low}, {high}]", "use a value in range")

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

    def _check_names(self) -> None:
        for field, limit in NAME_LIMITS.items():
            name = getattr(self, field)
            if len(name) > limit:
                culprit = "sandbox" if self.sandbox else "project"
                raise ConfigError(
                    self.unit_name,
                    culprit,
                    f"the derived name '{name}' is {len(name)} characters, over the limit of {limit}",
                    f"shorten {culprit} by at least {len(name) - limit} characters",
                )
            if not _SAGEMAKER_NAME_PATTERN.match(name):
                raise ConfigError(
                    self.unit_name, field, f"'{name}' is not a valid SageMaker name", "use letters, digits and hyphens"
                )

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


def _require(unit: str, field: str, condition: bool, problem: str, fix: str) -> None:
    if not condition:
        raise ConfigError(unit, field, problem, fix)


def _is_duration(value: str) -> bool:
    """SageMaker's ExpireAfter grammar (the contract's): case-insensitive ISO 8601, the leading P optional."""
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


def _unit_label(values: dict[str, object]) -> str:
    env_name = values.get("env_name", "?")
    sandbox = values.get("sandbox")
    return f"{env_name}/sandbox={sandbox}" if sandbox else str(env_name)
