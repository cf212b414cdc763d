"""What an MLflow run of a pipeline execution holds: which step reports are read, and how a report becomes metrics and
parameters. Standard library only and side-effect free: it ships beside handler.py, and the repository loads it by
path (`lambda` is a Python keyword; pipeline_defs/tracking_rules.py is the one place that does).

The structure: one MLflow experiment per ExperimentId (the pipeline parameter), a parent run per execution, a nested
run per step. A step's run holds the numbers of its JSON reports as metrics (`<report>.<path>`, e.g.
`evaluation.candidate.roc_auc`) and their text and yes/no values as parameters; lists (per-feature statistics, curve
points) stay in the reports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

# {step name: (processing output, its JSON reports)}: the reports `mlops report` draws (mlops/report/sources.py; a
# test checks that every pair it reads is here) and the steps' own summaries.
TRACKED_REPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Preprocess": ("report", ("preprocess_report.json",)),
    "MergeCapture": ("report", ("merge_report.json",)),
    "ResolveIncumbent": ("resolved", ("resolved.json",)),
    "ResolveModel": ("resolved", ("resolved.json",)),
    "Evaluate": ("evaluation", ("evaluation.json", "model_quality.json")),
    "Baseline": ("baseline", ("statistics.json",)),
    "CheckDrift": ("drift", ("drift_report.json", "constraint_violations.json")),
}

# Tag keys: plain identifiers, so a search filter needs no quoting (`tags.pipeline_execution_arn = '...'`).
EXECUTION_ARN_TAG = "pipeline_execution_arn"
EXECUTION_ID_TAG = "pipeline_execution_id"
PIPELINE_TAG = "pipeline"
STEP_TAG = "pipeline_step"
DATASET_TAG = "dataset_uri"
REGISTERED_PACKAGE_TAG = "registered_model_package_arn"
REGISTERED_VERSION_TAG = "registered_version"
EXPERIMENT_ID_TAG = "experiment_id"
# MLflow's own tag that nests a run under its parent in the UI.
PARENT_RUN_TAG = "mlflow.parentRunId"

# SageMaker's terminal statuses (of an execution and of a step) and the MLflow run status each ends as.
RUN_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
TERMINAL_STATUSES = tuple(RUN_STATUS)

# MLflow's limits (mlflow/utils/validation.py): key length, parameter value length, tag value length.
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 5000
# Characters MLflow accepts in metric and parameter names; any other becomes "_".
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_\-. /:]")


def run_status(sagemaker_status: str) -> str:
    """The MLflow status a run ends with; anything not terminal (a step cut short by its execution) is KILLED."""
    return RUN_STATUS.get(sagemaker_status, "KILLED")


def report_name(file_name: str) -> str:
    """`evaluation.json` -> `evaluation`: the prefix of the metrics and parameters read from that report."""
    return file_name.removesuffix(".json")


def flatten(document: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) of every scalar in nested objects; lists are not descended (they are data, not facts)."""
    if isinstance(document, Mapping):
        for key, value in document.items():
            yield from flatten(value, f"{prefix}.{key}")
    elif not isinstance(document, list):
        yield prefix, document


def metrics_and_params(reports: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics (finite numbers) and parameters (text, yes/no) of a step's reports ({file name: parsed JSON}).

    None (not measured) is neither: MLflow has no missing value, and an absent metric says the same.
    """
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    for file_name, document in sorted(reports.items()):
        for path, value in flatten(document, report_name(file_name)):
            name = _NOT_IN_NAME.sub("_", path)[:MAX_KEY_LENGTH]
            if isinstance(value, bool):
                params[name] = str(value).lower()
            elif isinstance(value, int | float):
                if math.isfinite(value):
                    metrics[name] = float(value)
            elif isinstance(value, str):
                params[name] = value[:MAX_PARAM_VALUE_LENGTH]
    return metrics, params


def registered_version(model_package_arn: str) -> str:
    """`arn:...:model-package/<group>/<version>` -> `<version>`."""
    return model_package_arn.rsplit("/", 1)[-1]
