"""config/deployments.py: the pins `mlops promote` writes and synth reads (validated against the unit)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from config import ConfigError, load_config
from config.deployments import DEPLOYMENTS_FILE, ModelPin, pin_for, read_pins, unit_key, write_pin
from tests.helpers import FIXTURE_PINS

PROD = load_config("prod")


def fixture_pin() -> ModelPin:
    pin = pin_for(PROD, FIXTURE_PINS)
    assert pin is not None
    return pin


def write(path: Path, unit: str, pin: ModelPin) -> Path:
    path.write_text(json.dumps({unit: pin.as_json()}))
    return path


def test_every_committed_pin_is_valid_for_its_unit() -> None:
    """What `cdk synth` will read: a pin edited by hand into an invalid state fails here, before review."""
    for key in read_pins(DEPLOYMENTS_FILE):
        env, _, sandbox = key.partition("-")
        config = load_config(env, sandbox or None)
        assert unit_key(config) == key
        assert pin_for(config) is not None


def test_units_are_keyed_as_the_issue_and_the_readme_name_them() -> None:
    assert unit_key(PROD) == "prod"
    assert unit_key(load_config("dev", "alice")) == "dev-alice"


def test_a_pin_round_trips_through_the_file(tmp_path: Path) -> None:
    pin = fixture_pin()
    path = tmp_path / "deployments.json"
    assert write_pin(path, PROD, pin) is None
    assert pin_for(PROD, path) == pin
    newer = dataclasses.replace(pin, version=8, model_package_arn=pin.model_package_arn.replace("/7", "/8"))
    assert write_pin(path, PROD, newer) == pin  # the previous pin, for the "was version 7" line
    assert pin_for(PROD, path) == newer
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "deployments.json", "prod", fixture_pin())
    before = path.read_text()
    monkeypatch.setattr("pipeline_defs.atomic_file.os.replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        write_pin(path, PROD, dataclasses.replace(fixture_pin(), promoted_at="later"))
    assert path.read_text() == before
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model_package_arn": "arn:aws:sagemaker:eu-west-1:333333333333:model-package/churn-dev-models/7"},
            "another group churn-dev-models",
        ),
        (
            {"model_package_arn": "arn:aws:sagemaker:us-east-1:333333333333:model-package/churn-prod-models/7"},
            "another region us-east-1",
        ),
        (
            {"model_package_arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn-prod-models/7"},
            "another account 111111111111",
        ),
        ({"model_package_arn": "churn-prod-models"}, "is not a versioned model package ARN"),
        ({"version": 6}, "version 6 does not match the ARN's 7"),
        ({"model_data_url": "/tmp/model.tar.gz"}, "model_data_url '/tmp/model.tar.gz' is not an s3:// object"),
        ({"supported_instance_types": ("ml.g5.xlarge",)}, "not the unit's serving_instance_type ml.m5.xlarge"),
        ({"model_quality_thresholds": {}}, "model-quality constraints but no model_quality_thresholds"),
    ],
    ids=["group", "region", "account", "not-an-arn", "version", "not-s3", "instance-type", "no-thresholds"],
)
def test_synth_refuses_a_pin_the_unit_cannot_serve(tmp_path: Path, change: dict, message: str) -> None:
    path = write(tmp_path / "deployments.json", "prod", dataclasses.replace(fixture_pin(), **change))
    with pytest.raises(ConfigError, match=r"config error in 'prod', field 'deployments\.json'") as raised:
        pin_for(PROD, path)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ("[]", "is not a JSON object")],
)
def test_a_damaged_file_is_one_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        pin_for(PROD, path)


def test_a_malformed_pin_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"prod": {"model_package_arn": "x", "unknown": 1}}))
    with pytest.raises(ConfigError, match=r"the pin is malformed .*re-run mlops promote"):
        pin_for(PROD, path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("serving_instance_type", "m5.large", "is not a SageMaker instance type"),
        ("serving_instance_count", 0, "outside 1..100 instances"),
        ("serving_max_instance_count", 1, "below serving_instance_count"),
        ("capture_sampling_percentage", 101, "outside 0..100"),
        ("rollout_canary_percent", 0, "outside 1..50"),
        ("step_retry_max_attempts", 21, "outside 1..20"),
        ("step_retry_interval_seconds", 0, "outside 1..3600 seconds"),
        ("step_retry_backoff_rate", 0.5, "outside 1..10"),
    ],
)
def test_serving_and_retry_settings_are_validated(field: str, value: object, message: str) -> None:
    from config.environments import environment_values
    from config.settings import EnvironmentConfig

    values = {**environment_values("prod"), field: value}
    with pytest.raises(ConfigError, match=f"field '{field}'.*{message}"):
        EnvironmentConfig.create(**values)
