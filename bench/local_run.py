"""Local runner: cold run and cached re-run of the training pipeline, and the runner's overhead over running by hand.

    .venv/bin/python bench/local_run.py [--assembly cdk.out] [--rounds 5]

The assembly is the dev unit's `cdk synth` output (default cdk.out; synthesized first when there is none). Each round
uses a fresh state dir and times the same six step-script runs by hand in sequence on plain folders (what a developer
would type: no copies, no uploads, no registry) and, before or after that (alternating), a cold run of the training
pipeline and a re-run with unchanged inputs (ModelApprovalStatus=PendingManualApproval, so the incumbent stays
"none" and every cacheable step may hit). Prints medians, the cold/cached ratio (target >= 10x), the overhead against
by hand (target < 15%), the runner's own time (wall time minus the job processes), and the cold run against the DAG's
critical path: the longest chain of steps that need each other, timed as the run timed them (target <= 1.1x: with
independent steps in parallel, `--jobs`, nothing else should add up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config import load_config
from pipeline_defs.contract import SCORE_COLUMN
from pipeline_defs.local import LocalRunner, RunResult, load_assembly
from pipeline_defs.local.planning import critical_path
from tools.review import REPO_ROOT, synth

STEPS = REPO_ROOT / "pipeline_defs" / "steps"
SAMPLE = REPO_ROOT / "pipeline_defs" / "sample_data" / "churn"
DATASET = "s3://local-landing/datasets/sample-v1/"
CACHED_STEPS = ("Preprocess", "Train", "Evaluate", "Score", "Baseline")


def by_hand(work: Path, group: str, hyperparameters: dict[str, str]) -> float:
    """The six script runs of the training pipeline, one after the other, on local folders; returns seconds."""
    (work / "data").mkdir(parents=True)
    shutil.copy(SAMPLE / "part-0000.csv", work / "data")
    environment = {**os.environ, "REGISTRY_BACKEND": "local", "LOCAL_REGISTRY_DIR": str(work / "registry")}
    training_arguments = [item for key, value in hyperparameters.items() for item in (f"--{key}", str(value))]
    resolved, prepared, model = work / "resolved", work / "prepared", work / "model"
    commands: list[list[str | Path]] = [
        ["resolve_model.py", "--group-name", group, "--sentinel-dir", work / "none", "--output-dir", resolved],
        ["preprocess.py", "--mode", "split", "--input-dir", work / "data", "--output-dir", prepared],
        [
            "train.py",
            "--train",
            prepared / "train",
            "--validation",
            prepared / "validation",
            "--model-dir",
            model,
            "--output-data-dir",
            work / "train-output",
            *training_arguments,
        ],
        [
            "evaluate.py",
            *("--model-dir", model, "--test-dir", prepared / "test", "--score-only"),
            *("--score-column", SCORE_COLUMN, "--output-dir", work / "scored"),
        ],
        [
            "data_quality.py",
            *("baseline", "--data-dir", work / "scored", "--score-column", SCORE_COLUMN),
            *("--output-dir", work / "baseline"),
        ],
        [
            "evaluate.py",
            "--model-dir",
            model,
            "--incumbent-dir",
            work / "none",
            "--test-dir",
            prepared / "test",
            "--output-dir",
            work / "evaluation",
        ],
    ]
    started = time.perf_counter()
    for script, *arguments in commands:
        subprocess.run(
            [sys.executable, str(STEPS / str(script)), *map(str, arguments)],
            env=environment,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return time.perf_counter() - started


def timed_run(runner: LocalRunner, parameters: dict[str, str], expect_hits: int) -> tuple[float, RunResult]:
    started = time.perf_counter()
    result = runner.run(parameters)
    seconds = time.perf_counter() - started
    hits = sum(step.cache_hit for step in result.steps)
    if not result.succeeded or hits != expect_hits:
        sys.exit(f"unexpected run: {result.status} {result.failure_reason}, {hits} cache hits")
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out", help="`cdk synth -c env=dev` output")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=None, help="steps at once in the parallel run (default: cores)")
    args = parser.parse_args()
    config = load_config("dev")
    figures: dict[str, list[float]] = {name: [] for name in ("hand", "cold", "sequential", "cached", "own", "path")}
    chain: list[str] = []
    jobs = 1
    with tempfile.TemporaryDirectory() as tmp:
        assembly_dir = args.assembly
        if not (assembly_dir / "manifest.json").is_file():
            assembly_dir = Path(tmp) / "cdk.out"
            print(f"synthesizing the dev unit into {assembly_dir} ...")
            synth(REPO_ROOT, assembly_dir, ["env=dev"])
        assembly = load_assembly(assembly_dir, config.region)
        definition = assembly.definitions[config.training_pipeline_name]
        train = next(step for step in definition["Steps"] if step["Name"] == "Train")
        hyperparameters = {
            key: value
            for key, value in train["Arguments"]["HyperParameters"].items()
            if not key.startswith("sagemaker_")
        }
        parameters = {"InputDataUri": DATASET, "ModelApprovalStatus": "PendingManualApproval"}

        def runner_in(state: Path, jobs: int | None) -> LocalRunner:
            shutil.copytree(SAMPLE, state / "s3" / DATASET[len("s3://") :])
            return LocalRunner(
                definition,
                pipeline_name=config.training_pipeline_name,
                state_dir=state,
                region=config.region,
                assets=assembly.assets,
                jobs=jobs,
            )

        for round_number in range(args.rounds):
            root = Path(tmp) / f"round-{round_number}"
            if round_number % 2:  # alternate which goes first, so drift on the machine favours neither
                figures["hand"].append(by_hand(root / "by-hand", config.model_package_group_name, hyperparameters))
            # One step at a time: each step's time without its siblings competing for the cores, and the runner's
            # own time (wall time minus the job processes).
            sequential = runner_in(root / "sequential", 1)
            seconds, result = timed_run(sequential, parameters, expect_hits=0)
            figures["sequential"].append(seconds)
            figures["own"].append(seconds - sum(step.job_seconds for step in result.steps))
            longest, chain = critical_path(sequential.plan, {step.name: step.seconds for step in result.steps})
            figures["path"].append(longest)
            # As SageMaker runs it: independent steps at the same time; then the re-run with unchanged inputs.
            parallel = runner_in(root / "parallel", args.jobs)
            jobs = parallel.jobs
            figures["cold"].append(timed_run(parallel, parameters, expect_hits=0)[0])
            figures["cached"].append(timed_run(parallel, parameters, expect_hits=len(CACHED_STEPS))[0])
            if not round_number % 2:
                figures["hand"].append(by_hand(root / "by-hand", config.model_package_group_name, hyperparameters))

    def shown(name: str) -> str:
        values = figures[name]
        return f"median {statistics.median(values):6.2f} s  {[round(v, 2) for v in values]}"

    def median_ratio(top: str, bottom: str) -> float:
        return statistics.median([a / b for a, b in zip(figures[top], figures[bottom], strict=True)])

    ratio = median_ratio("cold", "cached")
    overhead = median_ratio("sequential", "hand") - 1
    own_share = statistics.median(figures["own"]) / statistics.median(figures["hand"])
    path_ratio = median_ratio("cold", "path")
    job_steps = ("ResolveIncumbent", *CACHED_STEPS)
    print(f"training pipeline, {args.rounds} rounds ({len(job_steps)} jobs: {', '.join(job_steps)})")
    print(f"cold local run (--jobs {jobs}):             {shown('cold')}")
    hits = f"{len(CACHED_STEPS)} of {len(CACHED_STEPS)} cache hits"
    print(f"cached re-run ({hits}):     {shown('cached')}")
    print(f"ratio cold / cached:                   {ratio:.1f}x (target >= 10x: {'met' if ratio >= 10 else 'NOT met'})")
    print(f"cold run one step at a time (--jobs 1): {shown('sequential')}")
    print(f"same scripts by hand, in sequence:     {shown('hand')}")
    verdict = "met" if overhead < 0.15 else "NOT met"
    print(f"runner overhead vs by hand (--jobs 1): {overhead:+.1%} median of the rounds (target < 15%: {verdict})")
    print(f"runner's own time (--jobs 1):          {shown('own')} = {own_share:.1%} of by hand")
    print("  (own time = wall time minus the job processes: copies, uploads, tarball, registry, expressions, cache)")
    print(f"critical path:                         {shown('path')}")
    print(f"  ({' -> '.join(chain)}, each step timed in the --jobs 1 run, without siblings competing for the cores)")
    verdict = "met" if path_ratio <= 1.1 else "NOT met"
    print(f"cold run / critical path:              {path_ratio:.2f}x median of the rounds (target <= 1.1x: {verdict})")
    print(f"  ({os.cpu_count()} cores; parallel steps share them, so CPU-bound siblings stretch the path)")


if __name__ == "__main__":
    main()
