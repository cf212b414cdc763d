"""The registry's view of where a version is served: its `ModelLifeCycle` (Stage = the unit, StageStatus).

The pin (`config/deployments.json`) stays the source of truth; the lifecycle mirrors it so the registry console and
`mlops registry show` agree with it:
- `mlops promote` sets the pinned version to Stage <unit>, StageStatus `PendingDeployment` (pinned, not deployed).
- The deployment sets it to `Deployed` once the endpoint serves it, and `Undeployed` when a later deployment replaces
  it (a custom resource of the Serving stack: `platform_constructs/served_lifecycle.py`).
- `mlops lifecycle sync` records a status by hand (e.g. after a promotion whose update failed), locally too.
Each is UpdateModelPackage with ModelLifeCycle only (locally: the local registry's file). A package has one
lifecycle: a version served by staging and then prod shows the last unit it moved to. A failed update after the pin
was written is a warning with the command that repeats it, never a lost pin. With a model_source, the version is the
source unit's: the update needs the source account's credentials, like the promotion itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from config.deployments import ModelPin, pin_for, unit_key
from config.environments import model_source_of
from mlops.aws import AwsCallFailed, client
from mlops.common import UsageError, command_line, project_root, shown, unit_options
from pipeline_defs.local import LocalModelRegistry, LocalRunError
from pipeline_defs.local.assembly import LOCAL_ACCOUNT

PENDING_DEPLOYMENT, DEPLOYED = "PendingDeployment", "Deployed"


def lifecycle(config: EnvironmentConfig, status: str, description: str) -> dict[str, str]:
    """A ModelLifeCycle for the unit of `config` (Stage: dev, staging, prod or dev-<sandbox>)."""
    return {"Stage": unit_key(config), "StageStatus": status, "StageDescription": description[:1024]}


def record(
    pin: ModelPin,
    config: EnvironmentConfig,
    status: str,
    description: str,
    *,
    state_dir: Path | None,
    sagemaker: Any = None,
) -> None:
    """Set the pinned version's lifecycle: in the local registry of `state_dir`, else in SageMaker (`sagemaker`: a
    client in the account whose group holds the version; default: a new one)."""
    stage = lifecycle(config, status, description)
    if state_dir is not None:
        parts = pin.arn_parts
        try:
            LocalModelRegistry(state_dir / "registry", config.region).set_lifecycle(
                parts["group"], int(parts["version"]), stage
            )
        except LocalRunError as error:
            raise UsageError(str(error)) from None
        return
    sagemaker = sagemaker or client("sagemaker", model_source_of(config) or config)
    try:
        sagemaker.update_model_package(ModelPackageArn=pin.model_package_arn, ModelLifeCycle=stage)
    except (BotoCoreError, ClientError) as error:
        raise AwsCallFailed(f"setting the lifecycle of {pin.model_package_arn} failed: {error}") from None


def record_promotion(
    pin: ModelPin,
    config: EnvironmentConfig,
    *,
    state_dir: Path | None,
    deployments: Path | None = None,
    sagemaker: Any = None,
) -> str | None:
    """PendingDeployment after `mlops promote` wrote the pin (into `deployments`, when not the default file); the
    warning line, with the command that records it later, when it could not be recorded."""
    description = f"pinned for {unit_key(config)} by mlops promote (see its promoted_at); served after cdk deploy"
    try:
        record(pin, config, PENDING_DEPLOYMENT, description, state_dir=state_dir, sagemaker=sagemaker)
    except (AwsCallFailed, UsageError) as error:
        where = ["--local", "--state-dir", shown(state_dir)] if state_dir is not None else []
        where += ["--deployments", shown(deployments)] if deployments is not None else []
        sync = command_line("lifecycle", "sync", *where, *unit_options(config), "--status", PENDING_DEPLOYMENT)
        return f"warning: the pin is written, but {error}; record it later: `{sync}`"
    return None


def command_lifecycle(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    state_dir = args.state_dir if args.local else None
    default = args.state_dir / "deployments.json" if args.local else project_root() / "config" / "deployments.json"
    path = args.deployments or default
    pin = pin_for(config, path, account=LOCAL_ACCOUNT if args.local else None)
    if pin is None:
        print(f"{unit_key(config)} pins no version in {shown(path)}: no lifecycle to record")
        return 0
    description = f"{args.status} in {unit_key(config)} (mlops lifecycle sync)"
    record(pin, config, args.status, description, state_dir=state_dir)
    print(f"{pin.model_package_arn}: Stage {unit_key(config)}, StageStatus {args.status}")
    return 0


def add_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("action", choices=("sync",))
    sub.add_argument(
        "--status", choices=(PENDING_DEPLOYMENT, DEPLOYED), default=DEPLOYED, help=f"StageStatus ({DEPLOYED})"
    )
    sub.add_argument("--local", action="store_true", help="the local registry and the pin under --state-dir")
    sub.add_argument("--deployments", type=Path, help="the pin file (default: config/deployments.json)")


HELP = "record the pinned version's ModelLifeCycle by hand (promote and each deployment record it themselves)"
