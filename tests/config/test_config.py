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
        ("preprocess_instance_count", 0, "outside 1..100 instances"),
        ("preprocess_instance_count", 101, "outside 1..100 instances"),
        ("training_engine", "lightgbm", "'lightgbm' on 1 instances"),
        ("retain_data", "yes", "not bool"),
        ("noncurrent_version_retention_days", True, "not int"),
        ("owner", "a,b", "cannot be a tag value"),
        ("colour", "blue", "unknown field"),
        # The training gate's defaults follow the rules of their pipeline parameters.
        ("max_regression", -0.01, "not an allowed drop of ROC AUC"),
        ("max_regression", float("inf"), "use a finite number >= 0"),
        ("confidence_level", 1.0, "not a confidence level"),
        ("confidence_level", 0.3, "use a level with 0.5 <= level < 1"),
        # The deploy roles' trust names owner/name exactly as GitHub's token does.
        ("github_repository", "churn-ml-platform", "not a GitHub repository"),
        ("github_repository", "https://github.com/example-org/churn", "use owner/name"),
        ("github_repository", "example-org/churn/extra", "not a GitHub repository"),
        ("github_repository", "-org/churn", "not a GitHub repository"),
        ("github_repository", "example-org/..", "not a GitHub repository"),
        ("slack_workspace_id", "t0123abcd", "not a Slack workspace id"),
        ("slack_channel_id", "#alerts", "not a Slack channel id"),
        ("slack_channel_id", "C0123ABCD", "a Slack channel needs its workspace"),
        ("slack_workspace_id", "T0123ABCD", "a Slack workspace needs a channel"),
    ],
)
def test_invalid_values(field, value, fragment):
    expect_error(field, fragment, values=dev_values(**{field: value}))


# Model Monitor -------------------------------------------------------------------------------------------------------
def test_model_monitor_runs_in_staging_and_prod_hourly_in_prod_daily_elsewhere():
    configs = {config.unit_name: config for config in all_configs()}
    assert {name: c.model_monitor for name, c in configs.items()} == {
        "dev": False,
        "staging": True,
        "prod": True,
        "dev/sandbox=ci": False,
    }
    assert configs["prod"].monitoring_interval_hours == 1
    assert configs["dev"].monitoring_interval_hours == configs["staging"].monitoring_interval_hours == 24
    assert configs["prod"].monitoring_max_runtime_seconds <= 1800


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [("cron(0 * ? * * *)", 1), ("cron(0 12 ? * * *)", 24), ("cron(0 0/6 ? * * *)", 6), ("cron(0 17/12 ? * * *)", 12)],
)
def test_model_monitor_schedules_in_its_cron_grammar(schedule, hours):
    assert EnvironmentConfig.create(**dev_values(monitoring_schedule=schedule)).monitoring_interval_hours == hours


@pytest.mark.parametrize(
    "schedule",
    ["cron(30 * ? * * *)", "cron(0 24 ? * * *)", "cron(0 */2 ? * * *)", "cron(0 0/25 ? * * *)", "rate(1 hour)", "NOW"],
)
def test_a_schedule_model_monitor_does_not_accept(schedule):
    expect_error(
        "monitoring_schedule",
        "not a Model Monitor schedule",
        "cron(0 * ? * * *)",
        values=dev_values(monitoring_schedule=schedule),
    )


def test_an_hourly_schedule_allows_at_most_1800_seconds_a_run():
    hourly = dev_values(monitoring_schedule="cron(0 * ? * * *)")
    expect_error(
        "monitoring_max_runtime_seconds", "outside 1..1800", values={**hourly, "monitoring_max_runtime_seconds": 3600}
    )
    daily = EnvironmentConfig.create(**dev_values(monitoring_max_runtime_seconds=3600))
    assert daily.monitoring_max_runtime_seconds == 3600


@pytest.mark.parametrize("offset", ["PT1H", "-1H", "-P", "-PT", "-P1W", "-PT1S", "+PT1H", "-P1000000000D"])
def test_model_quality_offsets_must_be_negative_day_hour_minute_durations(offset):
    expect_error(
        "model_quality_end_offset",
        "not a Model Monitor time offset",
        values=dev_values(model_quality_end_offset=offset),
    )


def test_the_model_quality_window_must_not_be_empty():
    values = dev_values(model_quality_start_offset="-PT1H", model_quality_end_offset="-P1D")
    expect_error("model_quality_start_offset", "the window -PT1H..-P1D is empty", values=values)
    ok = EnvironmentConfig.create(**dev_values(model_quality_start_offset="-P1DT1H", model_quality_end_offset="-PT90M"))
    assert ok.model_quality_start_offset == "-P1DT1H"


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("model_quality_problem_type", "Regression", "BinaryClassification"),
        ("model_quality_probability_threshold", 1.0, "strictly between 0 and 1"),
        ("model_quality_probability_threshold", 0.0, "strictly between 0 and 1"),
        ("model_quality_tolerance", 0.0, "outside (0.0, 0.5]"),
        ("drift_alarm_threshold", 1.5, "outside (0.0, 1.0]"),
        ("monitoring_instance_type", "m5.large", "not a SageMaker instance type"),
        ("model_monitor", "yes", "is a str, not bool"),
    ],
)
def test_bad_model_monitor_settings(field, value, fragment):
    expect_error(field, fragment, values=dev_values(**{field: value}))


def test_managed_mlflow_is_on_in_dev_staging_and_prod_and_never_in_a_sandbox():
    assert [config.tracking_mlflow for config in all_configs()] == [True, True, True, False]
    expect_error(
        "tracking_mlflow",
        "a sandbox does not get a managed MLflow",
        "leave tracking_mlflow False",
        values=dev_values(sandbox="alice", tracking_mlflow=True),
    )


def test_the_xgboost_engine_may_train_on_several_instances_scikit_learn_on_one():
    config = EnvironmentConfig.create(**dev_values(training_engine="xgboost", training_instance_count=4))
    assert (config.training_engine, config.training_instance_count) == ("xgboost", 4)
    fix = "use scikit-learn on 1, or xgboost on 1-100"
    for engine, count in (("xgboost", 101), ("xgboost", 0), ("scikit-learn", 2)):
        values = dev_values(training_engine=engine, training_instance_count=count)
        expect_error("training_engine", f"'{engine}' on {count} instances", fix, values=values)
    assert load_config("dev").training_engine == "scikit-learn"  # the default is unchanged
