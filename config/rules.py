"""The rules every config value must follow: a table with one row per check, each with the message it gives.

A declarative table rather than pydantic v2 (the other way the issue offers), because the table is the smaller of the
two and keeps every message by construction. The messages are part of the interface (`config error in '<unit>', field
'<f>': <problem>. Fix: <fix>`, read by people and asserted by tests/config), and pydantic's own are different ("Input
should be greater than or equal to 1"): behind a pydantic adapter every constraint would be stated twice, once as a
field constraint and once as the message its error is mapped back to, and the rules that read other fields (sandboxes
only in dev, the autoscaling maximum, the monitoring runtime per schedule, a non-empty window, derived name lengths)
would be validators raising these messages anyway. A row states its check and its message once. The config also
stays a frozen stdlib dataclass (stacks, the synth cache and tests use `dataclasses.replace`/`asdict`), and importing
it stays cheap for every `mlops` command (importing pydantic.dataclasses took 70-100 ms here, three times the whole
config package).

Checks run in this order, the first failing one raises: the declared types, then the rows of RULES top to bottom (a
row sees only values of the right type, and never an optional field's None: None means "off"), then the names derived
from project and sandbox.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from config import patterns
from pipeline_defs.contract import (
    APPROVAL_STATUSES,
    PARAMETER_RULES,
    RETRY_MAX_ATTEMPTS_CAP,
    TRAINING_ENGINES,
    Parameter,
    parse_duration,
)

if TYPE_CHECKING:  # the config type validates itself with these rules when it is built
    from config.settings import EnvironmentConfig

ENVIRONMENT_NAMES = ("dev", "staging", "prod")
# model_source's default: the unit serves versions of its own model package group.
OWN_MODELS = "own"
# CreateProcessingJob's limit on ProcessingResources.ClusterConfig.InstanceCount (botocore's service model).
MAX_PROCESSING_INSTANCES = 100
MODEL_QUALITY_PROBLEM_TYPES = ("BinaryClassification",)
# Physical names humans rely on, with the limit of the service that owns them (SageMaker: 63 characters for model
# package groups, 256 for pipelines). The group's 63 characters also bound the name prefix (56), so stack names
# (prefix + "-Orchestration") stay far below CloudFormation's 128.
NAME_LIMITS = {
    "model_package_group_name": 63,
    "training_pipeline_name": 256,
    "evaluation_pipeline_name": 256,
    "scoring_pipeline_name": 256,
}
SCORING_MODELS = ("pinned", "latest")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the field and the fix."""

    def __init__(self, unit: str, field: str, problem: str, fix: str) -> None:
        self.unit = unit
        self.field = field
        super().__init__(f"config error in '{unit}', field '{field}': {problem}. Fix: {fix}")


# (value, config) -> whether the value is acceptable; the config is there for the rules that compare with other fields.
Check = Callable[[Any, "EnvironmentConfig"], bool]


@dataclass(frozen=True)
class Rule:
    """Each of `fields` (each item of it, with `each`) must pass `holds`; otherwise the error says `problem` and `fix`,
    both str.format templates of {value} and {config} (e.g. {config.serving_instance_count})."""

    fields: str | tuple[str, ...]
    holds: Check
    problem: str
    fix: str
    each: bool = False


def matches(pattern: re.Pattern[str]) -> Check:
    return lambda value, _config: bool(pattern.match(value))


def within(low: float, high: float) -> Check:
    """Inclusive range."""
    return lambda value, _config: low <= value <= high


def one_of(allowed: Collection[object]) -> Check:
    return lambda value, _config: value in allowed


def parameter_rule(parameter: Parameter) -> Check:
    """The rule of the pipeline parameter whose default the field is (contract.PARAMETER_RULES): stated once."""

    def holds(value: object, _config: EnvironmentConfig) -> bool:
        try:
            PARAMETER_RULES[parameter.value](value)
        except ValueError:
            return False
        return True

    return holds


def _is_duration(value: str, _config: EnvironmentConfig) -> bool:
    """SageMaker's ExpireAfter grammar (the contract's): case-insensitive ISO 8601, the leading P optional."""
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


def from_source(holds: Callable[[dict[str, Any], EnvironmentConfig], bool]) -> Check:
    """A model_source rule on the source unit's raw values (its built config would check its own source in turn)."""

    def check_source(value: str, config: EnvironmentConfig) -> bool:
        from config.environments import environment_values  # the table imports this module

        return value == OWN_MODELS or holds(environment_values(value), config)

    return check_source


def _in_range(*fields: tuple[str, float, float]) -> list[Rule]:
    """Inclusive ranges that need no more explanation than their bounds."""
    return [
        Rule(f, within(low, high), f"{{value}} is outside {low}..{high}", "use a value in range")
        for f, low, high in fields
    ]


_INSTANCE_TYPE_RULE = ("'{value}' is not a SageMaker instance type", "use a type such as ml.m5.large")
_SCHEDULE_PROBLEM = "'{value}' is not a schedule expression"
_SCHEDULE_FIX = "use cron(...) or rate(...), e.g. {example}, or None to switch it off"

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("env_name", one_of(ENVIRONMENT_NAMES),
         "'{value}' is not an environment", f"use one of {', '.join(ENVIRONMENT_NAMES)}"),
    Rule("project", lambda value, _config: bool(patterns.NAME_PART.match(value)) and len(value) <= 20,
         "'{value}' is not a valid project name",
         "use 1-20 lower-case letters, digits and single hyphens, starting with a letter"),
    Rule("sandbox", matches(patterns.NAME_PART),
         "'{value}' has characters that cannot be part of resource names",
         "use lower-case letters, digits and single hyphens, starting with a letter (e.g. -c sandbox=alice)"),
    Rule("sandbox", lambda _value, config: config.env_name == "dev",
         "sandboxes live in the dev account", "derive sandboxes from dev (drop -c env or pass -c env=dev)"),
    Rule("account", matches(patterns.ACCOUNT),
         "'{value}' is not an AWS account id", "use the 12-digit account id, as a string"),
    Rule("region", matches(patterns.REGION),
         "'{value}' is not an AWS region", "use an explicit region such as eu-west-1 (image URIs depend on it)"),
    Rule(("owner", "cost_center"), matches(patterns.TAG_VALUE),
         "'{value}' cannot be a tag value", "use 1-256 letters, digits, spaces and _ . : / = + - @"),
    Rule(("processing_instance_type", "training_instance_type", "transform_instance_type"),
         matches(patterns.INSTANCE_TYPE), *_INSTANCE_TYPE_RULE),
    Rule("preprocess_instance_count", within(1, MAX_PROCESSING_INSTANCES),
         f"{{value}} is outside 1..{MAX_PROCESSING_INSTANCES} instances",
         "use 1, or more instances (one share of the dataset's files each) for a dataset beyond one instance"),
    Rule("training_engine", lambda v, c: 0 < c.training_instance_count <= TRAINING_ENGINES.get(v, 0),
         "'{value}' on {config.training_instance_count} instances", "use scikit-learn on 1, or xgboost on 1-100"),
    Rule(("noncurrent_version_retention_days", "access_log_retention_days", "incomplete_upload_days"), within(1, 3650),
         "{value} is outside 1..3650 days", "use a number of days in that range"),
    Rule("model_approval_status", one_of(APPROVAL_STATUSES),
         "'{value}' is not a model approval status", f"use one of {', '.join(APPROVAL_STATUSES)}"),
    # The training gate's defaults follow the rules of the parameters they are the defaults of.
    Rule("minimum_score", within(0.0, 1.0), "{value} is not a ROC AUC", "use a score between 0 and 1, e.g. 0.7"),
    Rule("max_regression", parameter_rule(Parameter.MAX_REGRESSION),
         "{value} is not an allowed drop of ROC AUC", "use a finite number >= 0, e.g. 0.01"),
    Rule("confidence_level", parameter_rule(Parameter.CONFIDENCE_LEVEL),
         "{value} is not a confidence level", "use a level with 0.5 <= level < 1, e.g. 0.95"),
    Rule("cache_expire_after", _is_duration,
         "'{value}' is not an ISO 8601 duration", "use a duration such as P30D or PT12H"),
    Rule(("dataset_prefix", "evaluation_data_prefix", "scoring_data_prefix"), matches(patterns.DATASET_PREFIX),
         "'{value}' is not a usable S3 prefix",
         "use path segments of letters, digits and . _ - each ending with '/', e.g. datasets/"),
    Rule("marker_name", matches(patterns.MARKER_NAME),
         "'{value}' is not a usable marker file name", "use letters, digits and . _ -, e.g. _SUCCESS"),
    Rule("evaluation_schedule", matches(patterns.SCHEDULE),
         _SCHEDULE_PROBLEM, _SCHEDULE_FIX.format(example="cron(0 6 ? * MON *)")),
    Rule("scoring_data_prefix", lambda v, c: not (v.startswith(c.dataset_prefix) or c.dataset_prefix.startswith(v)),
         "'{value}' overlaps dataset_prefix '{config.dataset_prefix}'", "give scoring its own prefix, e.g. scoring/"),
    Rule("scoring_schedule", matches(patterns.SCHEDULE),
         _SCHEDULE_PROBLEM, _SCHEDULE_FIX.format(example="cron(0 5 1 * ? *)")),
    Rule("scoring_model", one_of(SCORING_MODELS),
         "'{value}' is not a scoring model choice", f"use one of {', '.join(SCORING_MODELS)}"),
    Rule("transform_instance_count", within(1, MAX_PROCESSING_INSTANCES),
         f"{{value}} is outside 1..{MAX_PROCESSING_INSTANCES}", "use 1 or a few instances, e.g. 2"),
    Rule("scoring_top_n", within(1, 1000), "{value} is outside 1..1000", "list a handful of customers, e.g. 20"),
    Rule("capture_evaluation_schedule", matches(patterns.SCHEDULE),
         _SCHEDULE_PROBLEM, _SCHEDULE_FIX.format(example="cron(0 7 ? * * *)")),
    Rule("capture_evaluation_period_hours", within(1, 24 * 31),
         "{value} is outside 1..744", "use the schedule's interval in hours, e.g. 24 for a daily schedule"),
    Rule("trigger_reserved_concurrency", within(1, 10),
         "{value} is outside 1..10", "one run per dataset needs little concurrency; use 1-10"),
    Rule("log_retention_days", one_of(patterns.LOG_RETENTION_DAYS),
         "{value} is not a CloudWatch Logs retention period",
         f"use one of {', '.join(map(str, patterns.LOG_RETENTION_DAYS))}"),
    Rule("monthly_budget_usd", within(1, 1_000_000),
         "{value} is outside 1..1000000 USD", "give the unit a monthly cost limit in whole dollars, e.g. 200"),
    Rule("notification_emails", matches(patterns.EMAIL),
         "{value!r} is not an email address", "list addresses such as ml-platform@example.com", each=True),
    # Serving
    Rule("serving_instance_type", matches(patterns.INSTANCE_TYPE), *_INSTANCE_TYPE_RULE),
    Rule("serving_instance_count", within(1, 100),
         "{value} is outside 1..100 instances", "serve with at least one instance"),
    Rule("serving_max_instance_count", lambda value, config: config.serving_instance_count <= value <= 100,
         "{value} is below serving_instance_count ({config.serving_instance_count}) or above 100",
         "use None (no autoscaling) or a maximum between serving_instance_count and 100"),
    *_in_range(
        ("capture_sampling_percentage", 0, 100),
        ("rollout_canary_percent", 1, 50),
        ("rollout_bake_seconds", 0, 3600),
        ("serving_invocations_per_instance", 1, 100_000),
        ("latency_alarm_p99_ms", 1, 60_000),
    ),
    Rule("step_stable_after_days", within(1, 3650),
         "{value} is outside 1..3650 days", "call code stable after e.g. 30 days unchanged"),
    # Retries
    Rule("step_retry_max_attempts", within(1, RETRY_MAX_ATTEMPTS_CAP),
         f"{{value}} is outside 1..{RETRY_MAX_ATTEMPTS_CAP}", "use a small number of attempts, e.g. 3"),
    Rule("step_retry_interval_seconds", within(1, 3600),
         "{value} is outside 1..3600 seconds", "wait e.g. 60 seconds before the first retry"),
    Rule("step_retry_backoff_rate", within(1.0, 10.0),
         "{value} is outside 1..10", "multiply the wait by e.g. 2.0 per attempt"),
    # Model Monitor
    Rule("monitoring_schedule", lambda _value, config: config.monitoring_interval_hours is not None,
         "'{value}' is not a Model Monitor schedule",
         "use cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H) or cron(0 H/N ? * * *) (every N h)"),
    Rule("monitoring_instance_type", matches(patterns.INSTANCE_TYPE), *_INSTANCE_TYPE_RULE),
    Rule("monitoring_max_runtime_seconds", lambda value, config: 1 <= value <= config.monitoring_runtime_limit_seconds,
         "{value} is outside 1..{config.monitoring_runtime_limit_seconds} seconds for this monitoring_schedule",
         "hourly executions get at most 1800 s, others at most 86400 s"),
    Rule("model_quality_problem_type", one_of(MODEL_QUALITY_PROBLEM_TYPES),
         "'{value}' is not what the model solves",
         "use BinaryClassification: the endpoint answers a churn probability"),
    Rule("model_quality_probability_threshold", lambda value, _config: 0.0 < value < 1.0,
         "{value} is not a probability threshold", "use a value strictly between 0 and 1, e.g. 0.5"),
    Rule(("model_quality_start_offset", "model_quality_end_offset"),
         lambda value, _config: bool(patterns.OFFSET.match(value)) and len(value) <= 15,
         "'{value}' is not a Model Monitor time offset",
         "use a negative ISO 8601 duration of days/hours/minutes such as -P1D or -PT1H (15 characters at most)"),
    Rule("model_quality_start_offset",
         lambda value, config: parse_duration(value[1:]) > parse_duration(config.model_quality_end_offset[1:]),
         "the window {value}..{config.model_quality_end_offset} is empty",
         "start further back than the end, e.g. -P2D and -P1D"),
    Rule("model_quality_tolerance", lambda value, _config: 0.0 < value <= 0.5,
         "{value} is outside (0.0, 0.5]", "use a value in range"),
    Rule("github_repository", matches(patterns.GITHUB_REPOSITORY),
         "'{value}' is not a GitHub repository",
         "use owner/name as in https://github.com/<owner>/<name>, e.g. example-org/churn-ml-platform, or None"),
    Rule("slack_workspace_id", matches(patterns.SLACK_WORKSPACE_ID),
         "'{value}' is not a Slack workspace id", "copy the workspace id from the AWS Chatbot console, e.g. T0123ABCD"),
    Rule("slack_channel_id", matches(patterns.SLACK_CHANNEL_ID),
         "'{value}' is not a Slack channel id", "copy the id at the end of the channel's link, e.g. C0123ABCD"),
    Rule("slack_channel_id", lambda _value, config: config.slack_workspace_id is not None,
         "a Slack channel needs its workspace", "set slack_workspace_id too, or slack_channel_id=None"),
    Rule("slack_workspace_id", lambda _value, config: config.slack_channel_id is not None,
         "a Slack workspace needs a channel to post to", "set slack_channel_id too, or slack_workspace_id=None"),
    Rule("drift_alarm_threshold", lambda value, _config: 0.0 < value <= 1.0,
         "{value} is outside (0.0, 1.0]", "use a value in range"),
    # Build once, promote everywhere: the source is another environment, in another account of the same region.
    Rule("model_source", one_of((OWN_MODELS, *ENVIRONMENT_NAMES)),
         "'{value}' is not a unit that can be a model source",
         f"use {OWN_MODELS} or one of {', '.join(ENVIRONMENT_NAMES)} (a sandbox is never a model source)"),
    Rule("model_source", lambda value, config: value == OWN_MODELS or config.sandbox is None,
         "a sandbox serves its own group's versions", f"leave model_source at {OWN_MODELS} for sandboxes"),
    Rule("model_source", lambda value, config: value != config.env_name,
         "a unit cannot be its own model source", f"use {OWN_MODELS}"),
    Rule("model_source", from_source(lambda source, _config: source.get("model_source", OWN_MODELS) == OWN_MODELS),
         "'{value}' serves another unit's versions itself", "name the unit that trains and registers the model"),
    Rule("model_source", from_source(lambda source, config: source["account"] != config.account),
         "'{value}' is in the same account ({config.account})",
         f"use {OWN_MODELS}: promotion across units is for units in different accounts"),
    Rule("model_source", from_source(lambda source, config: source["region"] == config.region),
         "'{value}' is in another region than {config.region}",
         "serve from a unit in the same region (SageMaker creates models from packages of its own region)"),
    Rule("tracking_mlflow", lambda value, config: not value or config.sandbox is None,
         "a sandbox does not get a managed MLflow", "leave tracking_mlflow False for sandboxes (track with --local)"),
)
# fmt: on


def check(config: EnvironmentConfig) -> None:
    """Raise the ConfigError of the first rule `config` breaks."""
    check_types(config)
    for rule in RULES:
        for field in (rule.fields,) if isinstance(rule.fields, str) else rule.fields:
            value = getattr(config, field)
            for item in value if rule.each else () if value is None else (value,):
                if not rule.holds(item, config):
                    problem, fix = (text.format(value=item, config=config) for text in (rule.problem, rule.fix))
                    raise ConfigError(config.unit_name, field, problem, fix)
    check_names(config)


def check_types(config: EnvironmentConfig) -> None:
    """Every field holds a value of its declared type (bool is not an int here)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        expected = hints[field.name]
        value = getattr(config, field.name)
        if typing.get_origin(expected) is tuple:  # tuple[str, ...]: a tuple of strings (a list would be mutable)
            if not (isinstance(value, tuple) and all(isinstance(item, str) for item in value)):
                raise ConfigError(
                    config.unit_name,
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
            isinstance(value, t) and not (t is int and isinstance(value, bool)) for t in allowed if t is not type(None)
        )
        if not ok:
            names = " or ".join(t.__name__ for t in allowed)
            raise ConfigError(
                config.unit_name,
                field.name,
                f"{value!r} is a {type(value).__name__}, not {names}",
                f"give {field.name} a {names} value",
            )


def check_names(config: EnvironmentConfig) -> None:
    """The physical names derived from project and sandbox fit their service's limit and pattern."""
    for field, limit in NAME_LIMITS.items():
        name = getattr(config, field)
        if len(name) > limit:
            culprit = "sandbox" if config.sandbox else "project"
            raise ConfigError(
                config.unit_name,
                culprit,
                f"the derived name '{name}' is {len(name)} characters, over the limit of {limit}",
                f"shorten {culprit} by at least {len(name) - limit} characters",
            )
        if not patterns.SAGEMAKER_NAME.match(name):
            raise ConfigError(
                config.unit_name, field, f"'{name}' is not a valid SageMaker name", "use letters, digits and hyphens"
            )
