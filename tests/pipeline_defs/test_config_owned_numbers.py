"""Numbers the config owns, which definitions, stacks and step scripts only pass on.

The model-quality probability threshold: Model Monitor's analyzer applies it to live traffic (the Monitoring stack's job
definition) and Evaluate to the evaluation slice the registered model-quality constraints are derived from (its
argument in both pipelines), so the constraints and the monitor count the same predictions. The training gate's
defaults (MinimumScore, MaxRegression, ConfidenceLevel) are the config's too.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from config import EnvironmentConfig, load_config
from pipeline_defs.definitions import build_definitions
from pipeline_defs.graph import steps
from pipeline_defs.packaging import content_addressed_uris
from tests.helpers import load_module
from tests.infra.test_monitoring_stack import job_definition, template_of
from tests.pipeline_defs.test_feature_contract import STEPS, customers, prepare, run, strict_json, train

pytestmark = pytest.mark.heavy(seconds=15)  # scheduled first, longest first (tests/conftest.py)

evaluate = load_module("owned_evaluate", STEPS / "evaluate.py")
THRESHOLD_OPTION = "--probability-threshold"


def definitions(config: EnvironmentConfig) -> dict[str, dict[str, Any]]:
    built = build_definitions(config, content_addressed_uris("cdk-assets"))
    return {name: json.loads(body) for name, body in built.items()}


def evaluate_arguments(definition: dict[str, Any]) -> list[Any]:
    [step] = [step for step in steps(definition) if step["Name"] == "Evaluate"]
    arguments: list[Any] = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    return arguments


def option(arguments: list[Any], name: str) -> Any:
    return arguments[arguments.index(name) + 1]


def analyzer_threshold(config: EnvironmentConfig) -> float:
    """ProbabilityThresholdAttribute of the model-quality job definition the Monitoring stack synthesizes."""
    endpoint_input = job_definition(template_of(config))["Properties"]["ModelQualityJobInput"]["EndpointInput"]
    threshold: float = endpoint_input["ProbabilityThresholdAttribute"]
    return threshold


def test_the_probability_threshold_moves_the_analyzer_and_the_registered_constraints_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(tmp_path, customers(1200), capsys)
    prepared, model = tmp_path / "out", tmp_path / "model"
    run(
        train,
        *("--train", prepared / "train", "--validation", prepared / "validation", "--model-dir", model),
        *("--output-data-dir", tmp_path / "metrics", "--n-estimators", 30),
        capsys=capsys,
    )
    scoring = ("--model-dir", model, "--test-dir", prepared / "test", "--score-only", "--output-dir", tmp_path)
    run(evaluate, *scoring, capsys=capsys)
    scores = pd.read_csv(tmp_path / "scored.csv")["churn_probability"].to_numpy()

    prod = load_config("prod")
    constraints = {}
    for config in (prod, dataclasses.replace(prod, model_quality_probability_threshold=0.3)):
        threshold = config.model_quality_probability_threshold
        assert analyzer_threshold(config) == threshold
        # Both pipelines' Evaluate get it (scoring has none); training's turns it into the registered constraints.
        built = definitions(config)
        built.pop(config.scoring_pipeline_name)
        assert {name: option(evaluate_arguments(d), THRESHOLD_OPTION) for name, d in built.items()} == {
            config.training_pipeline_name: str(threshold),
            config.evaluation_pipeline_name: str(threshold),
        }
        arguments = evaluate_arguments(built[config.training_pipeline_name])
        output = tmp_path / f"evaluation-{threshold}"
        run(
            evaluate,
            *("--model-dir", model, "--incumbent-dir", tmp_path / "none", "--test-dir", prepared / "test"),
            *(THRESHOLD_OPTION, option(arguments, THRESHOLD_OPTION)),
            *("--quality-tolerance", option(arguments, "--quality-tolerance"), "--output-dir", output),
            capsys=capsys,
        )
        matrix = strict_json(output / "model_quality.json")["binary_classification_metrics"]["confusion_matrix"]
        predicted_churn = matrix["0"]["1"] + matrix["1"]["1"]
        assert predicted_churn == int((scores >= threshold).sum())  # a score at or above the threshold, as the analyzer
        constraints[threshold] = strict_json(output / "model_quality_constraints.json")
    low, default = (constraints[t]["binary_classification_constraints"] for t in (0.3, 0.5))
    assert low["auc"] == default["auc"]  # the AUC needs no threshold
    for metric in ("f1", "precision", "recall"):
        assert low[metric]["threshold"] != default[metric]["threshold"]


def test_evaluate_needs_a_probability_threshold_to_measure_and_refuses_one_outside_0_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(tmp_path, customers(600), capsys)
    prepared, model = tmp_path / "out", tmp_path / "model"
    training = ("--train", prepared / "train", "--validation", prepared / "validation", "--model-dir", model)
    run(train, *training, "--output-data-dir", tmp_path / "metrics", "--n-estimators", 5, capsys=capsys)
    measuring = ("--model-dir", model, "--test-dir", prepared / "test", "--output-dir", tmp_path / "evaluation")

    error = run(evaluate, *measuring, capsys=capsys, expect=1)
    assert "--probability-threshold is needed to measure labelled rows" in error
    for refused in (0, 1, 1.5, "nan"):
        error = run(evaluate, *measuring, THRESHOLD_OPTION, refused, capsys=capsys, expect=1)
        assert f"--probability-threshold {float(refused)} is out of range: use 0 < threshold < 1" in error
    assert not (tmp_path / "evaluation").exists()


def test_the_gate_defaults_are_the_configs() -> None:
    gate = {"minimum_score": 0.75, "max_regression": 0.02, "confidence_level": 0.9}
    config = dataclasses.replace(load_config("dev"), **gate)
    built = definitions(config)
    training, evaluation = (built[config.training_pipeline_name], built[config.evaluation_pipeline_name])
    defaults = {p["Name"]: p.get("DefaultValue") for p in training["Parameters"]}
    assert (defaults["MinimumScore"], defaults["MaxRegression"], defaults["ConfidenceLevel"]) == (0.75, 0.02, 0.9)
    assert {p["Name"]: p.get("DefaultValue") for p in evaluation["Parameters"]}["MinimumScore"] == 0.75
