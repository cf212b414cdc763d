"""The price snapshot: the committed file loads, bad ones are one-line errors, and refresh reads Price List pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from mlops.aws import AwsCallFailed
from mlops.cli import main
from mlops.common import UsageError
from mlops.cost import command, prices
from mlops.cost.prices import COMPONENTS, instance_filters, storage_filters

REGION = "eu-west-1"
RETRIEVED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def product(usage_type: str, usd: str, unit: str = "Hrs", **attributes: str) -> str:
    sku = f"SKU{abs(hash((usage_type, usd))) % 10**8}"
    return json.dumps(
        {
            "product": {"sku": sku, "attributes": {"usagetype": usage_type, "regionCode": REGION, **attributes}},
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": unit, "pricePerUnit": {"USD": usd}}
                        }
                    }
                }
            },
            "publicationDate": "2026-11-20T10:00:00Z",
        }
    )


def ml_instance(component: str, instance: str, usd: str, **attributes: str) -> str:
    part = {"Training": "Train", "Processing": "Processing", "Hosting": "Host", "Transform": "Tsform"}[component]
    listed = prices.PRICE_LIST_COMPONENTS.get(component, component)
    return product(f"EU-{part}:{instance}", usd, instanceName=instance, component=listed, **attributes)


def expect_pages(stubber: Stubber, filters: list[dict[str, str]], *pages: list[str]) -> None:
    """GetProducts answered in `pages`, each page after the first asked for with the previous NextToken."""
    for index, items in enumerate(pages):
        request = {"ServiceCode": "AmazonSageMaker", "Filters": filters, "FormatVersion": "aws_v1"}
        if index:
            request["NextToken"] = f"page-{index}"
        response = {"FormatVersion": "aws_v1", "PriceList": items}
        if index + 1 < len(pages):
            response["NextToken"] = f"page-{index + 1}"
        stubber.add_response("get_products", response, request)


@pytest.fixture
def pricing(aws_env):
    client = boto3.client("pricing", region_name="eu-central-1")
    with Stubber(client) as stubber:
        yield client, stubber


def expect_full_refresh(stubber: Stubber) -> None:
    expect_pages(
        stubber,
        instance_filters(REGION, "Training"),
        [ml_instance("Training", "ml.m5.large", "0.1280000000", platoinstancetype="Training")],
        [
            ml_instance("Training", "ml.m5.xlarge", "0.2570000000"),
            # A spot-training product under the same component: the plain Training product wins.
            ml_instance("Training", "ml.m5.large", "0.0400000000", platoinstancetype="SpotTraining"),
        ],
    )
    expect_pages(stubber, instance_filters(REGION, "Processing"), [ml_instance("Processing", "ml.m5.large", "0.128")])
    expect_pages(stubber, instance_filters(REGION, "Hosting"), [ml_instance("Hosting", "ml.m5.large", "0.128")])
    expect_pages(stubber, instance_filters(REGION, "Transform"), [ml_instance("Transform", "ml.m5.large", "0.128")])
    expect_pages(
        stubber,
        storage_filters(REGION),
        [
            product("EU-Train:VolumeUsage.gp2", "0.154", unit="GB-Mo"),
            product("EU-Processing:VolumeUsage.gp2", "0.11", unit="GB-Mo"),
        ],
        [
            product("EU-Host:VolumeUsage.gp2", "0.154", unit="GB-Mo"),
            product("EU-Notebk:VolumeUsage", "0.2", unit="GB-Mo"),
        ],
    )


def test_refresh_reads_every_page_of_every_component(pricing):
    client, stubber = pricing
    expect_full_refresh(stubber)
    snapshot = prices.refresh(client, REGION, RETRIEVED)
    stubber.assert_no_pending_responses()
    assert snapshot["instanceHour"] == {
        "Training": {"ml.m5.large": 0.128, "ml.m5.xlarge": 0.257},
        "Processing": {"ml.m5.large": 0.128},
        "Hosting": {"ml.m5.large": 0.128},
        "Transform": {"ml.m5.large": 0.128},
    }
    assert snapshot["storageGbMonth"] == {"Training": 0.154, "Processing": 0.11, "Hosting": 0.154}
    assert snapshot["publicationDate"] == "2026-11-20T10:00:00Z" and snapshot["region"] == REGION


def test_refresh_fails_loudly_when_a_component_or_a_price_is_ambiguous_or_missing(pricing):
    client, stubber = pricing
    expect_pages(
        stubber,
        instance_filters(REGION, "Training"),
        [ml_instance("Training", "ml.m5.large", "0.128"), ml_instance("Training", "ml.m5.large", "0.2")],
    )
    with pytest.raises(AwsCallFailed, match=r"2 different Training prices for ml.m5.large \[0.128, 0.2\]"):
        prices.refresh(client, REGION, RETRIEVED)
    for component in COMPONENTS:
        expect_pages(stubber, instance_filters(REGION, component), [])
    expect_pages(stubber, storage_filters(REGION), [])
    with pytest.raises(
        AwsCallFailed, match=r"no Training, Processing, Hosting, Transform, Training storage.*nothing written"
    ):
        prices.refresh(client, REGION, RETRIEVED)


def test_a_product_without_one_usd_price_is_named_by_its_sku():
    broken = json.loads(ml_instance("Training", "ml.m5.large", "0.1"))
    broken["terms"]["OnDemand"] = {}
    with pytest.raises(AwsCallFailed, match=r"Price List product SKU\d+: expected one on-demand price, found 0"):
        prices.instance_prices([broken], "Training")


def test_cli_refresh_writes_the_snapshot_the_cost_commands_then_read(pricing, tmp_path, monkeypatch, capsys):
    client, stubber = pricing
    expect_full_refresh(stubber)
    monkeypatch.setattr(command, "pricing_client", lambda region: client)
    monkeypatch.setattr(command, "utc_now", lambda: RETRIEVED)
    code = main(["cost", "prices", "--refresh", "--region", REGION, "--prices-dir", str(tmp_path), "--json"])
    assert code == 0
    written = json.loads((tmp_path / f"{REGION}.json").read_text())
    assert json.loads(capsys.readouterr().out) == written
    assert prices.load_snapshot(REGION, tmp_path).hourly("Training", "ml.m5.xlarge") == 0.257
    assert list(tmp_path.iterdir()) == [tmp_path / f"{REGION}.json"]  # no temporary file left behind


def test_the_committed_snapshot_prices_what_every_unit_runs():
    """dev, staging, prod and sandboxes train, process and serve on these types; the snapshot names its sources."""
    from tests.helpers import ALL_UNITS

    snapshot = prices.load_snapshot(REGION)
    for config in ALL_UNITS.values():
        assert snapshot.hourly("Training", config.training_instance_type) > 0
        assert snapshot.hourly("Processing", config.processing_instance_type) > 0
        assert snapshot.hourly("Hosting", config.serving_instance_type) > 0
    raw = json.loads(snapshot.path.read_text())
    assert "Sample_Costs.md" in raw["source"] and "--refresh" in raw["howToRefresh"]
    assert any("Inferred" in note for note in raw["notes"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"no price snapshot for eu-west-1 .*mlops cost prices --refresh --region eu-west-1"),
        ("{not json", "is not a price snapshot"),
        (json.dumps({"region": REGION}), "is not a price snapshot"),
        (
            json.dumps(
                {"region": "us-east-1", "publicationDate": "d", "source": "s", "instanceHour": {}, "storageGbMonth": {}}
            ),
            "holds prices of us-east-1, not eu-west-1",
        ),
    ],
)
def test_a_missing_or_damaged_snapshot_is_a_usage_error(tmp_path, content, message):
    if content is not None:
        (tmp_path / f"{REGION}.json").write_text(content)
    with pytest.raises(UsageError, match=message):
        prices.load_snapshot(REGION, tmp_path)


def test_the_pricing_endpoint_follows_the_region():
    assert prices.pricing_endpoint_region("eu-west-1") == "eu-central-1"
    assert prices.pricing_endpoint_region("ap-southeast-2") == "ap-south-1"
    assert prices.pricing_endpoint_region("us-west-2") == "us-east-1"


def test_a_price_list_failure_is_one_line_and_keeps_the_old_snapshot(pricing, tmp_path, monkeypatch, capsys):
    client, stubber = pricing
    (tmp_path / f"{REGION}.json").write_text("previous")
    stubber.add_client_error("get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts")
    monkeypatch.setattr(command, "pricing_client", lambda region: client)
    code = main(["cost", "prices", "--refresh", "--prices-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert (
        err.startswith("error: Price List GetProducts (eu-west-1, ML Instance, Training) failed")
        and err.count("\n") == 1
    )
    assert (tmp_path / f"{REGION}.json").read_text() == "previous"
