"""The SDK layer: its patches touch SDK internals, so their shapes are pinned here, and nothing leaks out of a build."""

from __future__ import annotations

import inspect
import json
import logging
import os
import subprocess
import sys

import pytest

from pipeline_defs import sdk

pytestmark = pytest.mark.heavy(seconds=6)  # builds definitions in fresh processes; scheduled first (tests/conftest.py)

# The signature of every SDK callable that sdk.PATCHED_INTERNALS replaces during a build, as of sagemaker 3.27.0.
# An SDK upgrade that changes one fails here: review the patch in pipeline_defs/sdk.py, then update the pin.
PINNED_SIGNATURES = {
    "SageMakerConfig.validate_sagemaker_config": "(sagemaker_config: Optional[dict] = None)",
    "session_helper.validate_sagemaker_config": "(sagemaker_config: 'dict' = None)",
    "processing._append_project_tags": "(tags=None, working_dir=None)",
    "transformer._append_project_tags": "(tags=None, working_dir=None)",
    "session_helper._append_project_tags": "(tags=None, working_dir=None)",
    "LocalSagemakerClient.create_processing_job": (
        "(self, ProcessingJobName, AppSpecification, ProcessingResources, Environment=None, ProcessingInputs=None, "
        "ProcessingOutputConfig=None, **kwargs)"
    ),
    "LocalSagemakerClient.create_transform_job": (
        "(self, TransformJobName, ModelName, TransformInput, TransformOutput, TransformResources, **kwargs)"
    ),
}


def _original_signatures() -> dict[str, str]:
    found = {}
    for owner, name, _ in sdk.PATCHED_INTERNALS:
        original = vars(owner)[name]
        if inspect.isclass(original):  # the steps module only reads these methods' names
            for method in ("create_processing_job", "create_transform_job"):
                found[f"{original.__name__}.{method}"] = str(inspect.signature(getattr(original, method)))
        else:
            owner_name = owner.__name__.rpartition(".")[2]
            found[f"{owner_name}.{name}"] = str(inspect.signature(getattr(owner, name)))
    return found


def test_every_patched_sdk_callable_keeps_its_pinned_signature() -> None:
    assert _original_signatures() == PINNED_SIGNATURES


def test_patches_apply_only_inside_a_build_and_nest() -> None:
    originals = {name: vars(owner)[name] for owner, name, _ in sdk.PATCHED_INTERNALS}
    with sdk.offline_build():
        with sdk.offline_build():
            patched = {name: vars(owner)[name] for owner, name, _ in sdk.PATCHED_INTERNALS}
            assert os.environ["SAGEMAKER_VALIDATE_ROLE"] == "false"
        still = {name: vars(owner)[name] for owner, name, _ in sdk.PATCHED_INTERNALS}
    after = {name: vars(owner)[name] for owner, name, _ in sdk.PATCHED_INTERNALS}
    assert patched == still and all(patched[name] is not originals[name] for name in originals)
    assert after == originals


def test_a_build_leaves_the_process_environment_as_it_was() -> None:
    """Imported and used in a fresh process without a region: os.environ and the SDK's loggers are unchanged."""
    script = """
import json, logging, os
before = dict(os.environ)
from config import load_config
from pipeline_defs.definitions import build_definitions
from pipeline_defs.packaging import content_addressed_uris
imported = dict(os.environ)
build_definitions(load_config("dev"), content_addressed_uris("cdk-assets"))
print(json.dumps({"import": imported == before, "build": dict(os.environ) == before,
                  "level": logging.getLogger("sagemaker").level}))
"""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "SAGEMAKER_"))}
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"import": True, "build": True, "level": logging.NOTSET}


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_the_image_uri_is_regional_and_resolved_offline(region: str) -> None:
    uri = sdk.sklearn_image_uri(region)
    assert f".dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:1.4-2" in uri
