"""What many test folders need: the app built the way `cdk synth` builds it, and modules loaded from a file path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_cdk import App

from config import EnvironmentConfig
from stacks.stage import MlPlatformStage, build_unit

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTION_DIR = REPO_ROOT / "lambda" / "start_pipeline"
STEPS_DIR = REPO_ROOT / "pipeline_defs" / "steps"


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json: a bare App() would silently ignore its feature flags."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def build_app(config: EnvironmentConfig, outdir: Path) -> tuple[App, MlPlatformStage]:
    """An App with cdk.json's context and the unit of `config` (cdk-nag included), writing into `outdir`."""
    app = App(context=cdk_json_context(), outdir=str(outdir))
    return app, build_unit(app, config)


def load_module(module_name: str, path: Path) -> ModuleType:
    """A module from its file: Lambda code (`lambda` is a keyword) and step scripts are not importable packages."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
