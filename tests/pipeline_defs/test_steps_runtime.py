"""The step runtime (requirements-steps.txt, .venv-steps) is the scikit-learn image the definitions run the steps in.

The definitions name the image by its framework version (pipeline_defs/sdk.py SKLEARN_FRAMEWORK_VERSION); the lock
names the image it was taken from (`# image-framework-version:`) and pins that image's scikit-learn. Changing one
without the other fails here, in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import EnvironmentConfig
from pipeline_defs.local.step_runtime import REPORTED_LIBRARIES, probe, steps_python

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "requirements-steps.txt"
FULL_LOCK = REPO_ROOT / "constraints-steps.txt"
IMAGE_TAG = re.compile(r"sagemaker-scikit-learn:(?P<framework>[0-9]+\.[0-9]+-[0-9]+)-cpu-py3")


def pins(text: str) -> dict[str, str]:
    """{package: version} of the `name==version` lines."""
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE))


def declared_image(text: str) -> str:
    found = re.search(r"^# image-framework-version: (\S+)$", text, re.MULTILINE)
    assert found, f"{LOCK.name} declares no `# image-framework-version:` line"
    return found.group(1)


def test_the_definitions_run_the_steps_in_the_image_the_step_lock_pins(definitions_of, dev_config: EnvironmentConfig):
    text = LOCK.read_text()
    image, scikit_learn = declared_image(text), pins(text)["scikit-learn"]
    used = {
        found.group("framework") for body in definitions_of(dev_config).values() for found in IMAGE_TAG.finditer(body)
    }
    if used != {image}:
        pytest.fail(
            f"the definitions run the steps in sagemaker-scikit-learn {sorted(used)} but {LOCK.name} is the lock of "
            f"{image}: change pipeline_defs/sdk.py SKLEARN_FRAMEWORK_VERSION and {LOCK.name} together",
            pytrace=False,
        )
    # Framework version X.Y-N is scikit-learn X.Y (N: the container's own build).
    if not scikit_learn.startswith(image.split("-")[0] + "."):
        pytest.fail(f"{LOCK.name} pins scikit-learn {scikit_learn}, not the {image} image's", pytrace=False)


def test_the_step_runtime_has_the_locked_versions() -> None:
    """A venv built from an older lock is caught here (`make deps` rebuilds it when the lock changes)."""
    locked = pins(FULL_LOCK.read_text())
    runtime = probe(steps_python())
    assert runtime["python"].startswith("3.10.")  # the image's Python (docker/1.4-2: python3.10)
    stale = {name: (runtime["libraries"][name], locked[name]) for name in REPORTED_LIBRARIES}
    stale = {name: versions for name, versions in stale.items() if versions[0] != versions[1]}
    assert not stale, f"the step runtime differs from {FULL_LOCK.name} ({{name: (has, pinned)}}): {stale}: make deps"


# training_engine xgboost: SageMaker's XGBoost image and its own lock (requirements-xgboost.txt, .venv-xgboost).
XGBOOST_LOCK = REPO_ROOT / "requirements-xgboost.txt"


def test_the_xgboost_image_is_the_one_the_xgboost_lock_pins() -> None:
    from pipeline_defs import sdk

    image = declared_image(XGBOOST_LOCK.read_text())
    if image != sdk.XGBOOST_FRAMEWORK_VERSION:
        pytest.fail(
            f"the definitions train in sagemaker-xgboost {sdk.XGBOOST_FRAMEWORK_VERSION} but {XGBOOST_LOCK.name} is the"
            f" lock of {image}: change pipeline_defs/sdk.py XGBOOST_FRAMEWORK_VERSION and {XGBOOST_LOCK.name} together",
            pytrace=False,
        )
    # Framework version X.Y-Z is xgboost X.Y.Z.
    if pins(XGBOOST_LOCK.read_text())["xgboost-cpu"] != image.replace("-", "."):
        pytest.fail(f"{XGBOOST_LOCK.name} pins another xgboost than the {image} image's", pytrace=False)
