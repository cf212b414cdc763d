"""The SageMaker Python SDK v3, loaded so that building a pipeline definition is offline and fast.

Import the SDK only through this module. It hides the traps listed in DESIGN.md:
- the SDK needs a region at import time and would validate roles through IAM: `pipeline_defs/__init__`
  sets both before any sagemaker import (every session built here still names its region explicitly);
- telemetry is opted out through `sagemaker_config`;
- the SDK re-validates that config with jsonschema on every lookup (and re-checks its own schema each
  time): the validation is memoised, which is what keeps a definition build under a second;
- `ProcessingStep.__init__` builds a whole local-mode session just to read a method name, and
  `Processor` adds `sagemaker:project-*` tags when a `.sagemaker-code-config` file sits in a parent
  folder of the working directory: both are neutralised so the definition depends on inputs only;
- `default_bucket()` (ListBuckets/CreateBucket) is reached by local code paths or outputs without
  `s3://`: the session here raises instead, so such a mistake fails the build rather than calling AWS.
"""

from __future__ import annotations

import json
import logging
import os
import warnings

# Must precede the first sagemaker import: sagemaker.ai_registry creates a boto3 client at import.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

import boto3
import jsonschema
import sagemaker.core.helper.session_helper as _session_helper
import sagemaker.core.processing as _processing
import sagemaker.mlops.workflow.steps as _steps
from sagemaker.core import image_uris
from sagemaker.core.config.config_manager import SageMakerConfig
from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA
from sagemaker.core.workflow.pipeline_context import PipelineSession

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
SKLEARN_FRAMEWORK_VERSION = "1.4-2"

_CONFIG_VALIDATOR = jsonschema.validators.validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)(
    SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA
)
_VALIDATED_CONFIGS: set[str] = set()


def _validate_config_once(sagemaker_config=None) -> None:
    key = json.dumps(sagemaker_config, sort_keys=True, default=repr)
    if key not in _VALIDATED_CONFIGS:
        _CONFIG_VALIDATOR.validate(sagemaker_config)
        _VALIDATED_CONFIGS.add(key)


class _LocalClientMethodNames:
    """Stands in for LocalSagemakerClient where the steps module only reads method `__name__`s."""

    def create_processing_job(self, *args, **kwargs):
        raise NotImplementedError("local mode is not used; pipeline_defs.local_runner runs steps locally")

    def create_transform_job(self, *args, **kwargs):
        raise NotImplementedError("local mode is not used; pipeline_defs.local_runner runs steps locally")


def _replace(owner: object, name: str, value: object) -> None:
    """Patch an SDK internal, failing loudly if an SDK upgrade removed it (setattr alone would not notice)."""
    if not hasattr(owner, name):
        raise RuntimeError(f"sagemaker SDK changed: {owner!r} has no {name}; review pipeline_defs/sdk.py")
    setattr(owner, name, value)


_replace(SageMakerConfig, "validate_sagemaker_config", staticmethod(_validate_config_once))
_replace(_session_helper, "validate_sagemaker_config", _validate_config_once)
_replace(_steps, "LocalSagemakerClient", _LocalClientMethodNames)
_replace(_processing, "_append_project_tags", lambda tags, *args, **kwargs: tags)
for _noisy in ("sagemaker", "sagemaker.config"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="Running within a PipelineSession")
# botocore caches service models per boto3 session: one per region serves every build in the process.
_BOTO_SESSIONS: dict[str, boto3.Session] = {}


class OfflinePipelineSession(PipelineSession):
    """A PipelineSession that refuses to look up or create the SDK's default bucket."""

    def default_bucket(self):
        raise RuntimeError("default_bucket() reached: every code path, input and output must be an s3:// URI")


def offline_session(region: str) -> OfflinePipelineSession:
    if region not in _BOTO_SESSIONS:
        _BOTO_SESSIONS[region] = boto3.Session(region_name=region)
    return OfflinePipelineSession(boto_session=_BOTO_SESSIONS[region], sagemaker_config=SDK_CONFIG)


def sklearn_image_uri(region: str) -> str:
    """The scikit-learn framework image; one URI for training, processing and serving (same libraries).

    The SDK lists framework 1.4-2 under the training scope only (inference has 1.4-2-py312); the image
    serves both roles, and a model must be served by the library versions it was trained with.
    """
    return image_uris.retrieve(
        "sklearn",
        region=region,
        version=SKLEARN_FRAMEWORK_VERSION,
        py_version="py3",
        instance_type="ml.m5.large",
        image_scope="training",
    )
