"""Which steps a selective run runs and which the source stands in for (`pipeline_defs.selection`), on a definition
shaped like the training pipeline: a chain, a step beside it, and a condition with two branches."""

from __future__ import annotations

import pytest

from pipeline_defs.selection import SelectionError, definition_fingerprint, reused_steps, select


def step(name: str, *reads: str, depends_on: tuple[str, ...] = ()) -> dict:
    arguments = {
        "Inputs": [{"Get": f"Steps.{read}.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"} for read in reads]
    }
    return {"Name": name, "Type": "Processing", "Arguments": arguments, "DependsOn": list(depends_on)}


DEFINITION = {
    "Steps": [
        step("Resolve"),
        step("Prepare"),
        step("Train", "Prepare"),
        step("Evaluate", "Train", "Resolve"),
        step("Baseline", "Prepare", depends_on=("Train",)),
        {
            "Name": "Gate",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Steps.Evaluate.ProcessingJobStatus"}}],
                "IfSteps": [step("Register", "Baseline")],
                "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {}}],
            },
        },
    ]
}


def test_from_a_step_selects_it_and_every_step_after_it_including_branches() -> None:
    assert select(DEFINITION, from_step="Evaluate") == ["Evaluate", "Gate", "Register", "Stop"]
    assert select(DEFINITION, from_step="Train") == ["Train", "Evaluate", "Baseline", "Gate", "Register", "Stop"]


def test_the_source_stands_in_for_everything_the_selected_steps_need_directly_or_not() -> None:
    assert reused_steps(DEFINITION, select(DEFINITION, from_step="Evaluate")) == [
        "Resolve",
        "Prepare",
        "Train",
        "Baseline",
    ]
    assert reused_steps(DEFINITION, ["Train"]) == ["Prepare"]
    assert reused_steps(DEFINITION, ["Resolve"]) == []


def test_explicit_steps_must_include_every_step_between_two_of_them() -> None:
    assert select(DEFINITION, steps=["Baseline", "Train"]) == ["Train", "Baseline"]
    with pytest.raises(SelectionError, match="step Evaluate lies between selected steps: select it too"):
        select(DEFINITION, steps=["Train", "Gate"])


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"from_step": "Evaluat"}, "the pipeline has no step 'Evaluat' \\(its steps: Resolve, Prepare, Train, "),
        ({"steps": ["Train", "Nope"]}, "no step 'Nope'"),
        ({}, "pass one of --from STEP or --steps A,B"),
        ({"from_step": "Train", "steps": ["Train"]}, "pass one of"),
    ],
)
def test_a_selection_the_pipeline_cannot_run_is_one_message(choice: dict, message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        select(DEFINITION, **choice)


def test_the_fingerprint_changes_with_any_value_and_not_with_key_order() -> None:
    reordered = {"Steps": [dict(reversed(list(s.items()))) for s in DEFINITION["Steps"]]}
    changed = {"Steps": [*DEFINITION["Steps"][:-1], step("Gate")]}
    assert definition_fingerprint(reordered) == definition_fingerprint(DEFINITION)
    assert definition_fingerprint(changed) != definition_fingerprint(DEFINITION)
