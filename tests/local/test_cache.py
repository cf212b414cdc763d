"""Step caching on hand-written definitions: what is in the key, what a hit reuses, when entries expire."""

from __future__ import annotations

import copy
from datetime import timedelta

from tests.local.builders import gate, pipeline, processing, score_of


def test_cache_ignores_tags_instance_types_and_output_paths_but_not_environment(run) -> None:
    base = processing("Step", "--score", "0.7")
    first = run(pipeline(base))
    cosmetic = copy.deepcopy(base)
    cosmetic["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.4xlarge"
    cosmetic["Arguments"]["Tags"].append({"Key": "owner", "Value": "someone"})
    cosmetic["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = (
        "s3://local-artifacts/elsewhere"
    )
    second = run(pipeline(cosmetic), {"ExperimentId": "another"})  # ExperimentId only reaches tags and paths here
    changed = copy.deepcopy(base)
    changed["Arguments"]["Environment"] = {"MODE": "new"}
    third = run(pipeline(changed))

    assert second.step("Step").cache_hit and second.step("Step").cache_source == first.execution_id
    assert second.step("Step").outputs == first.step("Step").outputs  # the earlier run's outputs are reused
    assert not third.step("Step").cache_hit


def test_cache_hits_feed_later_steps_the_earlier_outputs_and_property_files(run) -> None:
    definition = pipeline(
        processing("Score", "--score", "0.9"), gate(score_of("Score"), 0.5, [processing("Publish", cache=False)], [])
    )
    first = run(definition)
    second = run(definition)

    assert second.step("Score").cache_hit
    assert second.step("Gate").message == "true: runs IfSteps (Publish)"
    assert not second.step("Publish").cache_hit and first.step("Publish").cacheable is False


def test_cache_entries_expire_after_the_configured_duration(run, clock) -> None:
    definition = pipeline(processing("Step"))
    first = run(definition)
    clock.now += timedelta(minutes=59)
    assert run(definition).step("Step").cache_source == first.execution_id
    clock.now += timedelta(minutes=2)
    assert not run(definition).step("Step").cache_hit


def test_failed_steps_are_never_cache_hits(run) -> None:
    definition = pipeline(processing("Broken", "--fail", "true"))
    run(definition)
    assert not run(definition).step("Broken").cache_hit
