"""Makes a benchmark of step code run on the step runtime (.venv-steps: the scikit-learn image's Python and libraries,
pipeline_defs/local/step_runtime.py), whichever interpreter started it: figures measured on the CLI's newer libraries
would not be the containers'.

    from on_step_runtime import on_step_runtime, run_on_step_runtime   # bench/ is the script's folder
    run_on_step_runtime(arguments)   # re-executes this script there with `arguments`, unless it already runs there

The step runtime is Python 3.10 with the step libraries only: the re-executed script may import the step scripts
(by path, or as pipeline_defs.steps.*: the checkout comes from PYTHONPATH) but not the checkout's 3.11 packages
(config, pipeline_defs.local): what it needs from them, the first run reads and passes on in `arguments`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_MARKER = "MLOPS_BENCH_ON_STEP_RUNTIME"


def on_step_runtime() -> bool:
    return os.environ.get(_MARKER) == "1"


def run_on_step_runtime(arguments: list[str] | None = None) -> None:
    if on_step_runtime():
        return
    from pipeline_defs.local.step_runtime import PROJECT_ROOT, steps_python

    python = steps_python()
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    sys.stdout.flush()
    script = str(Path(sys.argv[0]).resolve())
    os.execve(
        python,
        [python, script, *(sys.argv[1:] if arguments is None else arguments)],
        # OpenMP threads sleep while they wait, as the local runner's jobs do (pipeline_defs/local/jobs.py).
        {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONPATH": path, _MARKER: "1"},
    )
