"""The SageMaker Python SDK v3, loaded so that building a pipeline definition is offline and fast.

Import the SDK only through this module: every SDK class the definitions use is re-exported here. It hides the
SDK's traps (docs/architecture.md, "Traps"), and it keeps them to itself - importing it leaves `os.environ`, logging
and warnings as they were; everything process-wide happens inside `offline_build()` and is undone when the build ends:
- the SDK needs a region at import time (`sagemaker.ai_registry` creates boto3 clients then): the import runs with a
  default region set, and with the EC2 metadata lookup off, so no client creation can wait for a metadata endpoint;
- `ModelTrainer` validates roles through IAM unless SAGEMAKER_VALIDATE_ROLE=false: set during a build;
- telemetry is opted out through `sagemaker_config`;
- the SDK re-validates that config with jsonschema on every lookup (and re-checks its own schema each time): the
  validation is memoised during a build, which is what keeps a definition build under a second;
- `ProcessingStep.__init__` builds a whole local-mode session just to read a method name, and `Processor`,
  `Transformer` and the session's `create_model` add `sagemaker:project-*` tags when a `.sagemaker-code-config` file
  sits in a parent folder of the working directory: all are neutralised during a build, so the definition depends
  on inputs only;
- `default_bucket()` (ListBuckets/CreateBucket) is reached by local code paths or outputs without `s3://`: the
  session here raises instead, so such a mistake fails the build rather than calling AWS.
The patched SDK internals are listed in PATCHED_INTERNALS; a test pins their signatures, so an SDK upgrade that
changes one fails there, in one place.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

_IMPORT_DEFAULTS = {"AWS_DEFAULT_REGION": "us-east-1"}  # only where the caller set none
_OFFLINE_ENVIRONMENT = {"SAGEMAKER_VALIDATE_ROLE": "false", "AWS_EC2_METADATA_DISABLED": "true"}


@contextmanager
def _environment(values: Mapping[str, str], defaults: Mapping[str, str] = {}) -> Iterator[None]:
    """`values` (and `defaults` where unset) in os.environ for the block; every touched variable restored after."""
    touched = {name: os.environ.get(name) for name in [*values, *defaults]}
    os.environ.update(values)
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, previous in touched.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


with _environment(_OFFLINE_ENVIRONMENT, _IMPORT_DEFAULTS):
    import boto3
    import jsonschema
    import sagemaker.core.helper.session_helper as _session_helper
    import sagemaker.core.processing as _processing
    import sagemaker.core.transformer as _transformer
    import sagemaker.mlops.workflow.steps as _steps
    from sagemaker.core import image_uris
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.training.configs import (
        Compute,
        InputData,
        MetricDefinition,
        OutputDataConfig,
        S3DataSource,
        StoppingCondition,
        Tag,
    )
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.conditions import (
        Condition,
        ConditionEquals,
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
        ConditionOr,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

__all__ = [
    "CacheConfig",
    "Compute",
    "Condition",
    "ConditionEquals",
    "ConditionGreaterThanOrEqualTo",
    "ConditionLessThanOrEqualTo",
    "ConditionOr",
    "ConditionStep",
    "DriftCheckBaselines",
    "ExecutionVariables",
    "FailStep",
    "InputData",
    "Join",
    "JsonGet",
    "MetricDefinition",
    "MetricsSource",
    "ModelBuilder",
    "ModelMetrics",
    "ModelStep",
    "ModelTrainer",
    "OutputDataConfig",
    "ParameterFloat",
    "ParameterString",
    "Pipeline",
    "ProcessingInput",
    "ProcessingOutput",
    "ProcessingS3Input",
    "ProcessingS3Output",
    "ProcessingStep",
    "PropertyFile",
    "S3DataSource",
    "SageMakerJobExceptionTypeEnum",
    "SageMakerJobStepRetryPolicy",
    "ScriptProcessor",
    "StepExceptionTypeEnum",
    "StepRetryPolicy",
    "StoppingCondition",
    "Tag",
    "TrainingStep",
    "TransformStep",
    "Transformer",
    "model_monitor_image_uri",
    "offline_build",
    "offline_session",
    "sklearn_image_uri",
    "xgboost_image_uri",
]

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
SKLEARN_FRAMEWORK_VERSION = "1.4-2"
# SageMaker's XGBoost framework image for training_engine xgboost: the newest version the pinned SDK lists whose build
# is published (aws/sagemaker-xgboost-container docker/3.0-5: Python 3.10, xgboost 3.0.5); requirements-xgboost.txt
# pins the local runtime to it.
XGBOOST_FRAMEWORK_VERSION = "3.0-5"
_NOISY_LOGGERS = ("sagemaker", "sagemaker.config")

_CONFIG_VALIDATOR = jsonschema.validators.validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)(
    SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA
)
_VALIDATED_CONFIGS: set[str] = set()


def _validate_config_once(sagemaker_config: Any = None) -> None:
    key = json.dumps(sagemaker_config, sort_keys=True, default=repr)
    if key not in _VALIDATED_CONFIGS:
        _CONFIG_VALIDATOR.validate(sagemaker_config)
        _VALIDATED_CONFIGS.add(key)


class _LocalClientMethodNames:
    """Stands in for LocalSagemakerClient where the steps module only reads method `__name__`s."""

    def create_processing_job(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("local mode is not used; pipeline_defs.local runs steps locally")

    def create_transform_job(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("local mode is not used; pipeline_defs.local runs steps locally")


def _keep_tags(tags: Any, *args: Any, **kwargs: Any) -> Any:
    return tags


# (owner, attribute, replacement during a build). tests/pipeline_defs/test_sdk.py pins the originals' signatures.
PATCHED_INTERNALS: tuple[tuple[object, str, object], ...] = (
    (SageMakerConfig, "validate_sagemaker_config", staticmethod(_validate_config_once)),
    (_session_helper, "validate_sagemaker_config", _validate_config_once),
    (_steps, "LocalSagemakerClient", _LocalClientMethodNames),
    (_processing, "_append_project_tags", _keep_tags),
    (_transformer, "_append_project_tags", _keep_tags),
    (_session_helper, "_append_project_tags", _keep_tags),
)
for _owner, _name, _ in PATCHED_INTERNALS:
    if _name not in vars(_owner):  # setattr alone would silently add a missing attribute and the trap would return
        raise RuntimeError(f"sagemaker SDK changed: {_owner!r} has no {_name}; review pipeline_defs/sdk.py")

_build_depth = 0  # offline_build() nests: only the outermost block patches and restores


@contextmanager
def _patched() -> Iterator[None]:
    originals = [(owner, name, vars(owner)[name]) for owner, name, _ in PATCHED_INTERNALS]
    levels = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for owner, name, replacement in PATCHED_INTERNALS:
        setattr(owner, name, replacement)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def offline_build() -> Iterator[None]:
    """The block in which definitions are built: SDK patches, offline environment, quiet SDK; all undone after."""
    global _build_depth
    with ExitStack() as stack:
        if _build_depth == 0:
            stack.enter_context(_environment(_OFFLINE_ENVIRONMENT))
            stack.enter_context(_patched())
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
        _build_depth += 1
        try:
            yield
        finally:
            _build_depth -= 1


# botocore caches service models per boto3 session: one per region serves every build in the process.
_BOTO_SESSIONS: dict[str, boto3.Session] = {}


class OfflinePipelineSession(PipelineSession):
    """A PipelineSession that refuses to look up or create the SDK's default bucket."""

    def default_bucket(self) -> str:
        raise RuntimeError("default_bucket() reached: every code path, input and output must be an s3:// URI")


def offline_session(region: str) -> OfflinePipelineSession:
    """A pipeline session for `region`; call it inside `offline_build()`."""
    if region not in _BOTO_SESSIONS:
        _BOTO_SESSIONS[region] = boto3.Session(region_name=region)
    return OfflinePipelineSession(boto_session=_BOTO_SESSIONS[region], sagemaker_config=SDK_CONFIG)


def sklearn_image_uri(region: str) -> str:
    """The scikit-learn framework image; one URI for training, processing and serving (same libraries).

    The SDK lists framework 1.4-2 under the training scope only (inference has 1.4-2-py312); the image
    serves both roles, and a model must be served by the library versions it was trained with.
    """
    with offline_build():
        uri: str = image_uris.retrieve(
            "sklearn",
            region=region,
            version=SKLEARN_FRAMEWORK_VERSION,
            py_version="py3",
            instance_type="ml.m5.large",
            image_scope="training",
        )
    return uri


def model_monitor_image_uri(region: str) -> str:
    """Model Monitor's analyzer image (`sagemaker-model-monitor-analyzer`) in `region`, from the SDK's image config.

    The registry account differs per region (eu-west-1: 468650794304); the SDK adds no tag.
    """
    with offline_build():
        uri: str = image_uris.retrieve("model-monitor", region=region)
    return uri


def xgboost_image_uri(region: str) -> str:
    """SageMaker's XGBoost framework image (training only: its model is read by the scikit-learn image's steps through
    the model-artifact contract, README "Training engines")."""
    with offline_build():
        uri: str = image_uris.retrieve(
            "xgboost", region=region, version=XGBOOST_FRAMEWORK_VERSION, instance_type="ml.m5.large"
        )
    return uri
