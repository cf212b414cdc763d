"""Synth time of the dev unit next to an empty one-bucket CDK app, both through the real CLI.

Prints the median of N runs of each and their ratio. Run with `make bench`. The dev unit's first synth (reported on
its own) fills the definitions cache (`pipeline_defs/definitions.py`); the timed runs are synths with unchanged
pipelines, which read the definitions from it and never import the SageMaker SDK. The two apps take turns (which one
goes first alternates by round), so a load that drifts on a shared machine favours neither; the ratio printed is the
median of the rounds' ratios. Three comparisons: each app as a plain `cdk synth` runs it (the unit skips CDK's
built-in CloudFormation validation, which `make test` runs as a gate; the empty app runs it, as any CDK app does by
default), then like for like, both without it and both with it (`CDK_VALIDATION`).
"""

from __future__ import annotations

import argparse
import json
import os
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


# CDK_VALIDATION per comparison: unset, each app synthesizes as `cdk synth` does by default (the unit without CDK's
# built-in CloudFormation validation - stacks/stage.py `new_app` - the empty app with it); "false", both without it;
# "true", both with it.
COMPARISONS = {"as `cdk synth` runs each": None, "both without built-in validation": "false",
               "both with built-in validation": "true"}  # fmt: skip


def time_synth(cwd: Path, outdir: Path, context: list[str], validation: str | None) -> float:
    args = ["synth", "--quiet", "--app", f"{sys.executable} app.py", "-o", str(outdir)]
    for item in context:
        args += ["-c", item]
    os.environ.pop("CDK_VALIDATION", None)
    if validation is not None:
        os.environ["CDK_VALIDATION"] = validation
    started = time.perf_counter()
    result = cdk(args, cwd=cwd)
    seconds = time.perf_counter() - started
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
        first = time_synth(REPO_ROOT, Path(tmp) / "unit.out", ["env=dev"], None)
        print(f"dev unit, first synth (fills the definitions cache if it was empty): {first:.2f} s")
        for comparison, validation in COMPARISONS.items():
            baseline: list[float] = []
            unit: list[float] = []
            for round_number in range(args.runs):
                turns = [(baseline, empty_app, "empty.out", []), (unit, REPO_ROOT, "unit.out", ["env=dev"])]
                for seconds, cwd, outdir, context in turns[:: 1 if round_number % 2 == 0 else -1]:
                    seconds.append(time_synth(cwd, Path(tmp) / outdir, context, validation))
            base_median, unit_median = statistics.median(baseline), statistics.median(unit)
            ratio = statistics.median([u / b for u, b in zip(unit, baseline, strict=True)])
            print(f"\n{comparison}:")
            print(f"  empty one-bucket app: median {base_median:.2f} s of {[round(s, 2) for s in baseline]}")
            print(f"  dev unit:             median {unit_median:.2f} s of {[round(s, 2) for s in unit]}")
            medians = unit_median / base_median
            print(f"  ratio dev unit / empty app: {ratio:.2f}x median of the rounds (medians: {medians:.2f}x)")


if __name__ == "__main__":
    main()
