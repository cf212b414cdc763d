"""The step runtime: the interpreter every job of a local run executes its step script with.

In AWS the step scripts run in the scikit-learn framework image; locally they run with `.venv-steps/bin/python` of
this checkout, which the Makefile builds from `requirements-steps.txt` (the image's Python and library versions, the
source of each named there). `MLOPS_STEPS_PYTHON` names another interpreter (the one setting; `LocalRunner(python=)`
overrides it for a run). The CLI itself keeps running on `.venv`. A job in SageMaker's XGBoost image (training_engine
xgboost's Train) runs with `.venv-xgboost/bin/python` instead (requirements-xgboost.txt; `MLOPS_XGBOOST_PYTHON`).

    python = steps_python()          # LocalRunError (one line, with the fix) when it does not exist
    probe(python)                    # {"interpreter", "python", "libraries": {"scikit-learn": "1.4.2", ...}}
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pipeline_defs.local.errors import LocalRunError

STEPS_PYTHON_VARIABLE = "MLOPS_STEPS_PYTHON"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STEPS_PYTHON = PROJECT_ROOT / ".venv-steps" / "bin" / "python"
XGBOOST_PYTHON_VARIABLE = "MLOPS_XGBOOST_PYTHON"
DEFAULT_XGBOOST_PYTHON = PROJECT_ROOT / ".venv-xgboost" / "bin" / "python"
XGBOOST_IMAGE = "/sagemaker-xgboost:"  # the repository of SageMaker's XGBoost framework image, in any region
# The libraries a run reports the versions of: the step scripts' own (requirements-steps.txt).
REPORTED_LIBRARIES = ("scikit-learn", "numpy", "pandas", "pyarrow", "scipy", "joblib")
# Reads distribution metadata only (no library import): a few tens of milliseconds.
_PROBE = """
import importlib.metadata as metadata, json, platform, sys
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({"python": platform.python_version(), "libraries": {name: version(name) for name in sys.argv[1:]}}))
"""


def steps_python() -> str:
    """The configured step interpreter (`MLOPS_STEPS_PYTHON`, else this checkout's .venv-steps), which must exist."""
    return _configured(STEPS_PYTHON_VARIABLE, DEFAULT_STEPS_PYTHON, "it builds .venv-steps from requirements-steps.txt")


def xgboost_python() -> str:
    """The interpreter of jobs in SageMaker's XGBoost image (`MLOPS_XGBOOST_PYTHON`, else this checkout's
    .venv-xgboost: the image's Python and libraries, requirements-xgboost.txt), which must exist."""
    return _configured(
        XGBOOST_PYTHON_VARIABLE, DEFAULT_XGBOOST_PYTHON, "it builds .venv-xgboost from requirements-xgboost.txt"
    )


def job_python(image: object, step_runtime: str) -> str:
    """The interpreter a job of `image` runs with: the XGBoost runtime for SageMaker's XGBoost image, else the run's
    step runtime (the scikit-learn image's)."""
    return xgboost_python() if isinstance(image, str) and XGBOOST_IMAGE in image else step_runtime


def _configured(variable: str, default: Path, builds: str) -> str:
    configured = os.environ.get(variable)
    python = Path(configured) if configured else default
    if not (python.is_file() and os.access(python, os.X_OK)):
        fix = f"point {variable} at an existing interpreter" if configured else f"run `make deps` ({builds})"
        raise LocalRunError(f"the step runtime {python} does not exist: {fix}")
    return str(python)


def probe(python: str) -> dict[str, Any]:
    """{"interpreter": path, "python": version, "libraries": {name: version or None}} of `python`."""
    try:
        done = subprocess.run(
            [python, "-I", "-c", _PROBE, *REPORTED_LIBRARIES], capture_output=True, text=True, timeout=60, check=True
        )
        found: dict[str, Any] = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        raise LocalRunError(f"the step runtime {python} does not run ({error}): run `make deps`") from None
    return {"interpreter": python, **found}
