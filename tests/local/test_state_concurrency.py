"""The registry and the cache index under many concurrent writers (separate processes), and when they are damaged.

Eight processes start together (a barrier) and each writes many times: every registration must get its own version
(1..N, no gaps, no duplicates), every cache record must be in the index exactly once, and every file must stay whole.
"""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline_defs.local import CacheIndex, LocalModelRegistry, LocalRunError, LocalRunner
from tests.local.builders import pipeline, processing

WRITERS = 8
WRITES = 12
GROUP = "churn-dev-models"
REGION = "eu-west-1"


def _start_together(target: Any, *arguments: Any) -> None:
    """WRITERS processes running `target(i, barrier, ...)`, started together."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=target, args=(i, barrier, *arguments)) for i in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * WRITERS


def _register_many(writer: int, barrier: Any, root: str) -> None:
    registry = LocalModelRegistry(Path(root), REGION)
    barrier.wait()
    for write in range(WRITES):
        package = registry.register(
            {
                "ModelPackageGroupName": GROUP,
                "ModelApprovalStatus": "PendingManualApproval",
                "InferenceSpecification": {"Containers": [{"ModelDataUrl": f"s3://local-artifacts/{writer}/{write}"}]},
                "CustomerMetadataProperties": {"writer": str(writer), "write": str(write)},
            }
        )
        if write % 3 == 0:  # approvals interleave with registrations: a read-modify-write of the same files
            registry.set_approval(GROUP, package["ModelPackageVersion"], "Approved", f"writer {writer}")


def _record_many(writer: int, barrier: Any, path: str) -> None:
    index = CacheIndex(Path(path), "demo-pipeline")
    barrier.wait()
    for write in range(WRITES):
        index.record("Step", f"key-{writer}-{write}", f"exec-{writer}", datetime.now(UTC), {"write": write})


def test_concurrent_registrations_get_distinct_consecutive_versions_and_none_is_lost(tmp_path) -> None:
    _start_together(_register_many, str(tmp_path / "registry"))

    registry = LocalModelRegistry(tmp_path / "registry", REGION)
    packages = registry.versions(GROUP)
    assert [package["ModelPackageVersion"] for package in packages] == list(range(1, WRITERS * WRITES + 1))
    written = sorted(
        (p["CustomerMetadataProperties"]["writer"], p["CustomerMetadataProperties"]["write"]) for p in packages
    )
    assert written == sorted((str(w), str(i)) for w in range(WRITERS) for i in range(WRITES))
    approved = [p for p in packages if p["ModelApprovalStatus"] == "Approved"]
    assert len(approved) == WRITERS * len(range(0, WRITES, 3))  # no approval was overwritten by a registration
    assert not [path.name for path in (tmp_path / "registry").rglob("*") if path.name.endswith(".tmp")]


def test_concurrent_cache_records_are_all_kept_and_the_index_stays_valid(tmp_path) -> None:
    path = tmp_path / "cache" / "demo-pipeline.json"
    _start_together(_record_many, str(path))

    entries = json.loads(path.read_text())["entries"]  # whole, valid JSON
    keys = [entry["key"] for entry in entries]
    assert sorted(keys) == sorted(f"key-{w}-{i}" for w in range(WRITERS) for i in range(WRITES))
    assert len(set(keys)) == len(keys)
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]


# Damaged state ---------------------------------------------------------------------------------------------------
def test_a_damaged_cache_index_stops_the_run_before_any_step_and_names_the_fix(state_dir, clock) -> None:
    index = state_dir / "cache" / "demo-pipeline.json"
    index.parent.mkdir(parents=True)
    index.write_text('{"entries": [{"step": "Step", "key": "ab')  # a write cut short by a crash
    runner = LocalRunner(
        pipeline(processing("Step")), pipeline_name="demo-pipeline", state_dir=state_dir, region=REGION, clock=clock
    )

    with pytest.raises(LocalRunError) as raised:
        runner.run()

    assert str(raised.value).startswith(f"the cache index {index} is corrupt (")
    assert str(raised.value).endswith(
        "run `mlops cache clear --pipeline demo-pipeline` (the next run re-runs its steps)"
    )
    assert not (state_dir / "executions").exists()
    assert CacheIndex(index, "demo-pipeline").clear() is None  # the damaged index is removed all the same
    assert runner.run().succeeded


def test_a_cache_index_of_the_wrong_shape_is_reported_the_same_way(tmp_path) -> None:
    index = CacheIndex(tmp_path / "x.json", "demo-pipeline")
    index.path.write_text('{"entries": [{"step": "Step"}]}')

    with pytest.raises(LocalRunError, match=r"is corrupt \(not a list of entries\): run `mlops cache clear"):
        index.lookup("Step", "key", None)


def test_a_damaged_registry_file_is_one_error_naming_it_and_the_fix(tmp_path) -> None:
    registry = LocalModelRegistry(tmp_path, REGION)
    (tmp_path / GROUP).mkdir()
    (tmp_path / GROUP / "000001.json").write_text('{"ModelPackageVersion": 1, "Model')

    with pytest.raises(LocalRunError) as raised:
        registry.versions(GROUP)

    assert f"model package {tmp_path / GROUP / '000001.json'} is corrupt (" in str(raised.value)
    assert str(raised.value).endswith(f"move it out of {tmp_path / GROUP} (or restore it from a backup)")


@pytest.mark.parametrize("group", ["../outside", "a/b", "", "-lead"])
def test_group_names_that_are_paths_are_refused(tmp_path, group) -> None:
    with pytest.raises(LocalRunError, match="use 1-63 letters, digits and '-'"):
        LocalModelRegistry(tmp_path / "registry", REGION).versions(group)
    assert not (tmp_path / "outside").exists()
