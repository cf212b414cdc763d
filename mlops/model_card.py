"""A version's model card (the model package's `ModelCard`), written by `mlops registry approve`.

Built from what the version was registered with - its evaluation metrics, its permutation importances (the
Explainability report), its lineage (dataset, execution, hyperparameters, the feature contract's code hash) and its
container - and from the team's statements in the committed `config/model_card.json` (owner, intended use, risk,
limitations). It is validated against the vendored schema (`config/schemas/model_package_model_card.schema.json`,
written by `tools/model_card_schema.py` from the pinned SDK's shapes, restricted to a model package's card) before
anything is sent: an invalid card refuses the approval with one line. Approving sends the card with status
`Approved` in the same UpdateModelPackage as the approval; `registry show` prints its summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from config import ConfigError
from mlops.common import UsageError, dig, project_root

STATEMENTS_FILE = project_root() / "config" / "model_card.json"
SCHEMA_FILE = project_root() / "config" / "schemas" / "model_package_model_card.schema.json"
STATEMENT_SECTIONS = ("intended_uses", "business_details", "additional_information")
APPROVED_CARD = "Approved"


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def problems(content: Mapping[str, Any]) -> list[str]:
    """Why `content` is not a valid model package model card ([] when it is), each naming the JSON path."""
    from jsonschema.exceptions import best_match

    found = []
    for error in _validator().iter_errors(content):
        while error.context:  # an optional section (anyOf: the section or null): the section's own reason
            branches = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
            error = best_match(branches or error.context)
        found.append(f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}")
    return sorted(found)


def statements(path: Path = STATEMENTS_FILE) -> dict[str, Any]:
    """The team's statements: {"owner": str, "intended_uses": {...}, "business_details": {...},
    "additional_information": {...}} (config error, one line, when missing or malformed)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError("model card", path.name, f"cannot read it ({error})", "restore it from git") from None
    if not isinstance(document, dict) or not isinstance(document.get("owner"), str):
        raise ConfigError("model card", path.name, "it has no owner", 'add "owner": "<team> <email>"')
    unknown = sorted(set(document) - {"owner", *STATEMENT_SECTIONS})
    if unknown:
        sections = ", ".join(STATEMENT_SECTIONS)
        raise ConfigError("model card", path.name, f"unknown section {unknown[0]}", f"use {sections}")
    card = {section: document.get(section, {}) for section in STATEMENT_SECTIONS}
    found = problems({**card, "model_overview": {"model_creator": document["owner"]}})
    if found:
        raise ConfigError("model card", path.name, found[0], "follow the model card schema (README: Model cards)")
    return document


def build(
    package: Mapping[str, Any],
    metrics: Mapping[str, float],
    importances: Mapping[str, float],
    team: Mapping[str, Any],
) -> dict[str, Any]:
    """The card of a registered version (`metrics`, `importances`: its reports, as `registry show` reads them)."""
    lineage = package.get("CustomerMetadataProperties", {})
    container = dig(package, ("InferenceSpecification", "Containers", 0)) or {}
    dataset = lineage.get("dataset")
    hyperparameters = [
        {"name": key.removeprefix("hp-"), "value": value}
        for key, value in sorted(lineage.items())
        if key.startswith("hp-")
    ]
    candidate, incumbent = lineage.get("candidate-roc-auc"), lineage.get("incumbent-roc-auc")
    compared = (
        f"against the approved version {lineage.get('incumbent-version')} (ROC AUC {incumbent}) on the same rows"
        if incumbent not in (None, "null")
        else "with no approved version to compare against"
    )
    metric_groups: list[dict[str, Any]] = [
        {
            "name": "binary classification (evaluation slice)",
            "metric_data": [{"name": name, "type": "number", "value": value} for name, value in metrics.items()],
        }
    ]
    if importances:
        metric_groups.append(
            {
                "name": "permutation importance (validation slice)",
                "metric_data": [
                    {
                        "name": "drop of ROC AUC when the feature is shuffled",
                        "type": "bar_chart",
                        "value": list(importances.values()),
                        "x_axis_name": list(importances),
                    }
                ],
            }
        )
    content: dict[str, Any] = {
        "model_overview": {"model_creator": team["owner"], "model_artifact": [container.get("ModelDataUrl", "")]},
        **{section: dict(team.get(section, {})) for section in STATEMENT_SECTIONS},
        "training_details": {
            "training_observations": f"Registered by {lineage.get('execution', 'an unknown execution')}.",
            "training_job_details": {
                "training_datasets": [dataset] if dataset else [],
                "hyper_parameters": hyperparameters,
                "training_environment": {"container_image": [container.get("Image", "")]},
            },
        },
        "evaluation_details": [
            {
                "name": "evaluation slice",
                "evaluation_observation": f"ROC AUC {candidate} {compared}; registered only if the paired DeLong "
                "lower bound of the difference was above -MaxRegression.",
                "datasets": [dataset] if dataset else [],
                "metric_groups": metric_groups,
            }
        ],
    }
    contract = lineage.get("code-feature_contract.json")
    if contract:
        information: dict[str, Any] = content["additional_information"]
        information["custom_details"] = {**information.get("custom_details", {}), "feature_contract_code": contract}
    found = problems(content)
    if found:
        raise UsageError(f"the model card of version {package.get('ModelPackageVersion')} is invalid: {found[0]}")
    return content


def summary(package: Mapping[str, Any]) -> dict[str, Any]:
    """What `registry show` prints of the version's card ({} when it has none)."""
    card = package.get("ModelCard") or {}
    try:
        content = json.loads(card.get("ModelCardContent", "{}"))
    except ValueError:
        return {"status": card.get("ModelCardStatus"), "content": "unreadable"}
    if not content:
        return {}
    uses = content.get("intended_uses", {})
    return {
        "status": card.get("ModelCardStatus"),
        "owner": dig(content, ("model_overview", "model_creator")),
        "intended_uses": uses.get("intended_uses"),
        "risk_rating": uses.get("risk_rating"),
        "caveats": dig(content, ("additional_information", "caveats_and_recommendations")),
        "evaluation": dig(content, ("evaluation_details", 0, "evaluation_observation")),
    }
