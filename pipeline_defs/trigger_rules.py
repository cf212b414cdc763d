"""The dataset trigger's rules - where a dataset lands, how its id looks, the EventBridge pattern - as one module for
the CDK construct that builds the rule (platform_constructs/training_trigger.py) and `mlops dataset put`.

They live in the function's own file, lambda/start_pipeline/event_pattern.py, which ships beside its handler. `lambda`
is a Python keyword, so that folder is no package: this is the one place that loads the file by path. Stdlib only.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

FUNCTION_DIR = Path(__file__).resolve().parents[1] / "lambda" / "start_pipeline"
EVENT_PATTERN_FILE = FUNCTION_DIR / "event_pattern.py"


@functools.cache
def trigger_rules() -> ModuleType:
    """lambda/start_pipeline/event_pattern.py, loaded once."""
    spec = importlib.util.spec_from_file_location("start_pipeline_event_pattern", EVENT_PATTERN_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {EVENT_PATTERN_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
