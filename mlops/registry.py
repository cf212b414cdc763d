"""`mlops registry list|show|approve|reject|diff`: the unit's model registry in SageMaker (`--env`) or `--local`.

Both sides answer in DescribeModelPackage's shape, so one set of commands reads them: SageMaker through boto3
(ListModelPackages paginated, DescribeModelPackage, UpdateModelPackage, the metrics report from S3), the local
registry under the state dir that local runs register into.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from config.deployments import read_pins
from mlops import model_card
from mlops.aws import AwsCallFailed, NoCredentials, client
from mlops.common import UsageError, dig, project_root, shown
from mlops.local import read_json
from pipeline_defs.contract import ApprovalStatus
from pipeline_defs.local import LocalModelRegistry, LocalRunError, LocalS3

_DECISIONS = {"approve": ApprovalStatus.APPROVED, "reject": ApprovalStatus.REJECTED}
_METRICS_PATH = ("ModelMetrics", "ModelQuality", "Statistics", "S3Uri")
_EXPLAINABILITY_PATH = ("ModelMetrics", "Explainability", "Report", "S3Uri")  # steps/train.py's explainability.json
_RANKED = ("feature_importance",)  # shown in their own order (the most important first), not by name


class Registry(Protocol):
    """What the commands need from a model registry, in SageMaker's shapes."""

    where: str

    def versions(self, group: str) -> Iterator[dict[str, Any]]: ...  # newest first, described

    def describe(self, group: str, version: int) -> dict[str, Any]: ...

    def set_approval(
        self, package: Mapping[str, Any], status: str, reason: str | None, card: Mapping[str, Any] | None = None
    ) -> None: ...  # `card`: the model card's content, sent with the approval

    def read_report(self, uri: str) -> Any: ...


class LocalRegistry:
    def __init__(self, state_dir: Path, region: str) -> None:
        self._registry = LocalModelRegistry(state_dir / "registry", region)
        self._s3 = LocalS3(state_dir / "s3")
        self.where = f"local registry {shown(self._registry.root)}"

    def versions(self, group: str) -> Iterator[dict[str, Any]]:
        return iter(reversed(self._registry.versions(group)))

    def describe(self, group: str, version: int) -> dict[str, Any]:
        try:
            return self._registry.describe(group, version)
        except LocalRunError as error:
            raise UsageError(str(error)) from None

    def set_approval(
        self, package: Mapping[str, Any], status: str, reason: str | None, card: Mapping[str, Any] | None = None
    ) -> None:
        group, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
        self._registry.set_approval(group, version, status, reason, model_card=_model_card(card))

    def read_report(self, uri: str) -> Any:
        return read_json(self._s3, uri)


class SageMakerRegistry:
    def __init__(self, config: EnvironmentConfig) -> None:
        self._config = config
        try:
            self._sagemaker = client("sagemaker", config)
            self._s3 = client("s3", config)
        except NoCredentials:
            raise AwsCallFailed("no AWS credentials: configure them, or pass --local for the local registry") from None
        self.where = f"SageMaker in {config.account}/{config.region}"

    def versions(self, group: str) -> Iterator[dict[str, Any]]:
        pages = self._call(
            lambda: list(
                self._sagemaker.get_paginator("list_model_packages").paginate(
                    ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
                )
            )
        )
        for page in pages:
            for summary in page["ModelPackageSummaryList"]:
                yield self._describe_arn(summary["ModelPackageArn"])

    def describe(self, group: str, version: int) -> dict[str, Any]:
        return self._describe_arn(self.arn(group, version))

    def set_approval(
        self, package: Mapping[str, Any], status: str, reason: str | None, card: Mapping[str, Any] | None = None
    ) -> None:
        request = {"ModelPackageArn": package["ModelPackageArn"], "ModelApprovalStatus": status}
        request |= {"ApprovalDescription": reason or ""} | ({"ModelCard": _model_card(card)} if card else {})
        self._call(lambda: self._sagemaker.update_model_package(**request))

    def read_report(self, uri: str) -> Any:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            return json.loads(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "AccessDenied", "403", "404"):
                return None  # the report is gone or unreadable: show the version without it
            raise AwsCallFailed(f"reading {uri} failed: {error}") from None
        except (BotoCoreError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def arn(self, group: str, version: int) -> str:
        config = self._config
        return f"arn:aws:sagemaker:{config.region}:{config.account}:model-package/{group}/{version}"

    def _describe_arn(self, arn: str) -> dict[str, Any]:
        described: dict[str, Any] = self._call(lambda: self._sagemaker.describe_model_package(ModelPackageName=arn))
        return described

    @staticmethod
    def _call(request: Callable[[], Any]) -> Any:
        try:
            return request()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ValidationException":
                raise UsageError(error.response["Error"].get("Message", str(error))) from None
            raise AwsCallFailed(f"the model registry call failed: {error}") from None
        except BotoCoreError as error:
            raise AwsCallFailed(f"the model registry call failed: {error}") from None


def command_registry(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    registry: Registry = LocalRegistry(args.state_dir, config.region) if args.local else SageMakerRegistry(config)
    group = args.group or config.model_package_group_name
    versions = [*args.versions, *([args.version] if args.version is not None else [])]
    if args.action == "list":
        return _list(registry, group, as_json=args.json)
    if args.action == "diff":
        if len(versions) != 2:
            raise UsageError("mlops registry diff N M: name the two versions to compare")
        return _diff(registry, group, versions[0], versions[1], as_json=args.json)
    if len(versions) > 1:
        raise UsageError(f"mlops registry {args.action} takes one version, got {len(versions)}")
    if args.action == "show":
        if not versions:
            raise UsageError("mlops registry show N: name the version")
        return _show(registry, group, versions[0], as_json=args.json)
    return _decide(registry, group, args, versions[0] if versions else None)


def _decide(registry: Registry, group: str, args: argparse.Namespace, version: int | None) -> int:
    status = _DECISIONS[args.action]
    reason = args.reason
    if not args.local and not reason:
        raise UsageError(f'mlops registry {args.action} --env: say why with --reason "..." (ApprovalDescription)')
    if version is None:
        pending = next(
            (p for p in registry.versions(group) if p["ModelApprovalStatus"] == ApprovalStatus.PENDING), None
        )
        if pending is None:
            raise UsageError(f"no version of {group} is {ApprovalStatus.PENDING}: name the version")
        version = int(pending["ModelPackageVersion"])
    package = registry.describe(group, version)
    if package.get("ModelApprovalStatus") == status:
        raise UsageError(f"{group} version {version} is already {status}: nothing to do")
    card = None
    if status == ApprovalStatus.APPROVED:  # the card, from the version's reports and the team's statements
        importances = _importances(package, registry)
        card = model_card.build(package, _metrics(package, registry), importances, model_card.statements())
    registry.set_approval(package, status, reason, card)
    if args.json:
        print(json.dumps({"group": group, "version": version, "status": status, "reason": reason}, indent=2))
    else:
        previous = package.get("ModelApprovalStatus")
        print(f"{group} version {version}: {previous} -> {status} ({package['ModelPackageArn']})")
    return 0


def _list(registry: Registry, group: str, *, as_json: bool) -> int:
    rows = [_summary(package, _metrics(package, registry)) for package in registry.versions(group)]
    if as_json:
        print(json.dumps({"group": group, "versions": rows}, indent=2))
        return 0
    print(f"Model package group {group} ({registry.where}): {len(rows)} version(s), newest first")
    for row in rows:
        auc = f"{row['roc_auc']:.4f}" if row["roc_auc"] is not None else "-"
        print(
            f"  {row['version']:>3}  {row['status']:<22}  roc_auc {auc:<7}  experiment {row['experiment_id'] or '-'}  "
            f"dataset {row['dataset'] or '-'}  created {str(row['created'])[:19]}"
        )
    return 0


def _show(registry: Registry, group: str, version: int, *, as_json: bool) -> int:
    details = version_details(registry, group, version)
    if as_json:
        print(json.dumps(details, indent=2, default=str))
        return 0
    print(f"{group} version {version} ({registry.where})")
    print("\n".join(details_lines(details)))
    return 0


def version_details(registry: Registry, group: str, version: int) -> dict[str, Any]:
    """One version: status, lineage (CustomerMetadataProperties), metrics, baselines, container, pinning units."""
    package = registry.describe(group, version)
    metrics = _metrics(package, registry)
    return {
        **_summary(package, metrics),
        "approval_description": package.get("ApprovalDescription"),
        "pinned_by": _pinned_by(package["ModelPackageArn"]),
        "lifecycle": package.get("ModelLifeCycle", {}),
        "metadata": package.get("CustomerMetadataProperties", {}),
        "metrics": {name: round(value, 4) for name, value in metrics.items()},
        "feature_importance": _importances(package, registry),
        "model_card": model_card.summary(package),
        "baselines": {
            kind: dig(package, ("DriftCheckBaselines", "ModelDataQuality", kind, "S3Uri"))
            for kind in ("Statistics", "Constraints")
        },
        "container": dig(package, ("InferenceSpecification", "Containers", 0)) or {},
    }


def details_lines(details: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in details.items():
        if isinstance(value, dict):
            lines.append(f"  {key}:")
            items = value.items() if key in _RANKED else sorted(value.items())
            lines += [f"    {name}: {item}" for name, item in items]
        else:
            lines.append(f"  {key}: {value if value not in (None, []) else '-'}")
    return lines


def _diff(registry: Registry, group: str, first: int, second: int, *, as_json: bool) -> int:
    old, new = (_lineage(registry.describe(group, version), registry) for version in (first, second))
    changes = {name: [old.get(name), new.get(name)] for name in sorted(old | new) if old.get(name) != new.get(name)}
    if as_json:
        print(json.dumps({"group": group, "from": first, "to": second, "changes": changes}, indent=2, default=str))
        return 0
    print(f"{group} version {first} -> {second}: {len(changes)} change(s)")
    for name, (before, after) in changes.items():
        print(f"  {name}: {before if before is not None else '-'} -> {after if after is not None else '-'}")
    return 0


def _lineage(package: Mapping[str, Any], registry: Registry) -> dict[str, Any]:
    """What `diff` compares, flattened: approval, recorded metadata (data, code, hyperparameters), scores, artifacts."""
    container = ("InferenceSpecification", "Containers", 0)
    return {
        "status": package.get("ModelApprovalStatus"),
        **{f"metadata.{key}": value for key, value in package.get("CustomerMetadataProperties", {}).items()},
        **{f"metrics.{name}": round(value, 4) for name, value in _metrics(package, registry).items()},
        "model_data": dig(package, (*container, "ModelDataUrl")),
        "inference_code": dig(package, (*container, "Environment", "SAGEMAKER_SUBMIT_DIRECTORY")),
        "image": dig(package, (*container, "Image")),
        "baselines.statistics": dig(package, ("DriftCheckBaselines", "ModelDataQuality", "Statistics", "S3Uri")),
    }


def _summary(package: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, Any]:
    metadata = package.get("CustomerMetadataProperties", {})
    return {
        "version": package["ModelPackageVersion"],
        "status": package["ModelApprovalStatus"],
        "created": package.get("CreationTime"),
        "roc_auc": metrics.get("auc"),
        "experiment_id": metadata.get("experiment-id"),
        "dataset": metadata.get("dataset"),
        "arn": package["ModelPackageArn"],
    }


def _metrics(package: Mapping[str, Any], registry: Registry) -> dict[str, float]:
    """The evaluation metrics the version was registered with ({} when its report is gone)."""
    uri = dig(package, _METRICS_PATH)
    report = registry.read_report(uri) if isinstance(uri, str) else None
    metrics = report.get("binary_classification_metrics") if isinstance(report, dict) else None
    if not isinstance(metrics, dict):
        return {}
    return {
        name: float(entry["value"])
        for name, entry in metrics.items()
        if isinstance(entry, dict) and isinstance(entry.get("value"), int | float)
    }


def _importances(package: Mapping[str, Any], registry: Registry) -> dict[str, float]:
    """{feature: permutation importance}, the most important first, from the version's Explainability report ({} when
    it has none or it is gone)."""
    uri = dig(package, _EXPLAINABILITY_PATH)
    report = registry.read_report(uri) if isinstance(uri, str) else None
    found = report.get("permutation_importances") if isinstance(report, dict) else None
    if not isinstance(found, dict):
        return {}
    means = {name: entry.get("mean") for name, entry in found.items() if isinstance(entry, dict)}
    numbers = {name: float(mean) for name, mean in means.items() if isinstance(mean, int | float)}
    return {name: round(mean, 4) for name, mean in sorted(numbers.items(), key=lambda item: -item[1])}


def _model_card(content: Mapping[str, Any] | None) -> dict[str, str] | None:
    """UpdateModelPackage's ModelCard for approved content (None: no card)."""
    if content is None:
        return None
    return {"ModelCardContent": json.dumps(content), "ModelCardStatus": model_card.APPROVED_CARD}


def _pinned_by(arn: str) -> list[str]:
    """The units whose committed pin (config/deployments.json) serves this version."""
    pins = read_pins(project_root() / "config" / "deployments.json")
    return sorted(unit for unit, pin in pins.items() if isinstance(pin, dict) and pin.get("model_package_arn") == arn)
