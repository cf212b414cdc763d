"""Cold start of the start-pipeline Lambda handler, measured locally in fresh processes.

Prints the median import time and peak RSS of importing the handler module, and of also creating its
SageMaker client (what a first valid event costs). No AWS call is made.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HANDLER_DIR = Path(__file__).resolve().parents[1] / "lambda" / "start_pipeline"
PROBE = """
import json, os, resource, sys, time
os.environ.update(PIPELINE_NAME="churn-dev-training", LANDING_BUCKET="landing", DATASET_PREFIX="datasets/",
                  MARKER_NAME="_SUCCESS", AWS_DEFAULT_REGION="eu-west-1")
started = time.perf_counter()
import handler
imported = time.perf_counter() - started
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
client = None
if sys.argv[1] == "client":
    started = time.perf_counter()
    client = handler.sagemaker_client()
    imported += time.perf_counter() - started
print(json.dumps({"seconds": imported, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(mode: str, runs: int) -> tuple[float, float]:
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PROBE, mode],
                # The Lambda runtime puts the function's folder on the path the same way (LAMBDA_TASK_ROOT).
                env={**os.environ, "PYTHONPATH": str(HANDLER_DIR)},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(r["seconds"] for r in results), max(r["max_rss_mb"] for r in results)


def main(runs: int = 5) -> None:
    for mode, label in (("import", "import handler"), ("client", "import handler + create SageMaker client")):
        seconds, rss = measure(mode, runs)
        print(f"{label}: median {seconds * 1000:.0f} ms over {runs} runs, peak RSS {rss:.1f} MB")


if __name__ == "__main__":
    main()
