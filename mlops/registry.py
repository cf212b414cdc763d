"""`mlops registry list|approve|reject`: the local model registry the local runs register into."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from config import EnvironmentConfig
from mlops.common import UsageError, shown
from mlops.local import read_json
from pipeline_defs.contract import ApprovalStatus
from pipeline_defs.local import LocalModelRegistry, LocalS3

_DECISIONS = {"approve": ApprovalStatus.APPROVED, "reject": ApprovalStatus.REJECTED}


def command_registry(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    registry = LocalModelRegistry(args.state_dir / "registry", config.region)
    group = args.group or config.model_package_group_name
    if args.action == "list":
        return _list(registry, group, LocalS3(args.state_dir / "s3"), as_json=args.json)
    version = args.version
    if version is None:
        pending = registry.latest(group, ApprovalStatus.PENDING)
        if pending is None:
            raise UsageError(f"no version of {group} is {ApprovalStatus.PENDING}: pass --version N")
        version = pending["ModelPackageVersion"]
    status = _DECISIONS[args.action]
    package = registry.set_approval(group, version, status, args.description)
    if args.json:
        print(json.dumps(package, indent=2))
    else:
        print(f"{group} version {version}: {status} ({package['ModelPackageArn']})")
    return 0


def _list(registry: LocalModelRegistry, group: str, s3: LocalS3, *, as_json: bool) -> int:
    rows = [
        {
            "version": package["ModelPackageVersion"],
            "status": package["ModelApprovalStatus"],
            "created": package["CreationTime"],
            "roc_auc": _roc_auc(package, s3),
            "experiment_id": package.get("CustomerMetadataProperties", {}).get("experiment-id"),
            "arn": package["ModelPackageArn"],
        }
        for package in registry.versions(group)
    ]
    if as_json:
        print(json.dumps({"group": group, "versions": rows}, indent=2))
        return 0
    print(f"Model package group {group} (local registry {shown(registry.root)}): {len(rows)} version(s)")
    for row in rows:
        auc = f"{row['roc_auc']:.4f}" if row["roc_auc"] is not None else "-"
        print(
            f"  {row['version']:>3}  {row['status']:<22}  roc_auc {auc:<7}  "
            f"experiment {row['experiment_id'] or '-'}  created {row['created'][:19]}"
        )
    return 0


def _roc_auc(package: Mapping[str, Any], s3: LocalS3) -> float | None:
    """The candidate ROC AUC the Evaluate step recorded for this version, if its report is still here."""
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    report = read_json(s3, uri) if isinstance(uri, str) else None
    if not isinstance(report, dict):
        return None
    try:
        return float(report["binary_classification_metrics"]["auc"]["value"])
    except (KeyError, TypeError, ValueError):
        return None
