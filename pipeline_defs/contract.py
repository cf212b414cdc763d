"""Facts shared across boundaries, each spelled once: definitions, stacks, the local engine and the CLI read them here.

Nothing here imports anything outside the standard library, so config/, stacks/, the local engine and the operator
CLI can all depend on it without pulling in the SageMaker SDK or CDK.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Final

# S3 layout ------------------------------------------------------------------------------------------------------
# Every pipeline output: s3://<artifacts bucket>/pipelines/<pipeline>/<ExperimentId>/<execution>/<step>/<output>.
ARTIFACTS_PREFIX: Final = "pipelines/"
# With no approved model, Evaluate reads this fixed prefix, so its cache key stays stable on first runs; the eval-only
# pipeline's "no ground truth" default is a placeholder folder here too (a processing input needs an object).
SENTINELS_PREFIX: Final = f"{ARTIFACTS_PREFIX}sentinels/"
# An endpoint's data capture: s3://<artifacts bucket>/data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl
# (SageMaker appends everything after the prefix; the local endpoint writes the same layout).
DATA_CAPTURE_PREFIX: Final = "data-capture/"
# Labels for model quality, written by producers (mlops ground-truth put):
# s3://<landing bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/<file>.jsonl (hour the labels were collected, UTC).
GROUND_TRUTH_PREFIX: Final = "ground-truth/"
# Model Monitor's reports: s3://<artifacts bucket>/monitoring/<endpoint>/<schedule>/yyyy/mm/dd/hh/ (SageMaker appends
# <endpoint>/<schedule>/... to the job's output URI).
MONITORING_PREFIX: Final = "monitoring/"
# Column 0 of the data-quality baseline: the endpoint's own output (Model Monitor lays captured CSV out as the output
# column(s) first, then the request's features), so its drift metric is feature_baseline_drift_churn_probability.
SCORE_COLUMN: Final = "churn_probability"
# The one production variant of every endpoint: blue/green updates require the name to stay the same.
VARIANT_NAME: Final = "AllTraffic"
# The endpoint config's CaptureContentTypeHeader: payloads of these types are captured as text with this encoding,
# every other type as BASE64.
CAPTURE_TEXT_ENCODINGS: Final = {"text/csv": "CSV", "application/json": "JSON"}

# Jobs -----------------------------------------------------------------------------------------------------------
# SageMaker names every job a pipeline starts `pipelines-<execution id>-<step>-...`; the execution role is scoped
# to that prefix and the local engine names its jobs the same way.
PIPELINE_JOB_PREFIX: Final = "pipelines-"
# Where a processing container sees its inputs (`input/<name>`), outputs (`output/<name>`) and code (`input/code`).
PROCESSING_ROOT: Final = "/opt/ml/processing"
# SageMaker's documented cache-key attributes per step type: tags, instance types and output paths are not
# among them, and a per-run value in any of them defeats caching.
CACHE_KEY_ATTRIBUTES: Final[dict[str, tuple[str, ...]]] = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
}
# Tag key of every job: the run's ExperimentId (cost per experiment).
EXPERIMENT_TAG: Final = "experiment-id"


class Parameter(StrEnum):
    """Pipeline parameter names: what the trigger, the schedule, `mlops start` and the definitions agree on."""

    EXPERIMENT_ID = "ExperimentId"
    INPUT_DATA_URI = "InputDataUri"
    MAX_REGRESSION = "MaxRegression"
    MINIMUM_SCORE = "MinimumScore"
    MODEL_APPROVAL_STATUS = "ModelApprovalStatus"
    MODEL_PACKAGE_ARN = "ModelPackageArn"
    MAX_DRIFT_VIOLATIONS = "MaxDriftViolations"
    CONFIDENCE_LEVEL = "ConfidenceLevel"
    GROUND_TRUTH_URI = "GroundTruthUri"
    CAPTURE_PERIOD_HOURS = "CapturePeriodHours"


DEFAULT_EXPERIMENT_ID: Final = "adhoc"
# The levels of ConfidenceLevel Evaluate accepts. The gate's defaults (this one's, MaxRegression's, MinimumScore's) are
# decided in one place, the config (config/settings.py, "The training gate").
CONFIDENCE_LEVEL_RANGE: Final = (0.5, 1.0)  # [low, high)


# Retries of a job step (RetryPolicies): transient service errors only. A failing script is never retried, in
# SageMaker as locally: none of these types is a script's own failure.
RETRYABLE_EXCEPTION_TYPES: Final = (
    "Step.SERVICE_FAULT",
    "Step.THROTTLING",
    "SageMaker.JOB_INTERNAL_ERROR",
    "SageMaker.CAPACITY_ERROR",
    "SageMaker.RESOURCE_LIMIT",
)
RETRY_MAX_ATTEMPTS_CAP: Final = 20  # SageMaker Pipelines' limit per policy


def retry_policy_errors(policies: object) -> list[str]:
    """What is wrong with a step's RetryPolicies ([] when nothing is), as SageMaker Pipelines would refuse it."""
    if not isinstance(policies, list):
        return [f"RetryPolicies must be a list, got {policies!r}"]
    errors = []
    for policy in policies:
        types = policy.get("ExceptionType") if isinstance(policy, dict) else None
        if not isinstance(types, list) or not types or not set(types) <= set(RETRYABLE_EXCEPTION_TYPES):
            errors.append(f"RetryPolicies ExceptionType {types!r}: use some of {', '.join(RETRYABLE_EXCEPTION_TYPES)}")
            continue
        attempts, expire = policy.get("MaxAttempts"), policy.get("ExpireAfterMin")
        if (attempts is None) == (expire is None):
            errors.append(f"a retry policy needs exactly one of MaxAttempts and ExpireAfterMin: {policy}")
        elif attempts is not None and not (isinstance(attempts, int) and 1 <= attempts <= RETRY_MAX_ATTEMPTS_CAP):
            errors.append(f"RetryPolicies MaxAttempts {attempts!r} is not in 1..{RETRY_MAX_ATTEMPTS_CAP}")
        for key in ("IntervalSeconds", "BackoffRate"):
            value = policy.get(key, 0)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                errors.append(f"RetryPolicies {key} {value!r} must be a number >= 0")
    return errors


class DeployTimeValue(StrEnum):
    """The Fn::Sub variables of a deployed definition: values only CloudFormation knows (or, locally, stand-ins)."""

    PIPELINE_ROLE_ARN = "PipelineRoleArn"
    DATA_KEY_ARN = "DataKeyArn"
    ARTIFACTS_BUCKET = "ArtifactsBucket"
    LANDING_BUCKET = "LandingBucket"


# Model registry -------------------------------------------------------------------------------------------------
class ApprovalStatus(StrEnum):
    APPROVED = "Approved"
    PENDING = "PendingManualApproval"
    REJECTED = "Rejected"


# config's training_engine: the scikit-learn framework image's train.py (one instance), or SageMaker's XGBoost framework
# image's train_xgboost.py (one or several instances, each with its share of the training files). README, "Training
# engines".
SKLEARN_ENGINE, XGBOOST_ENGINE = "scikit-learn", "xgboost"
# {engine: the most training instances it runs on} (CreateTrainingJob allows up to 100 instances).
TRAINING_ENGINES: Final = {SKLEARN_ENGINE: 1, XGBOOST_ENGINE: 100}
APPROVAL_STATUSES: Final = tuple(status.value for status in ApprovalStatus)

# Durations ------------------------------------------------------------------------------------------------------
# SageMaker's CacheConfig.ExpireAfter grammar: ISO 8601, case-insensitive, the leading P optional (`p30d`, `T12H`).
_DURATION = re.compile(
    r"P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE
)


def parse_duration(value: object) -> timedelta:
    """An ExpireAfter value as a timedelta (Y = 365 days, M = 30 days); ValueError names the expected form."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as P30D or PT12H")
    years, months, weeks, days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(days=365 * years + 30 * months + 7 * weeks + days, hours=hours, minutes=minutes, seconds=seconds)


# Pipeline parameter values --------------------------------------------------------------------------------------
# ExperimentId is a tag value and a segment of every output path: letters, digits and . _ - (never a path like ../..).
EXPERIMENT_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_S3_FOLDER = re.compile(r"s3://([^/]+)/(.+)")
# RegisterModel records InputDataUri as the version's `dataset` lineage: CustomerMetadataProperties values hold at most
# 256 characters, and a longer one would fail the run at its last step, after training.
MAX_INPUT_DATA_URI: Final = 256


def input_data_uri(uri: object) -> str:
    """The one rule for InputDataUri: an S3 folder, so it ends with "/" (added when missing).

    S3 reads a prefix, so without the "/" `datasets/sample-v1` would also read `datasets/sample-v10/`. `mlops run`,
    `mlops start` and the dataset trigger (which builds `<prefix><dataset id>/`; tests/handlers check that it is
    already in this form) all pass what this returns. ValueError names the expected form.
    """
    if not isinstance(uri, str) or not _S3_FOLDER.fullmatch(uri):
        raise ValueError(f"{uri!r} is not an S3 folder URI such as s3://<bucket>/datasets/<dataset-id>/")
    folder = uri if uri.endswith("/") else f"{uri}/"
    if len(folder) > MAX_INPUT_DATA_URI:
        raise ValueError(
            f"{folder[:60]!r}... is {len(folder)} characters: at most {MAX_INPUT_DATA_URI}, the longest value the model"
            " registry keeps as a version's lineage (a shorter prefix or dataset id)"
        )
    return folder


def experiment_id(value: object) -> str:
    """An ExperimentId as it is (ValueError naming the rule otherwise)."""
    if not isinstance(value, str) or not EXPERIMENT_ID_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def _number(value: object) -> float:
    """`value` as a float; a bool or a non-number is a ValueError (NaN passes: the range checks below refuse it)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _score_between_0_and_1(value: object) -> float:
    number = _number(value)
    if not 0 <= number <= 1:  # also refuses NaN
        raise ValueError(f"{value!r} is not a score between 0 and 1")
    return number


def _finite_at_least_0(value: object) -> float:
    number = _number(value)
    if not 0 <= number < float("inf"):  # also refuses NaN
        raise ValueError(f"{value!r} must be a number >= 0")
    return number


def _confidence_level(value: object) -> float:
    number = _number(value)
    low, high = CONFIDENCE_LEVEL_RANGE
    if not low <= number < high:  # also refuses NaN
        raise ValueError(f"{value!r} is not a confidence level in [{low}, {high})")
    return number


def _approval_status(value: object) -> str:
    if value not in APPROVAL_STATUSES:
        raise ValueError(f"{value!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    return str(value)


# What each parameter's value must be; checked before a run starts (locally and by `mlops start`). A parameter not
# listed here has no rule beyond its declared type.
PARAMETER_RULES: Final[dict[str, Callable[[object], object]]] = {
    Parameter.EXPERIMENT_ID.value: experiment_id,
    Parameter.INPUT_DATA_URI.value: input_data_uri,
    Parameter.MAX_REGRESSION.value: _finite_at_least_0,
    Parameter.MINIMUM_SCORE.value: _score_between_0_and_1,
    Parameter.MODEL_APPROVAL_STATUS.value: _approval_status,
    Parameter.MAX_DRIFT_VIOLATIONS.value: _finite_at_least_0,
    Parameter.CONFIDENCE_LEVEL.value: _confidence_level,
    Parameter.GROUND_TRUTH_URI.value: input_data_uri,
    Parameter.CAPTURE_PERIOD_HOURS.value: _finite_at_least_0,
}


def checked_parameter(name: str, value: object) -> object:
    """`value` of parameter `name`, checked and normalised by its rule; ValueError names the parameter and the rule."""
    rule = PARAMETER_RULES.get(name)
    if rule is None:
        return value
    try:
        return rule(value)
    except ValueError as error:
        raise ValueError(f"parameter {name} {error}") from None
