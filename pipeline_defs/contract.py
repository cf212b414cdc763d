"""Facts shared across boundaries, each spelled once: definitions, stacks, the local engine and the CLI read them here.

Nothing here imports anything outside the standard library, so config/, stacks/, the local engine and the operator
CLI can all depend on it without pulling in the SageMaker SDK or CDK.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Final

# S3 layout ------------------------------------------------------------------------------------------------------
# Every pipeline output: s3://<artifacts bucket>/pipelines/<pipeline>/<ExperimentId>/<execution>/<step>/<output>.
ARTIFACTS_PREFIX: Final = "pipelines/"
# With no approved model, Evaluate reads this fixed prefix, so its cache key stays stable on first runs.
SENTINELS_PREFIX: Final = f"{ARTIFACTS_PREFIX}sentinels/"

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


DEFAULT_EXPERIMENT_ID: Final = "adhoc"
# The training gate rejects a candidate when the lower bound of this two-sided interval on its regression exceeds
# MaxRegression: a candidate exactly MaxRegression worse is then rejected with probability (1 - level) / 2 = 2.5 %.
# Evaluate accepts 0.5 <= level < 1.
DEFAULT_CONFIDENCE_LEVEL: Final = 0.95
CONFIDENCE_LEVEL_RANGE: Final = (0.5, 1.0)  # [low, high)


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
