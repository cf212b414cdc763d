"""On-demand list prices of SageMaker, per region: a committed snapshot, refreshed from the AWS Price List API.

The cost commands read only the snapshot (config/prices/<region>.json), so they, the tests and CI need no network
and give the same figures until someone refreshes it on purpose. A price that is not in the snapshot is an error
naming the instance type and the refresh command, never a silent $0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.aws import AwsCallFailed
from mlops.common import UsageError, project_root
from mlops.cost import paging
from pipeline_defs.atomic_file import write_atomically

COMPONENTS = ("Training", "Processing", "Hosting", "Transform")
# The Price List's `component` value of each component whose name differs ("Batch Transform": from SageMaker's pricing
# page; not yet checked against a live GetProducts answer - README, "Cost").
PRICE_LIST_COMPONENTS = {"Transform": "Batch Transform"}
# Components priced by instance-hours only: a transform job's ML storage is not billed apart (SageMaker's pricing page).
WITHOUT_STORAGE = ("Transform",)
SERVICE_CODE = "AmazonSageMaker"
# The Price List API answers from three endpoints only; the SageMaker SDK picks them the same way.
_PRICING_ENDPOINTS = (("eu-", "eu-central-1"), ("af-", "eu-central-1"), ("ap-", "ap-south-1"), ("cn-", "ap-south-1"))
# Storage usage types name the component before ':VolumeUsage' (e.g. EU-Processing:VolumeUsage.gp2).
_STORAGE_USAGE_PARTS = (("-Train:", "Training"), ("-Processing:", "Processing"), ("-Host:", "Hosting"))


def default_prices_dir() -> Path:
    return project_root() / "config" / "prices"


def refresh_command(region: str) -> str:
    return f"mlops cost prices --refresh --region {region}"


def pricing_endpoint_region(region: str) -> str:
    return next((endpoint for prefix, endpoint in _PRICING_ENDPOINTS if region.startswith(prefix)), "us-east-1")


@dataclass(frozen=True)
class PriceSnapshot:
    """USD per instance-hour by component and instance type, and USD per GB-month of ML storage by component."""

    region: str
    publication_date: str
    source: str
    instance_hour: Mapping[str, Mapping[str, float]]
    storage_gb_month: Mapping[str, float]
    path: Path

    def hourly(self, component: str, instance_type: str) -> float:
        price = self.instance_hour.get(component, {}).get(instance_type)
        if price is None:
            raise UsageError(
                f"no {component} price for {instance_type} in {self.region} ({self.path}): "
                f"run `{refresh_command(self.region)}` (or add the type to the snapshot)"
            )
        return price

    def storage(self, component: str) -> float:
        price = self.storage_gb_month.get(component)
        if price is None:
            raise UsageError(
                f"no {component} ML storage price in {self.region} ({self.path}): run `{refresh_command(self.region)}`"
            )
        return price


def snapshot_path(region: str, prices_dir: Path | None = None) -> Path:
    return (prices_dir or default_prices_dir()) / f"{region}.json"


def load_snapshot(region: str, prices_dir: Path | None = None) -> PriceSnapshot:
    path = snapshot_path(region, prices_dir)
    if not path.is_file():
        raise UsageError(
            f"no price snapshot for {region} ({path}): run `{refresh_command(region)}` where AWS is reachable"
        )
    try:
        data = json.loads(path.read_text())
        snapshot = PriceSnapshot(
            region=data["region"],
            publication_date=data["publicationDate"],
            source=data["source"],
            instance_hour={c: {t: float(p) for t, p in types.items()} for c, types in data["instanceHour"].items()},
            storage_gb_month={c: float(p) for c, p in data["storageGbMonth"].items()},
            path=path,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(f"{path} is not a price snapshot ({error!r}): restore it from git or refresh it") from None
    if snapshot.region != region:
        raise UsageError(f"{path} holds prices of {snapshot.region}, not {region}: restore it from git or refresh it")
    return snapshot


def write_snapshot(snapshot: dict[str, Any], path: Path) -> None:
    """Write atomically: an interrupted refresh leaves the previous snapshot whole."""
    write_atomically(path, json.dumps(snapshot, indent=2, sort_keys=True) + "\n")


# --- refresh from the Price List API --------------------------------------------------------------------------------


def instance_filters(region: str, component: str) -> list[dict[str, str]]:
    """GetProducts filters for the on-demand ML instances of one component (COMPONENTS)."""
    return [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "ML Instance"},
        {"Type": "TERM_MATCH", "Field": "component", "Value": PRICE_LIST_COMPONENTS.get(component, component)},
    ]


def storage_filters(region: str) -> list[dict[str, str]]:
    return [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "CONTAINS", "Field": "usagetype", "Value": "VolumeUsage"},
    ]


def fetch_products(pricing: Any, filters: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every product of every GetProducts page (PriceList items are JSON strings)."""
    products = []
    listed = paging.items(
        pricing,
        "get_products",
        "PriceList",
        f"Price List GetProducts ({', '.join(f['Value'] for f in filters)})",
        ServiceCode=SERVICE_CODE,
        Filters=filters,
        FormatVersion="aws_v1",
    )
    for item in listed:
        try:
            products.append(json.loads(item))
        except (TypeError, ValueError):
            raise AwsCallFailed(f"the Price List API returned a product that is not JSON: {str(item)[:80]}") from None
    return products


def on_demand_price(product: dict[str, Any]) -> tuple[str, float]:
    """(unit, USD) of a product's one on-demand price dimension; AwsCallFailed naming the SKU if it has more or none."""
    sku = product.get("product", {}).get("sku", "?")
    terms = list(product.get("terms", {}).get("OnDemand", {}).values())
    dimensions = [d for term in terms for d in term.get("priceDimensions", {}).values()]
    if len(dimensions) != 1:
        raise AwsCallFailed(f"Price List product {sku}: expected one on-demand price, found {len(dimensions)}")
    try:
        return dimensions[0]["unit"], float(dimensions[0]["pricePerUnit"]["USD"])
    except (KeyError, TypeError, ValueError):
        raise AwsCallFailed(f"Price List product {sku}: its on-demand price has no USD amount") from None


def instance_prices(products: list[dict[str, Any]], component: str) -> dict[str, float]:
    """{instance type: USD per hour} of one component; ambiguous answers fail, naming the instance type."""
    found: dict[str, set[float]] = {}
    preferred: dict[str, set[float]] = {}
    for product in products:
        attributes = product.get("product", {}).get("attributes", {})
        instance_type = attributes.get("instanceName") or attributes.get("instanceType")
        unit, usd = on_demand_price(product)
        if not instance_type or unit != "Hrs":
            continue
        found.setdefault(instance_type, set()).add(usd)
        # Spot training, warm pools and the like share the component: the plain product names it as its type.
        if attributes.get("platoinstancetype") == component:
            preferred.setdefault(instance_type, set()).add(usd)
    prices = {}
    for instance_type, candidates in sorted(found.items()):
        chosen = preferred.get(instance_type, candidates)
        if len(chosen) != 1:
            raise AwsCallFailed(
                f"Price List: {len(chosen)} different {component} prices for {instance_type} {sorted(chosen)}"
            )
        prices[instance_type] = chosen.pop()
    return prices


def storage_prices(products: list[dict[str, Any]]) -> dict[str, float]:
    found: dict[str, set[float]] = {}
    for product in products:
        usage_type = product.get("product", {}).get("attributes", {}).get("usagetype", "")
        component = next((c for part, c in _STORAGE_USAGE_PARTS if part in usage_type), None)
        unit, usd = on_demand_price(product)
        if component is not None and unit == "GB-Mo":
            found.setdefault(component, set()).add(usd)
    ambiguous = {c: sorted(p) for c, p in found.items() if len(p) != 1}
    if ambiguous:
        raise AwsCallFailed(f"Price List: several ML storage prices {ambiguous}")
    return {component: prices.pop() for component, prices in sorted(found.items())}


def refresh(pricing: Any, region: str, retrieved: datetime) -> dict[str, Any]:
    """A new snapshot of `region` from the Price List API; AwsCallFailed when a component comes back empty."""
    instance_hour = {}
    publication_dates = set()
    for component in COMPONENTS:
        products = fetch_products(pricing, instance_filters(region, component))
        publication_dates |= {p["publicationDate"] for p in products if "publicationDate" in p}
        instance_hour[component] = instance_prices(products, component)
    storage_products = fetch_products(pricing, storage_filters(region))
    publication_dates |= {p["publicationDate"] for p in storage_products if "publicationDate" in p}
    storage = storage_prices(storage_products)
    stored = [c for c in COMPONENTS if c not in WITHOUT_STORAGE]
    missing = [c for c in COMPONENTS if not instance_hour[c]] + [f"{c} storage" for c in stored if c not in storage]
    if missing:
        raise AwsCallFailed(
            f"the Price List API returned no {', '.join(missing)} prices for {region}: nothing written "
            "(is the region right? the filters are in mlops/cost/prices.py)"
        )
    return {
        "region": region,
        "currency": "USD",
        "publicationDate": max(publication_dates) if publication_dates else retrieved.date().isoformat(),
        "retrieved": retrieved.isoformat(timespec="seconds"),
        "source": f"AWS Price List API (GetProducts, ServiceCode {SERVICE_CODE}, on-demand terms)",
        "howToRefresh": f"{refresh_command(region)} replaces this file",
        "instanceHour": instance_hour,
        "storageGbMonth": storage,
    }
