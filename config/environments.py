"""The environments of this project. Every environment is code: edit the values here, review the diff."""

from __future__ import annotations

from config.rules import OWN_MODELS
from config.settings import ENVIRONMENT_NAMES, ConfigError, EnvironmentConfig

# Values every environment shares unless it says otherwise.
_COMMON: dict[str, object] = {
    "project": "churn",
    "owner": "ml-platform",
    "cost_center": "cc-1234",
    "incomplete_upload_days": 7,
    "cache_expire_after": "P30D",
    # Replace with the team's list; every address receives one confirmation mail after the first deploy.
    "notification_emails": ("ml-platform@example.com",),
    # Replace with this repository (owner/name): the deploy roles trust only its workflows (README, "Delivery").
    "github_repository": "example-org/churn-ml-platform",
    # Every execution of dev, staging and prod recorded in the unit's managed MLflow (README, "Tracking in AWS").
    "tracking_mlflow": True,
}

# Replace the account ids with your own before the first deploy.
_ENVIRONMENTS: dict[str, dict[str, object]] = {
    "dev": {
        "account": "111111111111",
        "region": "eu-west-1",
        "retain_data": True,
        "termination_protection": False,
        "processing_instance_type": "ml.m5.large",
        "training_instance_type": "ml.m5.large",
        "noncurrent_version_retention_days": 7,
        "access_log_retention_days": 30,
        "model_approval_status": "Approved",
        "evaluation_schedule": "cron(0 6 ? * MON *)",
        "log_retention_days": 30,
        "monthly_budget_usd": 200,
        "capture_sampling_percentage": 100,
        "model_monitor": False,
        "monitoring_schedule": "cron(0 0 ? * * *)",
    },
    "staging": {
        "account": "222222222222",
        "region": "eu-west-1",
        "retain_data": True,
        "termination_protection": False,
        "processing_instance_type": "ml.m5.large",
        "training_instance_type": "ml.m5.xlarge",
        "noncurrent_version_retention_days": 30,
        "access_log_retention_days": 90,
        "model_approval_status": "PendingManualApproval",
        "evaluation_schedule": "cron(0 6 ? * MON *)",
        "capture_evaluation_schedule": "cron(0 7 ? * * *)",
        "log_retention_days": 90,
        "monthly_budget_usd": 300,
        "serving_instance_count": 1,
        "serving_max_instance_count": 2,
        "capture_sampling_percentage": 50,
        "safe_rollout": True,
        "model_monitor": True,
        "monitoring_schedule": "cron(0 0 ? * * *)",
    },
    "prod": {
        "account": "333333333333",
        "region": "eu-west-1",
        "retain_data": True,
        "termination_protection": True,
        "processing_instance_type": "ml.m5.xlarge",
        "training_instance_type": "ml.m5.xlarge",
        "noncurrent_version_retention_days": 90,
        "access_log_retention_days": 365,
        "model_approval_status": "PendingManualApproval",
        "evaluation_schedule": "cron(0 6 ? * * *)",
        "capture_evaluation_schedule": "cron(0 7 ? * * *)",
        # The retention team's monthly list: the whole customer base, scored on the 1st.
        "scoring_schedule": "cron(0 5 1 * ? *)",
        "transform_instance_type": "ml.m5.xlarge",
        "log_retention_days": 365,
        "monthly_budget_usd": 1000,
        "serving_instance_type": "ml.m5.xlarge",
        "serving_instance_count": 2,
        "serving_max_instance_count": 4,
        "capture_sampling_percentage": 20,
        "safe_rollout": True,
        "model_monitor": True,
        "monitoring_schedule": "cron(0 * ? * * *)",
        "monitoring_instance_type": "ml.m5.xlarge",
        # Hourly: the hour of traffic a day ago, whose labels have arrived by then.
        "model_quality_start_offset": "-PT25H",
        "model_quality_end_offset": "-PT24H",
    },
}

# A sandbox is dev, made cheap and disposable: smallest instance types, everything destroyed with it.
_SANDBOX_OVERRIDES: dict[str, object] = {
    "retain_data": False,
    "termination_protection": False,
    "processing_instance_type": "ml.t3.medium",
    "training_instance_type": "ml.m5.large",
    "noncurrent_version_retention_days": 1,
    "access_log_retention_days": 7,
    "model_approval_status": "Approved",
    "evaluation_schedule": None,
    "capture_evaluation_schedule": None,
    "scoring_schedule": None,
    "transform_instance_count": 1,
    "auto_retrain": False,
    "trigger_reserved_concurrency": 1,
    "log_retention_days": 7,
    # No team mail for every developer's deploy: a sandbox's topic has no subscribers unless its owner adds some.
    "notification_emails": (),
    "serving_instance_type": "ml.m5.large",
    "serving_instance_count": 1,
    "serving_max_instance_count": None,
    "capture_sampling_percentage": 100,
    "safe_rollout": False,
    "model_monitor": False,
    # Never deployed from CI: no deploy role trusts a sandbox (its unit has no deployment-access stack either).
    "github_repository": None,
    # Nor every developer's notifications in the team's Slack channel.
    "slack_workspace_id": None,
    "slack_channel_id": None,
    "model_source": OWN_MODELS,
    # A developer's trial runs are tracked locally (mlops run --local), not in a managed MLflow per sandbox.
    "tracking_mlflow": False,
}


def environment_values(env_name: str) -> dict[str, object]:
    """The raw field values of one environment (common values merged with its own)."""
    if env_name not in _ENVIRONMENTS:
        raise ConfigError(
            env_name, "env", f"unknown environment '{env_name}'", f"use -c env= one of {', '.join(ENVIRONMENT_NAMES)}"
        )
    return {**_COMMON, **_ENVIRONMENTS[env_name], "env_name": env_name}


def load_config(env: str | None = None, sandbox: str | None = None) -> EnvironmentConfig:
    """The config for `-c env=<env>` (default dev), or for `-c sandbox=<name>` derived from dev."""
    env_name = env or "dev"
    if sandbox is not None and not isinstance(sandbox, str):
        raise ConfigError(env_name, "sandbox", f"{sandbox!r} is not a name", "pass -c sandbox=<name>")
    values = environment_values(env_name)
    if sandbox is not None:
        if env_name != "dev":
            raise ConfigError(
                f"{env_name}/sandbox={sandbox}",
                "sandbox",
                "sandboxes live in the dev account",
                "derive sandboxes from dev (drop -c env or pass -c env=dev)",
            )
        values = {**values, **_SANDBOX_OVERRIDES, "sandbox": sandbox}
    return EnvironmentConfig.create(**values)


def deployment_access_configs(config: EnvironmentConfig) -> list[EnvironmentConfig]:
    """The environments whose deploy roles the unit of `config` holds in its deployment-access stack; [] for none.

    GitHub's OIDC provider exists once per account (its URL is unique there), so one unit per account holds it: the
    first of dev, staging, prod deployed to that account, with a role for each environment of that account that has a
    github_repository. The others in that account, and sandboxes, hold none.
    """
    if config.sandbox is not None:
        return []
    position = ENVIRONMENT_NAMES.index(config.env_name)
    others = [load_config(name) for name in ENVIRONMENT_NAMES if name != config.env_name]
    if any(other.account == config.account for other in others[:position]):
        return []  # an earlier environment in this account holds its deployment access
    held = [config, *(other for other in others[position:] if other.account == config.account)]
    return [held_config for held_config in held if held_config.github_repository is not None]


def all_configs(sandbox: str = "ci") -> list[EnvironmentConfig]:
    """dev, staging, prod and one sample sandbox: what the quality gates synthesize."""
    return [load_config(name) for name in ENVIRONMENT_NAMES] + [load_config("dev", sandbox)]


def model_source_of(config: EnvironmentConfig) -> EnvironmentConfig | None:
    """The unit whose group `config` serves versions of (its model_source), None when it serves its own."""
    return None if config.serves_own_models else load_config(config.model_source)


def model_consumers(config: EnvironmentConfig) -> tuple[EnvironmentConfig, ...]:
    """The units that serve versions of `config`'s group (model_source names it); never a sandbox's."""
    if config.sandbox is not None:
        return ()
    names = [name for name in ENVIRONMENT_NAMES if environment_values(name).get("model_source") == config.env_name]
    return tuple(load_config(name) for name in names)


__all__ = [
    "ConfigError",
    "EnvironmentConfig",
    "all_configs",
    "deployment_access_configs",
    "environment_values",
    "load_config",
    "model_consumers",
    "model_source_of",
]
