"""Independent steps run at the same time, at most `jobs` at once; after a failure nothing new starts, running steps
finish. No wall-clock assertions: the steps meet at file barriers and record when they ran, in their reports."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import pytest

from pipeline_defs.local import LocalRunner
from pipeline_defs.local.planning import critical_path, plan
from tests.local.builders import CODE_URI, Clock, pipeline, processing

pytestmark = pytest.mark.heavy(seconds=2)  # runs whose steps wait on each other

# Writes <meet>/<name>.started, then (--wait-for OTHER) waits up to 20 s for OTHER to have started, then (--linger S)
# sleeps; records its start and end times in out/report.json; --fail exits 3 right after starting.
MEET_SCRIPT = """
import json, sys, time
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
meet, name = Path(args["--meet"]), args["--name"]
started = time.time()
(meet / f"{name}.started").touch()
if args.get("--fail") == "true":
    sys.exit(3)
if "--wait-for" in args:
    deadline = time.time() + 20
    while not (meet / f"{args['--wait-for']}.started").exists():
        if time.time() > deadline:
            sys.exit(f"{args['--wait-for']} never started while {name} ran")
        time.sleep(0.01)
time.sleep(float(args.get("--linger", "0")))
Path(args["--output-dir"], "report.json").write_text(json.dumps({"start": started, "end": time.time()}))
"""
MEET_URI = "s3://local-artifacts/code/meet.py"


@pytest.fixture
def meet(state_dir: Path) -> Path:
    (state_dir / "s3" / "local-artifacts" / "code" / "meet.py").write_text(MEET_SCRIPT)
    folder = state_dir / "meet"
    folder.mkdir()
    return folder


def step(name: str, meet: Path, *arguments: str, **extra: object) -> dict:
    """A processing step running MEET_SCRIPT (not cached: every run runs it)."""
    built = processing(name, "--meet", str(meet), "--name", name, *arguments, cache=False, **extra)
    built = copy.deepcopy(built)
    application = built["Arguments"]["AppSpecification"]
    application["ContainerEntrypoint"] = ["python3", "/opt/ml/processing/input/code/meet.py"]
    for item in built["Arguments"]["ProcessingInputs"]:
        if item["S3Input"]["S3Uri"] == CODE_URI:
            item["S3Input"]["S3Uri"] = MEET_URI
    return built


def run_with(state_dir: Path, definition: dict, jobs: int):
    runner = LocalRunner(
        definition, pipeline_name="parallel", state_dir=state_dir, region="eu-west-1", clock=Clock(), jobs=jobs
    )
    return runner.run({})


def interval(result, name: str) -> tuple[float, float]:
    uri = result.step(name).outputs["out"]
    report = json.loads(Path(result.execution_dir).parents[2].joinpath("s3", uri[5:], "report.json").read_text())
    return report["start"], report["end"]


def test_independent_steps_run_at_the_same_time(state_dir, meet) -> None:
    # Each waits for the other to have started: run one after the other, the first would give up after 20 s.
    definition = pipeline(step("Left", meet, "--wait-for", "Right"), step("Right", meet, "--wait-for", "Left"))

    result = run_with(state_dir, definition, jobs=2)

    assert result.succeeded, result.failure_reason
    assert [s.name for s in result.steps] == ["Left", "Right"]


def test_jobs_bounds_how_many_steps_run_at_once(state_dir, meet) -> None:
    steps = [step(name, meet, "--linger", "0.2") for name in ("A", "B", "C")]
    result = run_with(state_dir, pipeline(*steps), jobs=1)

    assert result.succeeded, result.failure_reason
    intervals = sorted(interval(result, name) for name in ("A", "B", "C"))
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(intervals))


def test_a_step_waits_for_every_step_it_needs(state_dir, meet) -> None:
    first = step("First", meet, "--linger", "0.2")
    later = step("Later", meet, DependsOn=["First"])
    result = run_with(state_dir, pipeline(later, first), jobs=4)  # listed first, but it needs First

    assert result.succeeded, result.failure_reason
    assert interval(result, "First")[1] <= interval(result, "Later")[0]
    assert [s.name for s in result.steps] == ["First", "Later"]  # the summary lists them in run order


def test_a_failure_starts_nothing_new_and_lets_running_steps_finish(state_dir, meet) -> None:
    definition = pipeline(
        step("Breaks", meet, "--fail", "true"),
        step("Running", meet, "--wait-for", "Breaks", "--linger", "1"),
        step("Queued", meet),  # independent, but no slot is free until Breaks has failed
        step("Dependent", meet, DependsOn=["Running"]),
    )

    result = run_with(state_dir, definition, jobs=2)

    assert result.status == "Failed"
    assert result.failure_reason.startswith("step Breaks: exited with code 3")
    assert {s.name: s.status for s in result.steps} == {"Breaks": "Failed", "Running": "Succeeded"}
    assert not (meet / "Queued.started").exists()
    assert json.loads((Path(result.execution_dir) / "execution.json").read_text())["status"] == "Failed"


def test_the_critical_path_is_the_longest_chain_of_needs(state_dir, meet) -> None:
    planned = plan(
        pipeline(
            step("Prepare", meet),
            step("Fit", meet, DependsOn=["Prepare"]),
            step("Profile", meet, DependsOn=["Prepare"]),
            step("Judge", meet, DependsOn=["Fit", "Profile"]),
        ),
        runnable=("Processing",),
    )
    seconds = {"Prepare": 1.0, "Fit": 5.0, "Profile": 2.0, "Judge": 1.0}

    assert critical_path(planned, seconds) == (7.0, ["Prepare", "Fit", "Judge"])
    # Steps that did not run are not part of it.
    assert critical_path(planned, {"Prepare": 1.0, "Profile": 2.0}) == (3.0, ["Prepare", "Profile"])
    assert critical_path(planned, {}) == (0.0, [])
