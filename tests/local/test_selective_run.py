"""A local selective run (`--from` / `--steps`) on small hand-written definitions: only the selected steps run, on
the source execution's outputs and parameters; the cache is left as it was; a source that cannot stand in is refused
before any step runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline_defs.local import DefinitionError, LocalRunner, LocalS3
from pipeline_defs.local.selective import SelectiveRun
from tests.local.builders import pipeline, processing, read_report, score_of

PIPELINE = "demo-pipeline"


def chain(score: str = "0.7") -> dict:
    """First -> Second (reads First's output) -> Third (reads Second's report); parameter Score feeds First."""
    first = processing("First", "--score", {"Get": "Parameters.Score"})
    second = processing(
        "Second",
        "--input-dir",
        "/opt/ml/processing/input/previous",
        "--score",
        score,
        inputs={"previous": {"Get": "Steps.First.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}},
    )
    third = processing("Third", "--score", score_of("Second"))
    return pipeline(first, second, third, parameters=[{"Name": "Score", "Type": "String", "DefaultValue": "0.1"}])


def prepare(state_dir: Path, definition: dict, **choice) -> SelectiveRun:
    return SelectiveRun.prepare(definition, state_dir, PIPELINE, LocalS3(state_dir / "s3"), **choice)


def cache_index(state_dir: Path) -> bytes:
    return (state_dir / "cache" / f"{PIPELINE}.json").read_bytes()


def test_from_a_step_runs_it_and_those_after_it_on_the_source_outputs_and_parameters(run, state_dir, clock) -> None:
    source = run(chain(), {"Score": "0.3"})
    assert source.succeeded, source.failure_reason
    index = cache_index(state_dir)

    runner = LocalRunner(chain(), pipeline_name=PIPELINE, state_dir=state_dir, region="eu-west-1", clock=clock)
    result = runner.run({}, prepare(state_dir, chain(), from_step="Second"))

    assert result.succeeded, result.failure_reason
    assert result.source_execution == source.execution_id
    first = result.step("First")
    assert (first.reused_from, first.work_dir, first.outputs) == (
        source.execution_id,
        None,
        source.step("First").outputs,
    )
    assert [s.name for s in result.steps if s.reused_from is None] == ["Second", "Third"]
    assert not any(step.cache_hit for step in result.steps)  # the selected steps ran, although the cache has them
    # Second read the source's First output, and the run kept the source's parameter value.
    assert read_report(state_dir, result, "Second")["inputs"] == ["data.csv", "report.json"]
    assert result.parameters["Score"] == "0.3"
    assert read_report(state_dir, result, "Third")["score"] == 0.7
    assert cache_index(state_dir) == index  # neither read nor written


def test_steps_run_only_those_named_and_given_parameters_override_the_source(run, state_dir, clock) -> None:
    source = run(chain(), {"Score": "0.3"})
    runner = LocalRunner(chain(), pipeline_name=PIPELINE, state_dir=state_dir, region="eu-west-1", clock=clock)
    result = runner.run({"Score": "0.9"}, prepare(state_dir, chain(), steps=["First"], source=source.execution_id))

    assert [s.name for s in result.steps] == ["First"]
    assert read_report(state_dir, result, "First")["score"] == 0.9


def test_a_source_that_ran_another_definition_is_refused(run, state_dir) -> None:
    run(chain())
    with pytest.raises(DefinitionError, match=r"ran another definition of demo-pipeline .*run the whole pipeline once"):
        prepare(state_dir, chain(score="0.8"), from_step="Second")


def test_a_source_without_the_needed_outputs_is_refused(run, state_dir) -> None:
    failed = run(chain(), {"Score": "not a number"})  # First fails: nothing after it ran
    assert not failed.succeeded
    with pytest.raises(DefinitionError, match=f"execution {failed.execution_id} has no outputs of step First"):
        prepare(state_dir, chain(), from_step="Second", source=failed.execution_id)
    with pytest.raises(DefinitionError, match="has no succeeded execution in this state dir to start from"):
        prepare(state_dir, chain(), from_step="Second")


def test_a_source_whose_outputs_are_gone_or_an_unknown_source_is_refused(run, state_dir) -> None:
    source = run(chain())
    with pytest.raises(DefinitionError, match=f"no execution nope of {PIPELINE} .*newest: {source.execution_id}"):
        prepare(state_dir, chain(), from_step="Second", source="nope")
    shutil.rmtree(LocalS3(state_dir / "s3").path(source.step("First").outputs["out"]))
    with pytest.raises(
        DefinitionError, match=r"output s3://local-artifacts/runs/.*/First/out of step First .* is gone"
    ):
        prepare(state_dir, chain(), from_step="Second")
