"""Cross-account serving in tests: units switched to a model_source, and a pin of the source unit's version."""

from __future__ import annotations

import dataclasses

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
