"""The billed side: the exact GetCostAndUsage request and its pages, the disk cache, reconciliation, tag activation."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from config import load_config
from mlops.aws import AwsCallFailed
from mlops.cost import COST_TAG_KEYS, explorer
from tests.cli.conftest import cli

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DEV = load_config("dev")


def group(experiment: str, usage_type: str, usd: str, hours: str | None = None) -> dict:
    metrics = {"UnblendedCost": {"Amount": usd, "Unit": "USD"}}
    metrics["UsageQuantity"] = {"Amount": hours or "0", "Unit": "Hrs" if hours else "GB-Mo"}
    return {"Keys": [f"experiment-id${experiment}", usage_type], "Metrics": metrics}


def day(start: str, *groups: dict, estimated: bool = False) -> dict:
    end = (date.fromisoformat(start) + timedelta(days=1)).isoformat()
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": list(groups), "Estimated": estimated}


PAGES = [
    {
        "ResultsByTime": [
            day(
                "2026-11-20",
                group("exp-42", "EU-Train:ml.m5.large", "0.0700", "0.55"),
                group("exp-42", "EU-Processing:ml.m5.large", "0.0300", "0.25"),
            )
        ],
        "NextPageToken": "next",
    },
    {
        "ResultsByTime": [
            day(
                "2026-11-21",
                group("exp-42", "EU-Processing:VolumeUsage.gp2", "0.0010"),
                group("", "EU-Host:ml.m5.large", "3.0720", "24"),
                group("exp-7", "EU-Train:ml.m5.large", "0.5000", "3.9"),
                estimated=True,
            )
        ]
    },
]


@pytest.fixture
def ce(aws_env):
    client = boto3.client("ce", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_the_request_groups_by_experiment_and_usage_type_filtered_to_sagemaker_and_the_unit():
    assert explorer.cost_and_usage_request(DEV, date(2026, 11, 1), date(2026, 11, 30)) == {
        "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-30"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "UsageQuantity"],
        "GroupBy": [{"Type": "TAG", "Key": "experiment-id"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
        "Filter": {
            "And": [
                {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon SageMaker"]}},
                {"Tags": {"Key": "project", "Values": ["churn"]}},
                {"Tags": {"Key": "environment", "Values": ["dev"]}},
            ]
        },
    }
    sandbox = explorer.cost_and_usage_request(load_config("dev", "alice"), date(2026, 11, 1), date(2026, 11, 2))
    assert {"Tags": {"Key": "sandbox", "Values": ["alice"]}} in sandbox["Filter"]["And"]


def test_every_page_is_fetched_once_then_served_from_the_cache(ce, tmp_path):
    client, stubber = ce
    request = explorer.cost_and_usage_request(DEV, date(2026, 11, 20), date(2026, 11, 22))
    stubber.add_response("get_cost_and_usage", PAGES[0], request)
    stubber.add_response("get_cost_and_usage", PAGES[1], {**request, "NextPageToken": "next"})
    assert explorer.fetch_cost_and_usage(client, request, tmp_path, NOW) == PAGES
    stubber.assert_no_pending_responses()
    # Within CACHE_HOURS the same request costs nothing (no stubbed response left: a call would raise).
    assert explorer.fetch_cost_and_usage(client, request, tmp_path, NOW + timedelta(hours=5)) == PAGES
    # After it, Cost Explorer is asked again.
    stubber.add_response("get_cost_and_usage", {"ResultsByTime": []}, request)
    assert explorer.fetch_cost_and_usage(client, request, tmp_path, NOW + timedelta(hours=7)) == [{"ResultsByTime": []}]


def test_a_cost_explorer_failure_is_one_line_and_writes_no_cache(ce, tmp_path):
    client, stubber = ce
    request = explorer.cost_and_usage_request(DEV, date(2026, 11, 20), date(2026, 11, 22))
    stubber.add_client_error("get_cost_and_usage", "DataUnavailableException", "Data is not available")
    with pytest.raises(AwsCallFailed, match=r"GetCostAndUsage failed.*Data is not available"):
        explorer.fetch_cost_and_usage(client, request, tmp_path, NOW)
    assert list(tmp_path.iterdir()) == []


def test_pages_sum_per_experiment_with_the_untagged_bucket_apart():
    billed = explorer.billed_by_experiment(PAGES)
    assert billed.usd == pytest.approx({"exp-42": 0.101, "": 3.072, "exp-7": 0.5})
    assert billed.hours == pytest.approx({"exp-42": 0.8, "": 24, "exp-7": 3.9})
    assert billed.estimated and billed.days == 2


def test_reconciliation_puts_estimate_beside_bill_and_warns_about_the_lag():
    billed = explorer.billed_by_experiment(PAGES)
    result = explorer.reconcile({"exp-42": 0.1, "exp-9": 0.2}, billed, NOW - timedelta(hours=3), NOW)
    rows = {row["experiment"]: row for row in result.rows}
    assert set(rows) == {"exp-42", "exp-7", "exp-9"}
    assert rows["exp-42"]["difference_usd"] == pytest.approx(0.001)
    assert rows["exp-9"]["billed_usd"] == 0 and rows["exp-7"]["estimated_usd"] == 0
    assert result.untagged_usd == pytest.approx(3.072)
    assert any("3 h old" in w for w in result.warnings) and any("estimated" in w for w in result.warnings)
    old = explorer.reconcile({"exp-42": 0.1}, billed, NOW - timedelta(days=2), NOW)
    assert not any("h old" in w for w in old.warnings)


def test_an_inactive_tag_and_an_empty_window_are_named():
    untagged_only = explorer.billed_by_experiment(
        [{"ResultsByTime": [day("2026-11-20", group("", "EU-Train:ml.m5.large", "0.07", "0.5"))]}]
    )
    result = explorer.reconcile({"exp-42": 0.07}, untagged_only, NOW - timedelta(days=3), NOW)
    assert any("not an active cost allocation tag" in w for w in result.warnings)
    empty = explorer.reconcile({}, explorer.billed_by_experiment([{"ResultsByTime": []}]), None, NOW)
    assert empty.rows == [] and empty.untagged_usd == 0
    assert empty.warnings == ["Cost Explorer returned no days for this window"]


def test_a_group_the_report_cannot_read_is_an_error():
    with pytest.raises(AwsCallFailed, match="cannot read"):
        explorer.billed_by_experiment([{"ResultsByTime": [day("2026-11-20", {"Keys": ["x"], "Metrics": {}})]}])


# --- tag activation -------------------------------------------------------------------------------------------------


def expect_statuses(stubber: Stubber, *pages: list[dict]) -> None:
    for index, tags in enumerate(pages):
        request = {"TagKeys": list(COST_TAG_KEYS), "Type": "UserDefined"}
        if index:
            request["NextToken"] = f"t{index}"
        response: dict = {"CostAllocationTags": tags}
        if index + 1 < len(pages):
            response["NextToken"] = f"t{index + 1}"
        stubber.add_response("list_cost_allocation_tags", response, request)


def tag(key: str, status: str) -> dict:
    return {"TagKey": key, "Type": "UserDefined", "Status": status}


def run_tags(monkeypatch, client, capsys, *argv):
    monkeypatch.setattr("mlops.cost.command.client", lambda service, config: client)
    return cli(capsys, "cost", "tags", *argv)


def test_tags_lists_statuses_and_activates_only_the_inactive_keys(ce, monkeypatch, capsys):
    client, stubber = ce
    expect_statuses(stubber, [tag("project", "Active"), tag("environment", "Inactive")], [tag("pipeline", "Inactive")])
    stubber.add_response(
        "update_cost_allocation_tags_status",
        {"Errors": []},
        {
            "CostAllocationTagsStatus": [
                {"TagKey": "environment", "Status": "Active"},
                {"TagKey": "pipeline", "Status": "Active"},
            ]
        },
    )
    code, out, _ = run_tags(monkeypatch, client, capsys, "--activate", "--json")
    assert code == 0
    assert json.loads(out) == {
        "statuses": {
            "project": "Active",
            "environment": "Inactive",
            "cost-center": "not seen yet",
            "pipeline": "Inactive",
            "experiment-id": "not seen yet",
        },
        "activated": ["environment", "pipeline"],
        "errors": [],
    }


def test_partial_activation_failures_are_reported_and_exit_1(ce, monkeypatch, capsys):
    client, stubber = ce
    expect_statuses(stubber, [tag("environment", "Inactive"), tag("project", "Inactive")])
    stubber.add_response(
        "update_cost_allocation_tags_status",
        {"Errors": [{"TagKey": "project", "Code": "TagKeysNotFoundException", "Message": "Tag keys not found"}]},
        {
            "CostAllocationTagsStatus": [
                {"TagKey": "project", "Status": "Active"},
                {"TagKey": "environment", "Status": "Active"},
            ]
        },
    )
    code, out, err = run_tags(monkeypatch, client, capsys, "--activate")
    assert code == 1
    assert "activated: environment" in out and "error: project: TagKeysNotFoundException Tag keys not found" in err


@pytest.mark.parametrize(
    ("code", "message", "explanation"),
    [
        ("AccessDeniedException", "Linked account doesn't have access", "only the management \\(payer\\) account"),
        ("ValidationException", "Tag keys not found", "retry tomorrow"),
    ],
)
def test_activation_refusals_are_explained(code, message, explanation):
    error = ClientError({"Error": {"Code": code, "Message": message}}, "UpdateCostAllocationTagsStatus")
    assert re.search(explanation, explorer.explain_tag_error(error, "activating"))


def test_a_member_account_gets_one_explained_error_line(ce, monkeypatch, capsys):
    client, stubber = ce
    stubber.add_client_error("list_cost_allocation_tags", "AccessDeniedException", "Linked account doesn't have access")
    code, out, err = run_tags(monkeypatch, client, capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: listing cost allocation tags was refused") and err.count("\n") == 1


def test_an_experiment_report_keeps_only_its_own_rows():
    billed = explorer.billed_by_experiment(PAGES)
    result = explorer.reconcile({"exp-42": 0.1}, billed, None, NOW, only_estimated=True)
    assert [row["experiment"] for row in result.rows] == ["exp-42"]
    assert result.untagged_usd == pytest.approx(3.072)
