"""Cross-account serving in tests: units switched to a model_source, and a pin of the source unit's version."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from config import EnvironmentConfig, environments, load_config
from config.deployments import ModelPin, pin_for
from tests.helpers import FIXTURE_PINS


def serve_from(monkeypatch: pytest.MonkeyPatch, source: str, *targets: str) -> None:
    """Set `model_source: source` for each target environment, as an edit of config/environments.py would."""
    for target in targets:
        monkeypatch.setitem(environments._ENVIRONMENTS[target], "model_source", source)


def source_pin(source: EnvironmentConfig, version: int = 3) -> ModelPin:
    """prod's fixture pin, re-pointed at version `version` of the source unit's group, objects and code bucket."""
    prod = pin_for(dataclasses.replace(load_config("prod"), model_source="own"), FIXTURE_PINS)
    assert prod is not None
    moved = {
        name: getattr(prod, name)
        .replace("churn-prod-", f"{source.name_prefix}-")
        .replace("333333333333", source.account)
        for name in ("model_data_url", "inference_code_url", "data_quality_statistics_uri",
                     "data_quality_constraints_uri", "model_quality_statistics_uri", "model_quality_constraints_uri")
    }  # fmt: skip
    arn = (
        f"arn:aws:sagemaker:{source.region}:{source.account}:model-package/{source.model_package_group_name}/{version}"
    )
    return dataclasses.replace(prod, **moved, model_package_arn=arn, version=version, source_unit=source.env_name)


def registered_with_this_checkout(pin: ModelPin) -> ModelPin:
    """`pin` with the serving code this checkout builds (the fixtures name a placeholder hash): its content-hash key,
    as CDK names the asset."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_s3_assets as s3_assets

    from pipeline_defs.packaging import INFERENCE_TARBALL, write_archives

    with tempfile.TemporaryDirectory() as build_dir:
        path = write_archives(Path(build_dir))[INFERENCE_TARBALL]
        key = s3_assets.Asset(Stack(App(), "Probe"), "Code", path=str(path)).s3_object_key
    return dataclasses.replace(pin, inference_code_url=f"{pin.inference_code_url.rsplit('/', 1)[0]}/{key}")
