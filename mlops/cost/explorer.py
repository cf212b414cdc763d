"""The billed side: Cost Explorer by the experiment-id tag, and the activation of the cost allocation tags.

Cost Explorer is opt-in here: each GetCostAndUsage request (each page) costs $0.01, and answers are cached on disk
for CACHE_HOURS, because Cost Explorer refreshes at most three times a day. Its figures lag: cost appears about 24 h
after the usage, and only for tag keys that are active cost allocation tags (activated in the payer account, not
retroactive).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed
from mlops.cost import COST_TAG_KEYS, paging
from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.contract import EXPERIMENT_TAG

# The SERVICE dimension value of SageMaker in Cost Explorer (what public code filters on; if AWS renames it,
# `aws ce get-dimension-values --dimension SERVICE --search-string SageMaker` shows the new value).
SAGEMAKER_SERVICE = "Amazon SageMaker"
BILLING_LAG = timedelta(hours=24)
CACHE_HOURS = 6
UNTAGGED = ""  # the group `experiment-id$`: cost without the tag (endpoints, storage, or the tag not active yet)


def cost_and_usage_request(config: EnvironmentConfig, start: date, end: date) -> dict[str, Any]:
    """One DAILY query over [start, end): SageMaker cost of this unit, by experiment-id and usage type."""
    unit_tags = [("project", config.project), ("environment", config.env_name)]
    if config.sandbox:
        unit_tags.append(("sandbox", config.sandbox))
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "UsageQuantity"],
        "GroupBy": [{"Type": "TAG", "Key": EXPERIMENT_TAG}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
        "Filter": {
            "And": [
                {"Dimensions": {"Key": "SERVICE", "Values": [SAGEMAKER_SERVICE]}},
                *({"Tags": {"Key": key, "Values": [value]}} for key, value in unit_tags),
            ]
        },
    }


def fetch_cost_and_usage(ce: Any, request: dict[str, Any], cache_dir: Path, now: datetime) -> list[dict[str, Any]]:
    """Every page of the query, from the disk cache when a fresh copy exists (atomic writes; errors: exit 1)."""
    key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir / f"ce-{key}.json"
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            if now - datetime.fromisoformat(cached["stored"]) < timedelta(hours=CACHE_HOURS):
                pages: list[dict[str, Any]] = cached["pages"]
                return pages
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is fetched again and overwritten
    pages = []
    page_request = dict(request)
    try:
        while True:
            page = ce.get_cost_and_usage(**page_request)
            page.pop("ResponseMetadata", None)
            pages.append(page)
            if not page.get("NextPageToken"):
                break
            page_request["NextPageToken"] = page["NextPageToken"]
    except (BotoCoreError, ClientError) as error:
        raise AwsCallFailed(f"Cost Explorer GetCostAndUsage failed: {error}") from None
    _write_json(path, {"stored": now.isoformat(), "request": request, "pages": pages})
    return pages


def _write_json(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data))


@dataclass
class Billed:
    """Cost Explorer's answer, summed: USD and hours per experiment id ('' = untagged)."""

    usd: dict[str, float] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    by_usage_type: dict[tuple[str, str], float] = field(default_factory=dict)
    estimated: bool = False  # Cost Explorer marks periods that are not final yet
    days: int = 0


def billed_by_experiment(pages: Sequence[Mapping[str, Any]]) -> Billed:
    """Sum the groups of every day of every page; tag groups are `experiment-id$<value>` (`$` alone: untagged)."""
    billed = Billed()
    prefix = f"{EXPERIMENT_TAG}$"
    for page in pages:
        for period in page.get("ResultsByTime", []):
            billed.days += 1
            billed.estimated |= bool(period.get("Estimated"))
            for group in period.get("Groups", []):
                keys = group.get("Keys", [])
                metrics = group.get("Metrics", {})
                if len(keys) != 2 or not keys[0].startswith(prefix) or "UnblendedCost" not in metrics:
                    raise AwsCallFailed(f"Cost Explorer returned a group this report cannot read: {group}")
                experiment, usage_type = keys[0][len(prefix) :], keys[1]
                usd = float(metrics["UnblendedCost"]["Amount"])
                billed.usd[experiment] = billed.usd.get(experiment, 0.0) + usd
                billed.by_usage_type[(experiment, usage_type)] = (
                    billed.by_usage_type.get((experiment, usage_type), 0.0) + usd
                )
                usage = metrics.get("UsageQuantity", {})
                if usage.get("Unit") == "Hrs":
                    billed.hours[experiment] = billed.hours.get(experiment, 0.0) + float(usage["Amount"])
    return billed


@dataclass(frozen=True)
class Reconciliation:
    rows: list[dict[str, Any]]  # experiment, estimated_usd, billed_usd, difference_usd, billed_hours
    untagged_usd: float
    warnings: list[str]


def reconcile(
    estimated: Mapping[str, float],
    billed: Billed,
    last_usage: datetime | None,
    now: datetime,
    *,
    only_estimated: bool = False,
) -> Reconciliation:
    """Estimate beside bill per experiment, with the warnings an operator needs to read the gap.

    `only_estimated` keeps the rows of the estimated experiments (an `experiment` or `execution` report); otherwise
    experiments that only the bill knows (runs before the window, other tools) get a row too.
    """
    rows = []
    billed_only = set() if only_estimated else {e for e in billed.usd if e != UNTAGGED}
    for experiment in sorted(set(estimated) | billed_only):
        estimate, bill = estimated.get(experiment, 0.0), billed.usd.get(experiment, 0.0)
        rows.append(
            {
                "experiment": experiment,
                "estimated_usd": estimate,
                "billed_usd": bill,
                "difference_usd": bill - estimate,
                "billed_hours": billed.hours.get(experiment, 0.0),
            }
        )
    warnings = []
    if last_usage is not None and now - last_usage < BILLING_LAG:
        age = (now - last_usage).total_seconds() / 3600
        warnings.append(
            f"the latest usage is {age:.0f} h old: Cost Explorer shows cost about 24 h after usage, so the bill "
            "is incomplete"
        )
    tagged = sum(usd for experiment, usd in billed.usd.items() if experiment != UNTAGGED)
    if billed.usd.get(UNTAGGED, 0.0) > 0 and tagged == 0 and any(estimated.values()):
        warnings.append(
            f"no billed cost carries the {EXPERIMENT_TAG} tag: it is probably not an active cost allocation tag "
            "(run `mlops cost tags` in the payer account; activation is not retroactive)"
        )
    if not billed.days:
        warnings.append("Cost Explorer returned no days for this window")
    if billed.estimated:
        warnings.append("Cost Explorer marks part of this window as estimated (not final)")
    return Reconciliation(rows, billed.usd.get(UNTAGGED, 0.0), warnings)


# --- cost allocation tags -------------------------------------------------------------------------------------------


def tag_statuses(ce: Any) -> dict[str, str]:
    """{tag key: Active | Inactive | not seen yet} for the cost tags the pipelines put on jobs."""
    statuses = dict.fromkeys(COST_TAG_KEYS, "not seen yet")
    tags = paging.items(
        ce,
        "list_cost_allocation_tags",
        "CostAllocationTags",
        "listing cost allocation tags",
        explain=lambda error: explain_tag_error(error, "listing"),
        TagKeys=list(COST_TAG_KEYS),
        Type="UserDefined",
    )
    for tag in tags:
        if tag.get("TagKey") in statuses:
            statuses[tag["TagKey"]] = tag.get("Status", "?")
    return statuses


def activate_tags(ce: Any, keys: list[str]) -> list[str]:
    """Activate `keys` (at most 20 per call); the problems, one line each (partial failures come back as Errors)."""
    problems = []
    for start in range(0, len(keys), 20):
        batch = [{"TagKey": key, "Status": "Active"} for key in keys[start : start + 20]]
        try:
            errors = ce.update_cost_allocation_tags_status(CostAllocationTagsStatus=batch).get("Errors", [])
        except ClientError as error:
            raise AwsCallFailed(explain_tag_error(error, "activating")) from None
        except BotoCoreError as error:
            raise AwsCallFailed(f"activating cost allocation tags failed: {error}") from None
        problems += [f"{e.get('TagKey')}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors]
    return problems


def explain_tag_error(error: ClientError, doing: str) -> str:
    """What a refusal of the cost allocation tag manager means and what to do (`doing`: listing or activating)."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", str(error))
    if code == "AccessDeniedException":
        return (
            f"{doing} cost allocation tags was refused ({message}): only the management (payer) account of the "
            "organization can activate them; run this with its credentials"
        )
    if "not found" in message.lower() or code == "ValidationException":
        return (
            f"Cost Explorer does not know these tag keys yet ({message}): a key becomes activatable up to 24 h after "
            "it first appears on billed usage; retry tomorrow"
        )
    return f"{doing} cost allocation tags failed: {message}"
