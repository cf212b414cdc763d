"""The model card's vendored schema (tools/model_card_schema.py) and the team's statements (config/model_card.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config import ConfigError
from mlops import model_card
from tools import model_card_schema


@pytest.mark.heavy(seconds=4)  # imports the SageMaker SDK's shapes
def test_the_vendored_schema_is_what_the_pinned_sdk_gives(capsys) -> None:
    assert model_card_schema.main(["--check"]) == 0, capsys.readouterr().err


def test_the_committed_statements_are_a_valid_card() -> None:
    team = model_card.statements()
    assert team["intended_uses"]["risk_rating"] in {"High", "Medium", "Low", "Unknown"}


@pytest.mark.parametrize(
    ("card", "found"),
    [
        # A model package's card: model_overview holds model_creator and model_artifact only.
        ({"model_overview": {"model_description": "x"}}, "model_overview: Additional properties are not allowed"),
        ({"model_package_details": {}}, "(top): Additional properties are not allowed"),
        ({"intended_uses": {"risk_rating": "Extreme"}}, "intended_uses.risk_rating: 'Extreme' is not one of"),
        ({"evaluation_details": [{"metric_groups": []}]}, "evaluation_details.0: 'name' is a required property"),
    ],
)
def test_the_schema_refuses_what_a_package_card_cannot_hold(card: dict, found: str) -> None:
    assert any(problem.startswith(found) for problem in model_card.problems(card)), model_card.problems(card)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{", "cannot read it"),
        (json.dumps({"intended_uses": {}}), "it has no owner"),
        (json.dumps({"owner": "t", "limits": {}}), "unknown section limits"),
        (json.dumps({"owner": "t", "intended_uses": {"risk_rating": "Huge"}}), "'Huge' is not one of"),
    ],
)
def test_bad_statements_are_one_config_error(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "model_card.json"
    path.write_text(document)
    with pytest.raises(ConfigError, match=message) as raised:
        model_card.statements(path)
    assert "\n" not in str(raised.value) and str(raised.value).startswith("config error in 'model card'")
