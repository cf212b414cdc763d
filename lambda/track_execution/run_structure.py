"""What the MLflow record of a pipeline execution in AWS holds: the structure of a local run's record
(mlops/tracking.py), so a run looks the same wherever it ran. Standard library only and side-effect free: it ships
beside handler.py (tests load it by path: `lambda` is a Python keyword).

One MLflow experiment per ExperimentId; a parent run per execution (`mlops.role` = record; the pipeline parameters as
parameters; tags for the execution, pipeline, status, dataset URI and registered version; metric `seconds`), a nested
run per step (tags for its type, status, reuse and failure message; parameters `cache_hit` and `status`; metrics: the
numbers of its property file, named `<PropertyFileName>.<path>` as the local engine names them, a training job's final
metrics, and `seconds`). AWS adds the execution's ARN (how a redelivered event finds the record) and display name,
the step's job and the registered package's ARN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# {step: (processing output, report file, PropertyFileName)}: the property files of the pipelines' definitions, whose
# numbers the local engine records as the step's metrics (a test compares this table with the synthesized definitions).
TRACKED_REPORTS: dict[str, tuple[str, str, str]] = {
    "ResolveIncumbent": ("resolved", "resolved.json", "Resolved"),
    "ResolveModel": ("resolved", "resolved.json", "Resolved"),
    "MergeCapture": ("report", "merge_report.json", "Merge"),
    "Evaluate": ("evaluation", "evaluation.json", "Evaluation"),
    "CheckDrift": ("drift", "drift_report.json", "Drift"),
    "Summarize": ("summary", "summary.json", "Summary"),
}

# The local record's tags (mlops/tracking.py), and the ones only AWS has.
EXECUTION_TAG = "mlops.execution_id"
ROLE_TAG = "mlops.role"
RECORD_ROLE = "record"
PIPELINE_TAG = "mlops.pipeline"
STATUS_TAG = "mlops.status"
DATASET_TAG = "mlops.dataset"
REGISTERED_VERSION_TAG = "mlops.registered_version"
STEP_TYPE_TAG = "mlops.step_type"
STEP_STATUS_TAG = "mlops.step_status"
REUSED_FROM_TAG = "mlops.reused_from"
MESSAGE_TAG = "mlops.message"
EXECUTION_ARN_TAG = "mlops.execution_arn"
DISPLAY_NAME_TAG = "mlops.display_name"
JOB_TAG = "mlops.job"
REGISTERED_PACKAGE_TAG = "mlops.registered_model_package_arn"
# MLflow's own tag that nests a run under its parent in the UI.
PARENT_RUN_TAG = "mlflow.parentRunId"

# SageMaker's terminal statuses (of an execution and of a step) and the MLflow run status each ends as.
RUN_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
TERMINAL_STATUSES = tuple(RUN_STATUS)
# A step's kind as its definition's Type names it (the local record's mlops.step_type), from the key of its Metadata.
STEP_TYPES = {"ProcessingJob": "Processing", "TrainingJob": "Training", "TransformJob": "Transform"}

# MLflow's limits (mlflow/utils/validation.py): parameter value length, tag value length.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 5000


def run_status(sagemaker_status: str) -> str:
    """The MLflow status a run ends with; anything not terminal (a step cut short by its execution) is KILLED."""
    return RUN_STATUS.get(sagemaker_status, "KILLED")


def step_type(metadata: Mapping[str, Any]) -> str:
    """`Processing`, `Training`, `Condition`, `RegisterModel`, ...: the step's Type, from its execution metadata."""
    kind = next(iter(metadata), "-")
    return STEP_TYPES.get(kind, kind)


def numbers(document: Any, prefix: str) -> dict[str, float]:
    """{"<prefix>.<key>[.<key>...]": value} of every finite number in a JSON document, as the local engine records them
    (pipeline_defs/local/results.py `numbers`): booleans, text, null and lists are not metrics."""
    if isinstance(document, Mapping):
        found: dict[str, float] = {}
        for key, value in document.items():
            found |= numbers(value, f"{prefix}.{key}")
        return found
    if isinstance(document, int | float) and not isinstance(document, bool) and math.isfinite(document):
        return {prefix: float(document)}
    return {}


def registered_version(model_package_arn: str) -> str:
    """`arn:...:model-package/<group>/<version>` -> `<version>`."""
    return model_package_arn.rsplit("/", 1)[-1]
