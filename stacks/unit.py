"""Wires one environment's unit into an app, with cdk-nag's AwsSolutions checks as a synth-time gate."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from config import EnvironmentConfig
from stacks.stage import MlPlatformStage


def build_unit(app: App, config: EnvironmentConfig) -> MlPlatformStage:
    """Add the unit of `config` to `app`. Any unacknowledged cdk-nag finding makes `app.synth()` fail."""
    stage = MlPlatformStage(app, config=config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stage
