"""What many test folders need: the app built the way `cdk synth` builds it, and modules loaded from a file path."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from config import EnvironmentConfig, all_configs
from config.deployments import pin_for
from pipeline_defs.local.forkserver import preloaded
from pipeline_defs.local.step_runtime import steps_python

if TYPE_CHECKING:  # CDK is imported where an app is built: importing it starts its Node.js runtime
    import pandas as pd
    from aws_cdk import App
    from aws_cdk.cx_api import CloudAssembly

    from stacks.stage import MlPlatformStage

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTION_DIR = REPO_ROOT / "lambda" / "start_pipeline"
STEPS_DIR = REPO_ROOT / "pipeline_defs" / "steps"
ALL_UNITS = {config.unit_name: config for config in all_configs()}
# The tests serve a fixture version in prod (safe rollout, autoscaling) and in the sandbox (one small instance);
# dev and staging stay unpinned, as a fresh environment is: no serving resources.
FIXTURE_PINS = REPO_ROOT / "tests" / "fixtures" / "deployments.json"


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json: a bare App() would silently ignore its feature flags."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def build_app(
    config: EnvironmentConfig, outdir: Path, pins: Path = FIXTURE_PINS, builtin_validation: bool = False
) -> tuple[App, MlPlatformStage]:
    """An App as app.py makes it, with cdk.json's context and the unit of `config` (cdk-nag included, serving its pin
    in `pins`); CDK's built-in validation only when asked, as in app.py."""
    from stacks.stage import build_unit, new_app

    app = new_app(builtin_validation=builtin_validation, context=cdk_json_context(), outdir=str(outdir))
    return app, build_unit(app, config, pin_for(config, pins))


def step_runtime_probabilities(model_file: Path, rows: pd.DataFrame) -> list[float]:
    """A model.joblib's churn probabilities for `rows`, computed on the step runtime (the libraries that trained it:
    the CLI's own may not unpickle it)."""
    rows_file = model_file.with_name(f"{model_file.stem}-rows.csv")
    rows.to_csv(rows_file, index=False)
    script = model_file.with_name(f"{model_file.stem}-probabilities.py")
    script.write_text(
        "import json, sys, joblib, pandas as pd; model = joblib.load(sys.argv[1]); "
        "print(json.dumps(model.predict_proba(pd.read_csv(sys.argv[2]))[:, 1].tolist()))"
    )
    command = preloaded([steps_python(), str(script), str(model_file), str(rows_file)], os.environ)
    probabilities: list[float] = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return probabilities


def load_module(module_name: str, path: Path) -> ModuleType:
    """A module from its file: Lambda code (`lambda` is a keyword) and step scripts are not importable packages."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: dataclasses with string annotations look their module up.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class SynthesizedUnit:
    stage: MlPlatformStage
    assembly: CloudAssembly  # the unit's own (nested) assembly
    outdir: Path  # the whole cloud assembly, as `cdk synth` writes cdk.out


@functools.cache
def synthesized_unit(unit_name: str) -> SynthesizedUnit:
    """A unit synthesized once per test process, cdk-nag included (any unacknowledged finding raises)."""
    outdir = Path(tempfile.mkdtemp(prefix=f"cdk-out-{unit_name.replace('/', '-').replace('=', '-')}-"))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    app, stage = build_app(ALL_UNITS[unit_name], outdir)
    app.synth()
    return SynthesizedUnit(stage, stage.synth(), outdir)
