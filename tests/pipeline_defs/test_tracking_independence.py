"""Tracking in AWS changes nothing the pipelines run: no definition, cache key or step container knows about MLflow.

(A unit's tracking rule and alarms are tested beside the other rules and alarms: tests/infra/test_notifications.py.)
"""

from __future__ import annotations

import dataclasses
import sys
from types import ModuleType

from config import load_config
from pipeline_defs.definitions import pipeline_settings
from tests.helpers import REPO_ROOT


def test_tracking_does_not_reach_the_pipeline_definitions(monkeypatch):
    """The definitions (so every step's cache key) are built from pipeline_settings: the switch does not reach them.

    The SDK-side settings types are replaced by recorders of their arguments: importing the SDK would cost seconds.
    """
    recorder = ModuleType("pipeline_defs.dsl")
    recorder.PipelineSettings = recorder.RetrySettings = lambda **arguments: arguments
    monkeypatch.setitem(sys.modules, "pipeline_defs.dsl", recorder)
    for config in (load_config("dev"), load_config("prod")):
        switched = dataclasses.replace(config, tracking_mlflow=not config.tracking_mlflow)
        settings = pipeline_settings(config, {"code": "s3://b/k"})
        assert settings["model_package_group_name"] == config.model_package_group_name  # the recorder is in use
        assert settings == pipeline_settings(switched, {"code": "s3://b/k"})


def test_no_step_container_installs_or_contacts_mlflow():
    """The step scripts, their library and the pinned step runtime never mention MLflow: the function logs."""
    sources = [*(REPO_ROOT / "pipeline_defs" / "steps").rglob("*.py"), *(REPO_ROOT / "steplib").rglob("*.py"),
               REPO_ROOT / "requirements-steps.txt", REPO_ROOT / "constraints-steps.txt"]  # fmt: skip
    assert len(sources) > 10
    assert [path.name for path in sources if "mlflow" in path.read_text().lower()] == []
