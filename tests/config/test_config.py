"""Config: every environment builds; each kind of bad input fails with one message naming field and fix."""

from __future__ import annotations

import dataclasses

import pytest

from config import ConfigError, EnvironmentConfig, all_configs, load_config
from config.environments import environment_values


def test_each_environment_builds_with_an_explicit_region_and_account():
    for config in all_configs():
        assert config.region == "eu-west-1"
        assert len(config.account) == 12
    assert load_config().env_name == "dev"
    assert load_config("prod").termination_protection is True


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_config("prod").retain_data = False  # type: ignore[misc]


def test_sandbox_is_dev_made_cheap_and_disposable():
    dev, sandbox = load_config("dev"), load_config(sandbox="alice")
    assert (sandbox.account, sandbox.region) == (dev.account, dev.region)
    assert sandbox.name_prefix == "churn-dev-alice"
    assert sandbox.model_package_group_name == "churn-dev-alice-models"
    assert sandbox.retain_data is False and sandbox.termination_protection is False
    assert sandbox.processing_instance_type == "ml.t3.medium"
    assert dev.retain_data is True


def expect_error(field: str, *fragments: str, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(**kwargs) if "values" not in kwargs else EnvironmentConfig.create(**kwargs["values"])
    error = caught.value
    assert error.field == field
    message = str(error)
    assert message.count("\n") == 0 and "Fix:" in message
    for fragment in fragments:
        assert fragment in message
    return error


def dev_values(**changes) -> dict:
    return {**environment_values("dev"), **changes}


def test_unknown_environment():
    expect_error("env", "unknown environment 'qa'", "dev, staging, prod", env="qa")


@pytest.mark.parametrize("name", ["Alice", "bob_smith", "a.b", "-x", "x--y", "ünï", "with space", ""])
def test_sandbox_name_with_illegal_characters(name):
    expect_error("sandbox", "lower-case letters", sandbox=name)


def test_sandbox_name_too_long_after_prefixing():
    error = expect_error("sandbox", "over the limit of 63", "shorten sandbox by at least 4", sandbox="s" * 50)
    assert "churn-dev-" + "s" * 50 + "-models" in str(error)
    assert len(load_config(sandbox="s" * 46).model_package_group_name) == 63


def test_sandbox_outside_dev_is_refused():
    expect_error("sandbox", "sandboxes live in the dev account", env="prod", sandbox="alice")


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "abcdefghijkl", ""])
def test_account_id_that_is_not_12_digits(account):
    expect_error("account", "12-digit", values=dev_values(account=account))


def test_account_id_given_as_a_number_is_a_type_error():
    expect_error("account", "is a int, not str", values=dev_values(account=111111111111))


@pytest.mark.parametrize("field", ["account", "region", "owner", "model_approval_status"])
def test_missing_required_field(field):
    values = dev_values()
    del values[field]
    expect_error(field, "required field is missing", f"add {field}=", values=values)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("region", "Europe", "not an AWS region"),
        ("processing_instance_type", "m5.large", "not a SageMaker instance type"),
        ("model_approval_status", "approved", "not a model approval status"),
        ("cache_expire_after", "30 days", "ISO 8601"),
        ("noncurrent_version_retention_days", 0, "outside 1..3650"),
        ("retain_data", "yes", "not bool"),
        ("noncurrent_version_retention_days", True, "not int"),
        ("owner", "a,b", "cannot be a tag value"),
        ("colour", "blue", "unknown field"),
    ],
)
def test_invalid_values(field, value, fragment):
    expect_error(field, fragment, values=dev_values(**{field: value}))
