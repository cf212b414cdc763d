"""`mlops promote --env E (--version N | --latest-approved | --arn ARN) [--local]`: pin what a unit serves.

Promotion is a reviewed code change: this command only writes the pin (`config/deployments.json`, or with `--local`
`<state dir>/deployments.json`, which `mlops serve --local --promoted` reads); `cdk diff` shows the endpoint change,
`cdk deploy` ships it and `git revert` rolls it back. It refuses, with one line and exit code 2, a version that is not
Approved, one from another group, region or account, and one without the metrics and baselines the training pipeline
registers with every version (monitoring needs them). A unit with a model_source (config/environments.py) promotes
versions of the source unit's group instead, read with the source account's credentials; the pin records the source.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from config.deployments import ModelPin, package_arn_parts, read_pins, unit_key, write_pin
from config.environments import model_source_of
from config.rules import OWN_MODELS
from mlops.aws import AwsCallFailed, client
from mlops.common import UsageError, command_line, dig, project_root, shown, unit_context, unit_options
from mlops.lifecycle import record_promotion
from mlops.local import read_json
from pipeline_defs.contract import ApprovalStatus
from pipeline_defs.local import LocalModelRegistry, LocalS3
from pipeline_defs.local.assembly import LOCAL_ACCOUNT

# Where the training pipeline's RegisterModel step puts what serving and monitoring need (DescribeModelPackage).
REGISTERED_URIS = {
    "model quality statistics (the evaluation metrics)": ("ModelMetrics", "ModelQuality", "Statistics", "S3Uri"),
    "data quality statistics baseline": ("DriftCheckBaselines", "ModelDataQuality", "Statistics", "S3Uri"),
    "data quality constraints baseline": ("DriftCheckBaselines", "ModelDataQuality", "Constraints", "S3Uri"),
}
MODEL_QUALITY_CONSTRAINTS_PATH = ("ModelMetrics", "ModelQuality", "Constraints", "S3Uri")


def command_promote(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    selectors = [args.version is not None, args.latest_approved, args.arn is not None]
    if sum(selectors) != 1:
        raise UsageError("say which version to promote: exactly one of --version N, --latest-approved, --arn ARN")
    # Local runs register in the unit's own local group: another unit's versions exist only in AWS.
    source = None if args.local else model_source_of(config)
    if args.local:
        package, metrics_of, account = _local_package(args, config), _local_reader(args.state_dir), LOCAL_ACCOUNT
        path = args.deployments or args.state_dir / "deployments.json"
    else:
        package, metrics_of, account = _aws_package(args, config, source), _s3_reader(config), config.account
        path = args.deployments or project_root() / "config" / "deployments.json"
    where = ["--local", "--state-dir", shown(args.state_dir)] if args.local else []
    version = str(package.get("ModelPackageVersion", "<version>"))
    approve = command_line("registry", "approve", version, "--reason", "<why>", *where, *unit_options(config))
    pin = pin_from_package(package, config, account, metrics_of, approve=approve, source=source)
    current = read_pins(path).get(unit_key(config))
    unchanged = isinstance(current, dict) and current.get("model_package_arn") == pin.model_package_arn
    previous = None if unchanged else write_pin(path, config, pin)
    # The registry mirrors the pin (PendingDeployment until `make deploy` records Deployed); a failure only warns.
    if unchanged:
        warning = None
    elif args.local:
        warning = record_promotion(pin, config, state_dir=args.state_dir, deployments=args.deployments)
    else:  # in the account whose group holds the version, like the promotion's own reads
        sagemaker = client("sagemaker", source or config)
        warning = record_promotion(pin, config, state_dir=None, deployments=args.deployments, sagemaker=sagemaker)
    if args.json:
        document = {"deployments_file": str(path), "unit": unit_key(config), "changed": not unchanged}
        print(json.dumps({**document, "pin": pin.as_json()}, indent=2))
    elif unchanged:
        print(f"{unit_key(config)} already serves version {pin.version} ({shown(path)}): nothing changed")
    else:
        print(_report(config, pin, previous, path, local=args.local, state_dir=args.state_dir))
    if warning:
        print(warning, file=sys.stderr)
    return 0


def pin_from_package(
    package: Mapping[str, Any],
    config: EnvironmentConfig,
    account: str,
    metrics_of: Any,
    approve: str = "mlops registry approve",
    source: EnvironmentConfig | None = None,
) -> ModelPin:
    """The pin of a described package, or a UsageError saying why the unit must not serve it (`approve`: the command
    that approves it, named when it is not Approved; `source`: the unit whose group it must be from, if not its own)."""
    arn = str(package.get("ModelPackageArn", "?"))
    label = f"{package.get('ModelPackageGroupName', '?')} version {package.get('ModelPackageVersion', '?')}"
    status = package.get("ModelApprovalStatus")
    if status != ApprovalStatus.APPROVED.value:
        raise UsageError(
            f"refusing to promote {label}: it is {status}, not Approved (review it, then approve it: `{approve}`)"
        )
    container = (package.get("InferenceSpecification", {}).get("Containers") or [{}])[0]
    environment = container.get("Environment", {})
    missing = [what for what, path in REGISTERED_URIS.items() if not isinstance(dig(package, path), str)] + [
        what
        for what, value in (
            ("inference image", container.get("Image")),
            ("model artifact", container.get("ModelDataUrl")),
            ("inference code (SAGEMAKER_SUBMIT_DIRECTORY)", environment.get("SAGEMAKER_SUBMIT_DIRECTORY")),
        )
        if not isinstance(value, str)
    ]
    if missing:
        raise UsageError(
            f"refusing to promote {label}: it has no {', no '.join(missing)} - only versions registered by "
            f"{config.training_pipeline_name} can be served and monitored"
        )
    statistics_uri = dig(package, REGISTERED_URIS["model quality statistics (the evaluation metrics)"])
    pin = ModelPin(
        model_package_arn=arn,
        version=int(package.get("ModelPackageVersion", 0)),
        image_uri=container["Image"],
        model_data_url=container["ModelDataUrl"],
        inference_code_url=environment["SAGEMAKER_SUBMIT_DIRECTORY"],
        supported_instance_types=tuple(
            package.get("InferenceSpecification", {}).get("SupportedRealtimeInferenceInstanceTypes", ())
        ),
        data_quality_statistics_uri=dig(package, REGISTERED_URIS["data quality statistics baseline"]),
        data_quality_constraints_uri=dig(package, REGISTERED_URIS["data quality constraints baseline"]),
        model_quality_statistics_uri=statistics_uri,
        model_quality_constraints_uri=dig(package, MODEL_QUALITY_CONSTRAINTS_PATH),
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        source_unit=source.env_name if source else None,
    )
    problems = pin.problems(config, account, source)
    if problems:
        raise UsageError(f"refusing to promote {label} to {config.unit_name}: {'; '.join(problems)}")
    constraints_uri = pin.model_quality_constraints_uri
    return dataclasses.replace(
        pin,
        metrics=evaluation_metrics(metrics_of(statistics_uri), statistics_uri),
        model_quality_thresholds=quality_thresholds(metrics_of(constraints_uri), constraints_uri)
        if constraints_uri is not None
        else {},
    )


def evaluation_metrics(report: object, uri: str) -> dict[str, float]:
    """{metric: value} of a Model Monitor model-quality statistics report (binary classification)."""
    metrics = report.get("binary_classification_metrics") if isinstance(report, dict) else None
    if not isinstance(metrics, dict):
        raise UsageError(f"refusing to promote: {uri} is not a binary classification model quality report")
    return {
        name: round(float(entry["value"]), 4)
        for name, entry in sorted(metrics.items())
        if isinstance(entry, dict) and isinstance(entry.get("value"), int | float)
    }


def quality_thresholds(constraints: object, uri: str) -> dict[str, float]:
    """{metric: threshold} of a Model Monitor model-quality constraints file (binary classification)."""
    entries = constraints.get("binary_classification_constraints") if isinstance(constraints, dict) else None
    thresholds = {
        name: float(entry["threshold"])
        for name, entry in sorted(entries.items() if isinstance(entries, dict) else [])
        if isinstance(entry, dict) and isinstance(entry.get("threshold"), int | float)
    }
    if not thresholds:
        raise UsageError(f"refusing to promote: {uri} holds no binary classification model-quality threshold")
    return thresholds


def _local_package(args: argparse.Namespace, config: EnvironmentConfig) -> dict[str, Any]:
    registry = LocalModelRegistry(args.state_dir / "registry", config.region)
    group = config.model_package_group_name
    if args.arn is not None:
        return _by_arn(registry, args.arn)
    if args.version is not None:
        return registry.describe(group, args.version)
    latest = registry.latest(group, ApprovalStatus.APPROVED.value)
    if latest is None:
        raise UsageError(f"no Approved version of {group} in {shown(registry.root)}: approve one first")
    return latest


def _by_arn(registry: LocalModelRegistry, arn: str) -> dict[str, Any]:
    group, _, version = arn.rpartition("model-package/")[2].partition("/")
    if not version.isdigit():
        raise UsageError(f"--arn {arn}: expected arn:aws:sagemaker:<region>:<account>:model-package/<group>/<N>")
    package = registry.describe(group, int(version))
    if package.get("ModelPackageArn") != arn:
        raise UsageError(f"--arn {arn}: the local registry holds {package.get('ModelPackageArn')} instead")
    return package


def _aws_package(
    args: argparse.Namespace, config: EnvironmentConfig, source: EnvironmentConfig | None
) -> dict[str, Any]:
    owner = source or config  # the unit whose group holds the versions
    arn = args.arn
    if arn is not None and source is None:
        _refuse_another_accounts(arn, config)
    sagemaker = client("sagemaker", owner)
    group = owner.model_package_group_name
    try:
        if args.latest_approved:
            summaries = sagemaker.list_model_packages(
                ModelPackageGroupName=group,
                ModelApprovalStatus=ApprovalStatus.APPROVED.value,
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=1,
            )["ModelPackageSummaryList"]
            if not summaries:
                raise UsageError(f"no Approved version of {group} in {config.region}: approve one first")
            arn = summaries[0]["ModelPackageArn"]
        elif arn is None:
            arn = f"arn:aws:sagemaker:{owner.region}:{owner.account}:model-package/{group}/{args.version}"
        package: dict[str, Any] = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationException":
            raise UsageError(f"no model package {arn}: {error.response['Error'].get('Message', '')}") from None
        raise AwsCallFailed(f"reading the model package failed: {error}") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"reading the model package failed: {error}") from None
    return package


def _refuse_another_accounts(arn: str, config: EnvironmentConfig) -> None:
    """A version of another account, for a unit that serves its own (before any AWS call): name the option it needs."""
    found = package_arn_parts(arn).get("account")
    if found is not None and found != config.account:
        raise UsageError(
            f"refusing to promote {arn} to {config.unit_name}: the package is from another account {found} (the "
            f"unit's: {config.account}) and {config.unit_name} serves its own versions (model_source: {OWN_MODELS}); "
            f"set model_source for {config.env_name} in config/environments.py to serve another unit's"
        )


def _s3_reader(config: EnvironmentConfig) -> Any:
    s3 = client("s3", config)

    def read(uri: str) -> object:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise AwsCallFailed(f"reading {uri} failed: {error}") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UsageError(f"refusing to promote: {uri} is not JSON") from None

    return read


def _local_reader(state_dir: Path) -> Any:
    s3 = LocalS3(state_dir / "s3")
    return lambda uri: read_json(s3, uri)


def _report(
    config: EnvironmentConfig,
    pin: ModelPin,
    previous: ModelPin | None,
    path: Path,
    *,
    local: bool,
    state_dir: Path,
) -> str:
    group = config.model_package_group_name
    auc = pin.metrics.get("auc")
    scored = f"; roc auc {auc:.4f} on its evaluation slice" if auc is not None else ""
    was = f"was version {previous.version}" if previous else "nothing was pinned"
    if pin.source_unit is not None:  # the source's version itself: its lineage stays in the source's registry
        group = pin.arn_parts.get("group", group)
        was += f"; registered by {pin.source_unit}, in account {pin.arn_parts.get('account')}"
    lines = [f"Pinned {group} version {pin.version} for {unit_key(config)} in {shown(path)} ({was}{scored})."]
    if local:
        lines.append(f"Serve it: mlops serve --local --promoted --state-dir {shown(state_dir)}")
        return "\n".join(lines)
    stage = f"'{config.name_prefix}/*'"
    lines += [
        "Next: review the endpoint change, commit the pin, deploy it:",
        f"  cdk diff {unit_context(config)} {stage}",
        f'  git commit -m "Serve {group} version {pin.version}" {shown(path)}',
        f"  cdk deploy {unit_context(config)} {stage}",
        "Roll back: git revert that commit, then cdk deploy again.",
    ]
    if pin.source_unit is not None:  # the target's CreateModel needs the source's policies in place
        source_stage = f"'{config.project}-{pin.source_unit}/*'"
        deploy_source = f"cdk deploy -c env={pin.source_unit} {source_stage}"
        lines.append(f"Deploy the source first if it does not share with {unit_key(config)} yet: {deploy_source}")
    return "\n".join(lines)
