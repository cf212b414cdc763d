"""Typed, validated, frozen configuration: one per environment, every environment is code."""

from config.environments import all_configs, load_config
from config.settings import ConfigError, EnvironmentConfig

__all__ = ["ConfigError", "EnvironmentConfig", "all_configs", "load_config"]
