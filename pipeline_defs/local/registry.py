"""A file-based stand-in for the SageMaker Model Registry: groups, numbered versions, approval status.

Each version is `<root>/<group>/<version, 6 digits>.json` holding what DescribeModelPackage would return (timestamps
as ISO 8601 strings): exactly what `steps/resolve_model.py` reads with REGISTRY_BACKEND=local. The local runner's
RegisterModel step writes versions here; `mlops registry` lists, approves and rejects them.

Runs and `mlops registry` may change one group at once: numbering a new version and approving one happen under the
group's lock (`<root>/<group>.lock`), and every file lands whole (`files.py`), so concurrent registrations get
distinct consecutive versions and none is lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.contract import APPROVAL_STATUSES, ApprovalStatus
from pipeline_defs.local.assembly import LOCAL_ACCOUNT
from pipeline_defs.local.errors import LocalRunError
from pipeline_defs.local.files import locked, read_json

_GROUP_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


class LocalModelRegistry:
    def __init__(self, root: Path, region: str) -> None:
        self.root = Path(root)
        self.region = region

    def register(self, request: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """A new version from a CreateModelPackage request (pipeline expressions already evaluated)."""
        group = _checked_group(request.get("ModelPackageGroupName"))
        status = request.get("ModelApprovalStatus", ApprovalStatus.PENDING.value)
        _check_status(status)
        containers = request.get("InferenceSpecification", {}).get("Containers") or [{}]
        if not isinstance(containers[0].get("ModelDataUrl"), str):
            raise LocalRunError("InferenceSpecification.Containers[0].ModelDataUrl must be an S3 URI")
        with locked(self.root / group):
            versions = self.versions(group)
            version = versions[-1]["ModelPackageVersion"] + 1 if versions else 1
            created = _timestamp(now)
            package = {
                **{key: value for key, value in request.items() if key != "SkipModelValidation"},
                "ModelPackageGroupName": group,
                "ModelPackageName": group,
                "ModelPackageVersion": version,
                "ModelPackageArn": self.arn(group, version),
                "ModelPackageStatus": "Completed",
                "ModelApprovalStatus": status,
                "CreationTime": created,
                "LastModifiedTime": created,
            }
            self._write(package)
        return package

    def versions(self, group: str) -> list[dict[str, Any]]:
        """Every version of `group`, oldest first ([] for a group that has none yet)."""
        packages = [self._read(path) for path in sorted((self.root / _checked_group(group)).glob("*.json"))]
        return sorted(packages, key=lambda package: int(package["ModelPackageVersion"]))

    def describe(self, group: str, version: int) -> dict[str, Any]:
        path = self.path(group, version)
        if not path.is_file():
            known = [str(package["ModelPackageVersion"]) for package in self.versions(group)]
            raise LocalRunError(f"{group} has no version {version} (versions: {', '.join(known) or 'none'})")
        return self._read(path)

    def set_approval(
        self,
        group: str,
        version: int,
        status: str,
        description: str | None = None,
        now: datetime | None = None,
        model_card: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """UpdateModelPackage of ModelApprovalStatus (and ApprovalDescription, ModelCard)."""
        _check_status(status)
        with locked(self.root / group):
            package = self.describe(group, version)
            package["ModelApprovalStatus"] = status
            package["LastModifiedTime"] = _timestamp(now)
            if description:
                package["ApprovalDescription"] = description
            if model_card:
                package["ModelCard"] = dict(model_card)
            self._write(package)
        return package

    def set_lifecycle(
        self, group: str, version: int, lifecycle: Mapping[str, str], now: datetime | None = None
    ) -> dict[str, Any]:
        """UpdateModelPackage of ModelLifeCycle (Stage, StageStatus, StageDescription)."""
        with locked(self.root / group):
            package = self.describe(group, version)
            package["ModelLifeCycle"] = dict(lifecycle)
            package["LastModifiedTime"] = _timestamp(now)
            self._write(package)
        return package

    def latest(self, group: str, status: str) -> dict[str, Any] | None:
        """The newest version with `status`, if any."""
        matching = [package for package in self.versions(group) if package.get("ModelApprovalStatus") == status]
        return matching[-1] if matching else None

    def arn(self, group: str, version: int) -> str:
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:model-package/{group}/{version}"

    def path(self, group: str, version: int) -> Path:
        return self.root / group / f"{version:06d}.json"

    def _write(self, package: Mapping[str, Any]) -> None:
        path = self.path(package["ModelPackageGroupName"], package["ModelPackageVersion"])
        write_atomically(path, json.dumps(package, indent=2, sort_keys=True) + "\n")  # readers never see half a file

    def _read(self, path: Path) -> dict[str, Any]:
        package = read_json(path, "model package", f"move it out of {path.parent} (or restore it from a backup)")
        if not isinstance(package, dict) or not isinstance(package.get("ModelPackageVersion"), int):
            raise LocalRunError(f"model package {path} has no ModelPackageVersion: move it out of {path.parent}")
        return package


def _checked_group(group: Any) -> str:
    """A model package group name (SageMaker's pattern): never a path that leaves the registry folder."""
    if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
        raise LocalRunError(f"model package group {group!r}: use 1-63 letters, digits and '-', not starting with '-'")
    return group


def _check_status(status: Any) -> None:
    if status not in APPROVAL_STATUSES:
        raise LocalRunError(f"ModelApprovalStatus {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")


def _timestamp(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat()
