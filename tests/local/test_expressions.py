"""Expressions as the engine evaluates them: conditions, Std:Join, parameter types, ExpireAfter durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline_defs.contract import parse_duration
from pipeline_defs.local import DefinitionError, ExpressionError
from pipeline_defs.local.expressions import condition_holds, evaluate, resolve_parameters


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Type": "Equals", "LeftValue": 1, "RightValue": 1.0}, True),
        ({"Type": "Equals", "LeftValue": False, "RightValue": 0}, False),
        ({"Type": "GreaterThan", "LeftValue": 2, "RightValue": 2}, False),
        ({"Type": "GreaterThanOrEqualTo", "LeftValue": 2, "RightValue": 2}, True),
        ({"Type": "LessThan", "LeftValue": "a", "RightValue": "b"}, True),
        ({"Type": "LessThanOrEqualTo", "LeftValue": 3, "RightValue": 2.5}, False),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.Stage"}, "Values": ["dev", "prod"]}, True),
        ({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, True),
        (
            {
                "Type": "Or",
                "Conditions": [
                    {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                    {"Type": "In", "QueryValue": 1, "Values": [1]},
                ],
            },
            True,
        ),
    ],
)
def test_condition_types(condition: dict, expected: bool) -> None:
    class Parameters:
        def get(self, reference: str):
            return {"Parameters.Stage": "dev"}[reference]

    assert condition_holds(condition, Parameters()) is expected


def test_join_writes_text_as_it_is_and_other_values_as_json() -> None:
    class Values:
        def get(self, reference: str):
            return {"Parameters.Flag": True, "Parameters.Rate": 0.5, "Parameters.Count": 3}[reference]

    joined = evaluate(
        {
            "Std:Join": {
                "On": "-",
                "Values": ["x", {"Get": "Parameters.Flag"}, {"Get": "Parameters.Rate"}, {"Get": "Parameters.Count"}],
            }
        },
        Values(),
    )
    assert joined == "x-true-0.5-3"


def test_comparing_values_of_different_kinds_is_an_error() -> None:
    with pytest.raises(ExpressionError) as error:
        condition_holds({"Type": "GreaterThan", "LeftValue": "high", "RightValue": 0.5}, None)
    assert str(error.value) == "condition GreaterThan cannot compare 'high' with 0.5"


def test_parameters_are_typed_from_text_and_defaults() -> None:
    declared = [
        {"Name": "Name", "Type": "String", "DefaultValue": "a"},
        {"Name": "Count", "Type": "Integer", "DefaultValue": 1},
        {"Name": "Rate", "Type": "Float", "DefaultValue": 1},
        {"Name": "Flag", "Type": "Boolean", "DefaultValue": False},
    ]
    assert resolve_parameters(declared, {}) == {"Name": "a", "Count": 1, "Rate": 1.0, "Flag": False}
    overrides = {"Name": "b", "Count": "7", "Rate": "0.25", "Flag": "TRUE"}
    assert resolve_parameters(declared, overrides) == {"Name": "b", "Count": 7, "Rate": 0.25, "Flag": True}


@pytest.mark.parametrize(
    ("declared", "overrides", "message"),
    [
        (
            [{"Name": "Rate", "Type": "Float", "DefaultValue": 0.1}],
            {"Rate": "abc"},
            "parameter Rate is Float, but the value 'abc' is not a number",
        ),
        (
            [{"Name": "Count", "Type": "Integer", "DefaultValue": 1}],
            {"Count": "1.5"},
            "parameter Count is Integer, but the value '1.5' is not an integer",
        ),
        (
            [{"Name": "Flag", "Type": "Boolean", "DefaultValue": True}],
            {"Flag": "yes"},
            "parameter Flag is Boolean, but the value 'yes' is not true or false",
        ),
        (
            [{"Name": "Rate", "Type": "Float", "DefaultValue": 0.1}],
            {"Rate": True},
            "parameter Rate is Float, but the value True is not a number",
        ),
        (
            [{"Name": "Rate", "Type": "Float", "DefaultValue": "high"}],
            {},
            "parameter Rate is Float, but its DefaultValue 'high' is not a number",
        ),
        (
            [{"Name": "Rate", "Type": "Decimal"}],
            {},
            "parameter Rate has type 'Decimal'; expected one of String, Integer, Float, Boolean",
        ),
        (
            [{"Name": "Uri", "Type": "String"}],
            {},
            "parameter Uri (String) has no default value: pass one (--param Uri=...)",
        ),
        ([{"Name": "Uri", "Type": "String"}], {"Url": "x"}, "unknown parameter(s) Url; the pipeline declares: Uri"),
    ],
)
def test_parameters_of_the_wrong_type_fail_with_one_clear_message(declared, overrides, message) -> None:
    with pytest.raises(DefinitionError) as error:
        resolve_parameters(declared, overrides)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", timedelta(days=30)),
        ("PT12H", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("T16m", timedelta(minutes=16)),
        ("30dT5h", timedelta(days=30, hours=5)),
        ("P1Y2M1W", timedelta(days=365 + 60 + 7)),
    ],
)
def test_expire_after_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
