"""Synth time of the dev unit next to an empty one-bucket CDK app, both through the real CLI.

Prints the median of N runs of each and their ratio. Run with `make bench`. The dev unit's first synth (reported on
its own) fills the definitions cache (`pipeline_defs/definitions.py`); the timed runs are synths with unchanged
pipelines, which read the definitions from it and never import the SageMaker SDK. The two apps take turns (which one
goes first alternates by round), so a load that drifts on a shared machine favours neither; the ratio printed is the
median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools.review import REPO_ROOT, cdk

ONE_BUCKET_APP = """
from aws_cdk import App, Stack, aws_s3 as s3
app = App()
s3.Bucket(Stack(app, "OneBucket"), "Bucket")
app.synth()
"""


def time_synth(cwd: Path, outdir: Path, runs: int, context: list[str]) -> list[float]:
    seconds = []
    for _ in range(runs):
        args = ["synth", "--quiet", "--app", f"{sys.executable} app.py", "-o", str(outdir)]
        for item in context:
            args += ["-c", item]
        started = time.perf_counter()
        result = cdk(args, cwd=cwd)
        seconds.append(time.perf_counter() - started)
        if result.returncode != 0:
            sys.exit(result.stderr)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty_app = Path(tmp) / "empty-app"
        empty_app.mkdir()
        (empty_app / "app.py").write_text(ONE_BUCKET_APP)
        # Same feature flags as the real app, so the comparison is like for like.
        (empty_app / "cdk.json").write_text(
            json.dumps({"context": json.loads((REPO_ROOT / "cdk.json").read_text())["context"]})
        )
        [first] = time_synth(REPO_ROOT, Path(tmp) / "unit.out", 1, ["env=dev"])
        baseline: list[float] = []
        unit: list[float] = []
        for round_number in range(args.runs):
            turns = [(baseline, empty_app, "empty.out", []), (unit, REPO_ROOT, "unit.out", ["env=dev"])]
            for seconds, cwd, outdir, context in turns[:: 1 if round_number % 2 == 0 else -1]:
                seconds += time_synth(cwd, Path(tmp) / outdir, 1, context)
    base_median, unit_median = statistics.median(baseline), statistics.median(unit)
    ratio = statistics.median([u / b for u, b in zip(unit, baseline, strict=True)])
    print(f"empty one-bucket app: median {base_median:.2f} s over {args.runs} runs {[round(s, 2) for s in baseline]}")
    print(f"dev unit, first synth (fills the definitions cache if it was empty): {first:.2f} s")
    print(f"dev unit:             median {unit_median:.2f} s over {args.runs} runs {[round(s, 2) for s in unit]}")
    print(f"ratio dev unit / empty app: {ratio:.2f}x median of the rounds (medians: {unit_median / base_median:.2f}x)")


if __name__ == "__main__":
    main()
