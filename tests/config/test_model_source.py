"""model_source: which units may serve another unit's versions, and the pins synth accepts in that mode."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from config import ConfigError, environments, load_config
from config.deployments import pin_for
from config.environments import model_consumers, model_source_of
from tests.model_source import serve_from, source_pin


def config_error(**kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == "model_source"
    return str(caught.value)


def test_every_unit_serves_its_own_versions_unless_configured() -> None:
    for name in ("dev", "staging", "prod"):
        config = load_config(name)
        assert config.model_source == "own" and model_source_of(config) is None
        assert model_consumers(config) == ()


def test_staging_and_prod_serve_devs_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    serve_from(monkeypatch, "dev", "staging", "prod")
    dev, prod = load_config("dev"), load_config("prod")
    assert model_source_of(prod) == dev
    assert [unit.env_name for unit in model_consumers(dev)] == ["staging", "prod"]
    # A sandbox of the source shares nothing: it is neither a source nor a target.
    assert model_consumers(load_config("dev", "alice")) == ()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("qa", "'qa' is not a unit that can be a model source. Fix: use own or one of dev, staging, prod"),
        ("dev-alice", "'dev-alice' is not a unit that can be a model source"),
        ("prod", "a unit cannot be its own model source. Fix: use own"),
    ],
    ids=["unknown unit", "a sandbox", "itself"],
)
def test_synth_refuses_a_source_that_is_no_other_unit(monkeypatch, source: str, message: str) -> None:
    serve_from(monkeypatch, source, "prod")
    error = config_error(env="prod")
    assert error.startswith("config error in 'prod', field 'model_source': ") and message in error
    assert "\n" not in error


def test_synth_refuses_a_source_in_the_same_account(monkeypatch: pytest.MonkeyPatch) -> None:
    serve_from(monkeypatch, "dev", "prod")
    monkeypatch.setitem(environments._ENVIRONMENTS["prod"], "account", "111111111111")
    assert "'dev' is in the same account (111111111111)" in config_error(env="prod")


def test_synth_refuses_a_source_in_another_region(monkeypatch: pytest.MonkeyPatch) -> None:
    serve_from(monkeypatch, "dev", "prod")
    monkeypatch.setitem(environments._ENVIRONMENTS["dev"], "region", "us-east-1")
    assert "'dev' is in another region than eu-west-1" in config_error(env="prod")


def test_synth_refuses_a_chain_of_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    serve_from(monkeypatch, "dev", "staging")
    serve_from(monkeypatch, "staging", "prod")
    assert "'staging' serves another unit's versions itself" in config_error(env="prod")


def test_a_sandbox_never_serves_another_units_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    serve_from(monkeypatch, "staging", "dev")
    assert load_config("dev", "alice").model_source == "own"  # the sandbox does not inherit dev's source
    with pytest.raises(ConfigError, match="a sandbox serves its own group's versions"):
        dataclasses.replace(load_config("dev", "alice"), model_source="staging")


def test_synth_serves_a_version_of_the_source_group(monkeypatch, tmp_path: Path) -> None:
    serve_from(monkeypatch, "dev", "prod")
    prod, pin = load_config("prod"), source_pin(load_config("dev"))
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"prod": pin.as_json()}))

    served = pin_for(prod, path)

    assert served == pin and served.source_unit == "dev"
    assert json.loads(path.read_text())["prod"]["source_unit"] == "dev"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"model_package_arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn-staging-models/3"},
            "the package is from another group churn-staging-models (dev's: churn-dev-models)",
        ),
        (
            {"model_package_arn": "arn:aws:sagemaker:eu-west-1:333333333333:model-package/churn-dev-models/3"},
            "the package is from another account 333333333333 (dev's: 111111111111)",
        ),
        ({"source_unit": None}, "it was promoted from the unit itself, not its model_source"),
    ],
    ids=["another group", "another account", "no source recorded"],
)
def test_synth_refuses_a_pin_not_in_the_source_group(monkeypatch, tmp_path: Path, changes, message) -> None:
    serve_from(monkeypatch, "dev", "prod")
    pin = dataclasses.replace(source_pin(load_config("dev")), **changes)
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"prod": pin.as_json()}))

    with pytest.raises(ConfigError) as caught:
        pin_for(load_config("prod"), path)

    error = str(caught.value)
    assert error.startswith("config error in 'prod', field 'deployments.json': ") and message in error
    assert error.endswith("Fix: promote a version of dev's group (its model_source)")


def test_a_unit_on_own_refuses_a_pin_of_another_unit(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"prod": source_pin(load_config("dev")).as_json()}))

    with pytest.raises(ConfigError, match="it was promoted from dev, not its model_source"):
        pin_for(load_config("prod"), path)
