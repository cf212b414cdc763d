"""Numbers the config owns, which definitions, stacks and step scripts only pass on.

The training gate's defaults (MinimumScore, MaxRegression, ConfidenceLevel) are the config's.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from config import EnvironmentConfig, load_config
from pipeline_defs.definitions import build_definitions
from pipeline_defs.packaging import content_addressed_uris


def definitions(config: EnvironmentConfig) -> dict[str, dict[str, Any]]:
    built = build_definitions(config, content_addressed_uris("cdk-assets"))
    return {name: json.loads(body) for name, body in built.items()}


def test_the_gate_defaults_are_the_configs() -> None:
    gate = {"minimum_score": 0.75, "max_regression": 0.02, "confidence_level": 0.9}
    config = dataclasses.replace(load_config("dev"), **gate)
    built = definitions(config)
    training, evaluation = (built[config.training_pipeline_name], built[config.evaluation_pipeline_name])
    defaults = {p["Name"]: p.get("DefaultValue") for p in training["Parameters"]}
    assert (defaults["MinimumScore"], defaults["MaxRegression"], defaults["ConfidenceLevel"]) == (0.75, 0.02, 0.9)
    assert {p["Name"]: p.get("DefaultValue") for p in evaluation["Parameters"]}["MinimumScore"] == 0.75
