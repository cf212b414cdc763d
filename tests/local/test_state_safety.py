"""What keeps local state safe from bad input: parameter rules, S3 keys, changed data under a used URI, state dirs.

Every check here happens before the step it protects runs; the data is generated in the tests.
"""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

from pipeline_defs.local import DefinitionError, LocalRunError, LocalRunner, LocalS3, StepFailed
from pipeline_defs.local.runner import check_state_dir
from tests.local.builders import Clock, pipeline, processing, read_report

REGION = "eu-west-1"


def runner(state_dir, definition, clock: Clock, **options) -> LocalRunner:
    return LocalRunner(
        definition, pipeline_name="demo-pipeline", state_dir=state_dir, region=REGION, clock=clock, **options
    )


# Parameters ------------------------------------------------------------------------------------------------------
GATED = pipeline(
    processing(
        "Step", "--input-dir", "/opt/ml/processing/input/data", inputs={"data": {"Get": "Parameters.InputDataUri"}}
    ),
    parameters=[
        {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://local-landing/data/v1/"},
        {"Name": "MaxRegression", "Type": "Float", "DefaultValue": 0.01},
        {"Name": "MinimumScore", "Type": "Float", "DefaultValue": 0.7},
        {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
        {"Name": "ConfidenceLevel", "Type": "Float", "DefaultValue": 0.95},
    ],
)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"ExperimentId": "../.."}, "parameter ExperimentId '../..': use 1-128 letters, digits"),
        ({"ExperimentId": "a/b"}, "parameter ExperimentId 'a/b': use 1-128 letters"),
        ({"MaxRegression": "-0.1"}, "parameter MaxRegression -0.1 must be a number >= 0"),
        ({"MaxRegression": "nan"}, "parameter MaxRegression is Float, but the value 'nan' is not a finite number"),
        ({"MinimumScore": "1.5"}, "parameter MinimumScore 1.5 is not a score between 0 and 1"),
        ({"MinimumScore": "-1"}, "parameter MinimumScore -1.0 is not a score between 0 and 1"),
        ({"ConfidenceLevel": "1"}, "parameter ConfidenceLevel 1.0 is not a confidence level in [0.5, 1.0)"),
        ({"ConfidenceLevel": "0.2"}, "parameter ConfidenceLevel 0.2 is not a confidence level in [0.5, 1.0)"),
        ({"ModelApprovalStatus": "approved"}, "parameter ModelApprovalStatus 'approved' is not one of Approved, "),
        ({"InputDataUri": "local-landing/data/v1/"}, "parameter InputDataUri 'local-landing/data/v1/' is not an S3"),
        ({"InputDataUri": "s3://local-landing/"}, "parameter InputDataUri 's3://local-landing/' is not an S3 folder"),
    ],
)
def test_bad_parameters_stop_the_run_before_any_step(state_dir, clock, parameters, message) -> None:
    with pytest.raises(DefinitionError) as raised:
        runner(state_dir, GATED, clock).run(parameters)
    assert str(raised.value).startswith(message)
    assert not (state_dir / "executions").exists()


@pytest.mark.heavy(seconds=1)  # two runs
def test_an_input_data_uri_without_a_trailing_slash_reads_that_folder_only(state_dir, clock) -> None:
    """`data/v1` must not also read the sibling `data/v10/` (S3 prefixes match any key that starts with them)."""
    sibling = state_dir / "s3" / "local-landing" / "data" / "v10"
    sibling.mkdir(parents=True)
    (sibling / "other.csv").write_text("a\n2\n")

    result = runner(state_dir, GATED, clock).run({"InputDataUri": "s3://local-landing/data/v1"})

    assert result.succeeded, result.failure_reason
    assert result.parameters["InputDataUri"] == "s3://local-landing/data/v1/"
    assert read_report(state_dir, result, "Step")["inputs"] == ["part-0.csv"]


# S3 keys ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        "s3://local-artifacts/../../outside",
        "s3://local-artifacts/a/../../../outside",
        "s3://local-artifacts//etc/passwd",
        "s3://local-artifacts/./x",
        "s3://../outside",
        "s3://Bad_Bucket/x",
    ],
)
def test_local_s3_keys_never_resolve_outside_their_bucket(tmp_path, uri) -> None:
    s3 = LocalS3(tmp_path / "state" / "s3")
    with pytest.raises(StepFailed, match=r"would leave the local bucket|is not an S3 bucket name"):
        s3.path(uri)
    with pytest.raises(StepFailed):
        s3.objects(uri)


def test_a_definition_writing_outside_the_state_dir_fails_its_step_and_writes_nothing(state_dir, clock) -> None:
    step = processing("Escape")
    step["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = "s3://local-artifacts/../../../x"

    result = runner(state_dir, pipeline(step), clock).run()

    assert result.status == "Failed"
    assert "would leave the local bucket" in str(result.failure_reason)
    assert not (state_dir.parent / "x").exists() and not (state_dir / "x").exists()


# Changed data under a URI that was already used ------------------------------------------------------------------
def test_changed_data_under_a_used_uri_is_refused_instead_of_a_stale_cache_hit(state_dir, clock) -> None:
    definition = pipeline(
        processing(
            "Read", "--input-dir", "/opt/ml/processing/input/data", inputs={"data": "s3://local-landing/data/v1/"}
        )
    )
    first = runner(state_dir, definition, clock).run()
    (state_dir / "s3" / "local-landing" / "data" / "v1" / "part-0.csv").write_text("a\n999\n")  # same size, new data

    refused = runner(state_dir, definition, clock).run()
    rerun = runner(state_dir, definition, clock, use_cache=False).run()
    after = runner(state_dir, definition, clock).run()

    assert refused.status == "Failed" and not refused.step("Read").cache_hit
    assert refused.failure_reason == (
        f"step Read: s3://local-landing/data/v1/ changed since execution {first.execution_id} read it, so Read would "
        "reuse results computed from the old content: data under one URI must never change - put the new data under "
        "a new dataset id (e.g. datasets/<id>-v2/), or re-run with --no-cache"
    )
    assert rerun.succeeded and not rerun.step("Read").cache_hit  # --no-cache runs the step on the new data ...
    assert after.step("Read").cache_source == rerun.execution_id  # ... and later runs hit that fresh result


def test_unchanged_data_copied_again_is_still_a_cache_hit(state_dir, clock) -> None:
    """Fingerprints are of content, not of file times: re-copying the same dataset keeps the cache."""
    definition = pipeline(processing("Read", inputs={"data": "s3://local-landing/data/v1/"}))
    first = runner(state_dir, definition, clock).run()
    data = state_dir / "s3" / "local-landing" / "data" / "v1" / "part-0.csv"
    content = data.read_bytes()
    data.unlink()
    data.write_bytes(content)

    assert runner(state_dir, definition, clock).run().step("Read").cache_source == first.execution_id


def test_a_failing_step_names_the_s3_object_rather_than_its_local_copy(state_dir, clock) -> None:
    script = state_dir / "s3" / "local-artifacts" / "code" / "report.py"
    script.write_text(
        "import sys, pathlib\n"
        "path = next(pathlib.Path(sys.argv[sys.argv.index('--input-dir') + 1]).rglob('*.csv'))\n"
        "sys.exit(f'error: cannot read {path}: not UTF-8')\n"
    )
    (state_dir / "s3" / "local-landing" / "data" / "v1" / "part-0.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    step = processing(
        "Read", "--input-dir", "/opt/ml/processing/input/data", inputs={"data": "s3://local-landing/data/v1/"}
    )

    result = runner(state_dir, pipeline(step), clock).run()

    assert result.failure_reason is not None
    assert result.failure_reason.startswith(
        "step Read: exited with code 1: error: cannot read s3://local-landing/data/v1/part-0.csv: not UTF-8 (log: "
    )


# Run results -----------------------------------------------------------------------------------------------------
def test_the_result_carries_every_number_of_the_steps_reports(state_dir, clock) -> None:
    result = runner(state_dir, pipeline(processing("Score", "--score", "0.8125")), clock).run()
    assert result.metrics == {"Score.Report.score": 0.8125}
    assert result.to_dict()["metrics"] == {"Score.Report.score": 0.8125} and result.registered is None


# State dirs ------------------------------------------------------------------------------------------------------
def test_a_state_dir_that_is_a_file_is_one_error(tmp_path) -> None:
    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(LocalRunError, match=r"the state dir .*/state/inner cannot be a folder \(.*/state is a file\)"):
        check_state_dir(tmp_path / "state" / "inner")


def test_a_read_only_state_dir_is_one_error(tmp_path, monkeypatch) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o555)
    if os.geteuid() == 0:  # root writes through file modes: fail the write the way the kernel fails it for a user

        def refused(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    try:
        with pytest.raises(LocalRunError, match=r"the state dir .*/state is not writable \(Permission denied\)"):
            check_state_dir(state)
    finally:
        state.chmod(0o755)
