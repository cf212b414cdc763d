"""What each unit serves: the model version pinned in `config/deployments.json`, written only by `mlops promote`.

Promotion is a reviewed code change: the pin is committed, `cdk diff` shows the endpoint change and `git revert`
rolls it back. Synth reads this file and never the registry, so it stays offline and reproducible. A unit with
no pin has no serving resources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from config.environments import model_source_of
from config.settings import ConfigError, EnvironmentConfig
from pipeline_defs.atomic_file import write_atomically

DEPLOYMENTS_FILE = Path(__file__).with_name("deployments.json")

# arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>
_PACKAGE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/(?P<version>[1-9]\d{0,8})$"
)
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+$")


def package_arn_parts(arn: str) -> dict[str, str]:
    """{partition, region, account, group, version} of a versioned model package ARN ({} when it is none)."""
    match = _PACKAGE_ARN.match(arn)
    return match.groupdict() if match else {}


@dataclass(frozen=True, kw_only=True)
class ModelPin:
    """One unit's served version and what serving and monitoring need from its package, read at promotion."""

    model_package_arn: str
    version: int
    # The container the package registered: the endpoint's role may pull exactly this image and read these objects.
    image_uri: str
    model_data_url: str
    inference_code_url: str
    supported_instance_types: tuple[str, ...]
    # Baselines computed by the training pipeline on the evaluation slice (Model Monitor formats).
    data_quality_statistics_uri: str
    data_quality_constraints_uri: str
    model_quality_statistics_uri: str
    model_quality_constraints_uri: str | None = None
    # The evaluation metrics of the version on that slice ({metric: value}), for review.
    metrics: Mapping[str, float] = field(default_factory=dict)
    # {metric: threshold} of the package's model-quality constraints (what its Model Monitor schedule checks): the
    # model-quality alarms use the same values, so an alarm and its monitor never disagree.
    model_quality_thresholds: Mapping[str, float] = field(default_factory=dict)
    promoted_at: str = ""
    # The unit whose group registered the version when the unit serves another's (model_source), else None: the
    # package ARN is that unit's, so the version's lineage (dataset, code versions) stays where it was registered.
    source_unit: str | None = None

    @property
    def arn_parts(self) -> dict[str, str]:
        return package_arn_parts(self.model_package_arn)

    def problems(self, config: EnvironmentConfig, account: str, source: EnvironmentConfig | None = None) -> list[str]:
        """Why this pin cannot be served by the unit of `config` in `account` ([] when it can); with a `source` unit
        (config's model_source) the package must be a version of the source's group, in the source's account."""
        parts = self.arn_parts
        if not parts:
            return [f"'{self.model_package_arn}' is not a versioned model package ARN"]
        owner, whose = (source, f"{source.env_name}'s") if source else (config, "the unit's")
        expected = {
            "region": owner.region,
            "account": source.account if source else account,
            "group": owner.model_package_group_name,
        }
        found = [f"{key} {parts[key]} ({whose}: {value})" for key, value in expected.items() if parts[key] != value]
        problems = [f"the package is from another {', '.join(found)}"] if found else []
        if self.source_unit != (source.env_name if source else None):
            problems.append(f"it was promoted from {self.source_unit or 'the unit itself'}, not its model_source")
        if int(parts["version"]) != self.version:
            problems.append(f"version {self.version} does not match the ARN's {parts['version']}")
        uris = {
            "model_data_url": self.model_data_url,
            "inference_code_url": self.inference_code_url,
            "data_quality_statistics_uri": self.data_quality_statistics_uri,
            "data_quality_constraints_uri": self.data_quality_constraints_uri,
            "model_quality_statistics_uri": self.model_quality_statistics_uri,
        }
        problems += [f"{name} '{uri}' is not an s3:// object" for name, uri in uris.items() if not _S3_URI.match(uri)]
        if config.serving_instance_type not in self.supported_instance_types:
            problems.append(
                f"the package supports {', '.join(self.supported_instance_types)} for real-time inference, "
                f"not the unit's serving_instance_type {config.serving_instance_type}"
            )
        return problems

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["supported_instance_types"] = list(self.supported_instance_types)
        document["metrics"] = dict(self.metrics)
        document["model_quality_thresholds"] = dict(self.model_quality_thresholds)
        if self.source_unit is None:  # units serving their own versions keep the pins they always had
            del document["source_unit"]
        return document

    @classmethod
    def from_json(cls, unit: str, document: object) -> ModelPin:
        if not isinstance(document, dict):
            raise ConfigError(unit, "deployments.json", "the pin is not an object", "re-run mlops promote")
        try:
            return cls(
                **{
                    **document,
                    "supported_instance_types": tuple(document.get("supported_instance_types", ())),
                    "metrics": dict(document.get("metrics", {})),
                    "model_quality_thresholds": dict(document.get("model_quality_thresholds", {})),
                }
            )
        except TypeError as error:
            problem = f"the pin is malformed ({error})"
            raise ConfigError(unit, "deployments.json", problem, "re-run mlops promote") from None


def unit_key(config: EnvironmentConfig) -> str:
    """The unit's key in the deployments file: `dev`, `staging`, `prod` or `dev-<sandbox>`."""
    return f"{config.env_name}-{config.sandbox}" if config.sandbox else config.env_name


def read_pins(path: Path = DEPLOYMENTS_FILE) -> dict[str, Any]:
    """{unit name: pin document} of a deployments file ({} when it does not exist)."""
    if not path.exists():
        return {}
    try:
        pins = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = f"{path} is not valid JSON ({error})"
        raise ConfigError(path.name, "deployments", problem, "restore it from git") from None
    if not isinstance(pins, dict):
        raise ConfigError(path.name, "deployments", f"{path} is not a JSON object", "restore it from git")
    return pins


def pin_for(config: EnvironmentConfig, path: Path = DEPLOYMENTS_FILE, account: str | None = None) -> ModelPin | None:
    """The validated pin of the unit of `config`, or None when nothing is pinned (no serving resources)."""
    document = read_pins(path).get(unit_key(config))
    if document is None:
        return None
    pin = ModelPin.from_json(config.unit_name, document)
    source = model_source_of(config)
    problems = pin.problems(config, account or config.account, source)
    if pin.model_quality_constraints_uri is not None and not pin.model_quality_thresholds:
        problems.append("it has model-quality constraints but no model_quality_thresholds (pinned before they were")
        problems[-1] += " recorded: run mlops promote for this version again)"
    if problems:
        group = f"{source.env_name}'s group (its model_source)" if source else "this unit's own group"
        raise ConfigError(config.unit_name, "deployments.json", "; ".join(problems), f"promote a version of {group}")
    return pin


def write_pin(path: Path, config: EnvironmentConfig, pin: ModelPin) -> ModelPin | None:
    """Pin `pin` for the unit of `config` in `path` (atomically: a crash leaves the old file); returns the old pin."""
    pins = read_pins(path)
    key = unit_key(config)
    previous = pins.get(key)
    pins[key] = pin.as_json()
    write_atomically(path, json.dumps(pins, indent=2, sort_keys=True) + "\n")
    return ModelPin.from_json(config.unit_name, previous) if previous is not None else None
