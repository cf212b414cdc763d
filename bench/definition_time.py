"""Pipeline definition build time: SDK import once, then each build of both definitions of the dev unit.

Prints import time, first and repeated build times, and the target check (build under 1 s after import).
"""

from __future__ import annotations

import statistics
import time

started = time.perf_counter()
# pipeline_defs.evaluation, .sdk and .training are what build_definitions imports on its first call (the synth
# cache's path never does): imported here, so that the SDK's import is timed as the import.
from config import load_config  # noqa: E402
from pipeline_defs import evaluation, sdk, training  # noqa: E402, F401
from pipeline_defs.definitions import build_definitions  # noqa: E402
from pipeline_defs.packaging import content_addressed_uris  # noqa: E402

imported = time.perf_counter()


def main(runs: int = 5) -> None:
    config, uris = load_config("dev"), content_addressed_uris("cdk-assets")
    seconds = []
    for _ in range(runs):
        begin = time.perf_counter()
        build_definitions(config, uris)
        seconds.append(time.perf_counter() - begin)
    print(f"import (SageMaker SDK + DSL): {imported - started:.2f} s")
    print(f"first build of both definitions: {seconds[0]:.2f} s")
    print(f"repeated builds: median {statistics.median(seconds[1:]):.3f} s over {runs - 1} runs")
    print(f"target: build under 1 s after import -> {'met' if max(seconds) < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
