"""Pipeline definitions: offline, deterministic, cache-correct and tagged for cost allocation."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config import all_configs, load_config
from pipeline_defs.contract import CACHE_KEY_ATTRIBUTES, RETRYABLE_EXCEPTION_TYPES, retry_policy_errors
from pipeline_defs.definitions import build_definitions
from pipeline_defs.graph import steps
from pipeline_defs.packaging import STEP_LIBRARY_DIR, STEPS_DIR, content_addressed_uris

pytestmark = pytest.mark.heavy(seconds=18)  # scheduled first, longest first (tests/conftest.py)

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSETS_BUCKET = "cdk-hnb659fds-assets-111111111111-eu-west-1"


def all_steps(definition: dict) -> dict[str, dict]:
    """{step name: step}, including the steps inside Condition branches."""
    return {step["Name"]: step for step in steps(definition)}


@pytest.fixture(scope="module")
def dev_definitions() -> dict[str, dict]:
    config = load_config("dev")
    return {
        name: json.loads(body)
        for name, body in build_definitions(config, content_addressed_uris(ASSETS_BUCKET)).items()
    }


def test_same_inputs_give_byte_identical_definitions():
    config, uris = load_config("prod"), content_addressed_uris(ASSETS_BUCKET)
    assert build_definitions(config, uris) == build_definitions(config, uris)


def test_definitions_build_with_no_network_and_no_credentials(tmp_path):
    """A fresh process with sockets and botocore requests blocked and no credentials builds every unit, byte for byte
    as this process builds them (another process, hash seed and working directory)."""
    script = tmp_path / "build_offline.py"
    script.write_text(
        textwrap.dedent(
            """
        import hashlib, socket, sys
        import botocore.endpoint
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(args[:2])
            raise OSError("network blocked by test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        botocore.endpoint.Endpoint.make_request = refuse
        from config import all_configs
        from pipeline_defs.definitions import build_definitions
        from pipeline_defs.packaging import content_addressed_uris
        digest = hashlib.sha256()
        for config in all_configs():
            for name, body in sorted(build_definitions(config, content_addressed_uris("assets")).items()):
                digest.update(body.encode())
        print(digest.hexdigest(), len(attempts))
        sys.exit(1 if attempts else 0)
        """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "PYTHONPATH": str(REPO_ROOT)}
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # another seed than this process's
    run = subprocess.run(
        [sys.executable, str(script)],
        env=env | {"PYTHONHASHSEED": seed},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert run.stdout.split()[1] == "0"
    # ...and the result does not depend on the process (hash seed, working directory): this one builds the same.
    digest = hashlib.sha256()
    for config in all_configs():
        for _, body in sorted(build_definitions(config, content_addressed_uris("assets")).items()):
            digest.update(body.encode())
    assert run.stdout.split()[0] == digest.hexdigest()


def test_a_script_change_changes_only_the_steps_that_run_it(tmp_path):
    config = load_config("dev")
    edited = tmp_path / "steps"
    shutil.copytree(STEPS_DIR, edited)
    evaluator = edited / "evaluate.py"
    evaluator.write_text(evaluator.read_text() + "\n# a one-line change\n")
    before = build_definitions(config, content_addressed_uris(ASSETS_BUCKET))
    after = build_definitions(config, content_addressed_uris(ASSETS_BUCKET, edited))
    changed = set()
    for name in before:
        old, new = all_steps(json.loads(before[name])), all_steps(json.loads(after[name]))
        assert old.keys() == new.keys()
        changed |= {(name, step) for step in old if old[step] != new[step] and old[step]["Type"] != "Condition"}
    # The one evaluator serves both pipelines (Evaluate, and Score: its scoring alone); nothing else moves, so every
    # other step keeps its cache. RegisterModel (never cached) records the code version of every step in its lineage.
    assert changed == {
        *(("churn-dev-training", step) for step in ("Evaluate", "Score", "RegisterModel")),
        *(("churn-dev-evaluation", step) for step in ("Evaluate", "Score")),
    }


def test_a_step_library_change_changes_exactly_the_steps_that_import_it(tmp_path):
    config = load_config("dev")
    edited = tmp_path / "steplib"
    shutil.copytree(STEP_LIBRARY_DIR, edited)
    (edited / "__init__.py").write_text((edited / "__init__.py").read_text() + "\n# a one-line change\n")
    before = build_definitions(config, content_addressed_uris(ASSETS_BUCKET))
    after = build_definitions(config, content_addressed_uris(ASSETS_BUCKET, library_dir=edited))
    for name in before:
        old, new = all_steps(json.loads(before[name])), all_steps(json.loads(after[name]))
        changed = {step for step in old if old[step] != new[step] and old[step]["Type"] != "Condition"}
        # Every job step runs a script that imports the library (processing steps mount its zip, Train's tarball holds
        # it); RegisterModel records its hash in the lineage. Conditions and Fail steps run no code.
        expected = {step for step in old if old[step]["Type"] in ("Processing", "Training", "RegisterModel")}
        assert changed == expected, name
        assert changed >= {"Preprocess", "CheckDrift" if "CheckDrift" in old else "Evaluate"}, name


def test_registered_lineage_names_data_run_code_and_settings_within_the_api_limits(dev_definitions):
    """CustomerMetadataProperties: at most 50 entries, keys up to 128 and values up to 256 characters."""
    register = all_steps(dev_definitions["churn-dev-training"])["RegisterModel"]
    metadata = register["Arguments"]["CustomerMetadataProperties"]
    assert len(metadata) <= 50 and all(len(key) <= 128 for key in metadata)
    assert metadata["dataset"] == {"Get": "Parameters.InputDataUri"}
    assert metadata["execution"] == {"Get": "Execution.PipelineExecutionArn"}
    assert metadata["experiment-id"] == {"Get": "Parameters.ExperimentId"}
    assert {"hp-n-estimators", "hp-max-depth", "hp-learning-rate", "hp-seed"} <= set(metadata)
    code = {key for key in metadata if key.startswith("code-")}
    assert code == {f"code-{name}" for name in content_addressed_uris(ASSETS_BUCKET)}
    assert all(len(value) <= 256 for value in metadata.values() if isinstance(value, str))
    for key in ("candidate-roc-auc", "incumbent-roc-auc", "incumbent-version"):
        assert "Std:Join" in metadata[key]  # run-time numbers enter as text


def test_a_feature_contract_change_changes_exactly_the_steps_that_read_it(tmp_path):
    config = load_config("dev")
    edited = tmp_path / "steps"
    shutil.copytree(STEPS_DIR, edited)
    contract = edited / "feature_contract.json"
    contract.write_text(contract.read_text().replace('"leak_threshold": 0.98', '"leak_threshold": 0.97'))
    before = build_definitions(config, content_addressed_uris(ASSETS_BUCKET))
    after = build_definitions(config, content_addressed_uris(ASSETS_BUCKET, edited))
    changed = set()
    for name in before:
        old, new = all_steps(json.loads(before[name])), all_steps(json.loads(after[name]))
        changed |= {(name, step) for step in old if old[step] != new[step] and old[step]["Type"] != "Condition"}
    # Every job that mounts the contract (and RegisterModel: the serving tarball carries it); model resolution,
    # the gates' own conditions and the fail steps stay as they were.
    assert changed == {
        *(
            ("churn-dev-training", step)
            for step in ("Preprocess", "Train", "Baseline", "Evaluate", "Score", "RegisterModel")
        ),
        *(("churn-dev-evaluation", step) for step in ("MergeCapture", "Preprocess", "Evaluate", "Score", "CheckDrift")),
        # The scoring model comes from its registered package (with the contract it was built with), not from here.
        *(("churn-dev-scoring", step) for step in ("Preprocess", "Summarize", "CheckDrift")),
    }


def test_training_pipeline_parameters_and_defaults(dev_definitions):
    parameters = {p["Name"]: p for p in dev_definitions["churn-dev-training"]["Parameters"]}
    assert {"InputDataUri", "ExperimentId", "MaxRegression", "ModelApprovalStatus", "MinimumScore"} <= set(parameters)
    assert "DefaultValue" not in parameters["InputDataUri"]  # a run always names its data
    assert parameters["MaxRegression"] == {"Name": "MaxRegression", "Type": "Float", "DefaultValue": 0.01}
    assert parameters["ConfidenceLevel"] == {"Name": "ConfidenceLevel", "Type": "Float", "DefaultValue": 0.95}
    assert parameters["ModelApprovalStatus"]["DefaultValue"] == "Approved"  # dev's config
    prod = json.loads(
        build_definitions(load_config("prod"), content_addressed_uris(ASSETS_BUCKET))["churn-prod-training"]
    )
    prod_parameters = {p["Name"]: p for p in prod["Parameters"]}
    assert prod_parameters["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"


def test_cache_policy(dev_definitions):
    training = all_steps(dev_definitions["churn-dev-training"])
    cached = {name for name, step in training.items() if step.get("CacheConfig")}
    assert cached == {"Preprocess", "Train", "Score", "Baseline", "Evaluate"}
    assert all(training[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"} for name in cached)
    # The eval-only pipeline reads a moving prefix by default: nothing there may be served from cache.
    assert not any(step.get("CacheConfig") for step in all_steps(dev_definitions["churn-dev-evaluation"]).values())


@pytest.mark.parametrize("config", all_configs(), ids=lambda c: c.unit_name)
def test_every_job_is_tagged_and_experiment_id_stays_out_of_cache_keys(config):
    definitions = build_definitions(config, content_addressed_uris(ASSETS_BUCKET))
    experiment_id = {"Get": "Parameters.ExperimentId"}
    for name, body in definitions.items():
        for step_name, step in all_steps(json.loads(body)).items():
            if step["Type"] not in CACHE_KEY_ATTRIBUTES:
                continue
            tags = {tag["Key"]: tag["Value"] for tag in step["Arguments"]["Tags"]}
            assert tags["experiment-id"] == experiment_id, step_name
            assert tags["pipeline"] == name and tags["environment"] == config.env_name, step_name
            assert {k: v for k, v in config.tags.items() if tags.get(k) != v} == {}, step_name
            for attribute in CACHE_KEY_ATTRIBUTES[step["Type"]]:
                assert "Parameters.ExperimentId" not in json.dumps(step["Arguments"].get(attribute)), (
                    step_name,
                    attribute,
                )


def test_jobs_are_encrypted_with_the_unit_key(dev_definitions):
    from pipeline_defs.definitions import KMS_KEY_ARN_PLACEHOLDER

    for body in dev_definitions.values():
        for step_name, step in all_steps(body).items():
            arguments = step["Arguments"]
            if step["Type"] == "Processing":
                assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS_KEY_ARN_PLACEHOLDER
                assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == KMS_KEY_ARN_PLACEHOLDER, step_name
            elif step["Type"] == "Training":
                assert arguments["ResourceConfig"]["VolumeKmsKeyId"] == KMS_KEY_ARN_PLACEHOLDER
                assert arguments["OutputDataConfig"]["KmsKeyId"] == KMS_KEY_ARN_PLACEHOLDER


def test_gate_compares_candidate_with_incumbent_minus_margin(dev_definitions):
    gate = all_steps(dev_definitions["churn-dev-training"])["CandidateNotWorse"]["Arguments"]
    text = json.dumps(gate["Conditions"])
    for needle in (
        "has_incumbent",
        "regression_lower_bound",  # rejected only when the interval's lower bound exceeds the margin
        "Parameters.MaxRegression",
        "candidate_score",
        "Parameters.MinimumScore",
    ):
        assert needle in text
    assert [s["Name"] for s in gate["IfSteps"]] == ["RegisterModel"]
    assert [s["Name"] for s in gate["ElseSteps"]] == ["RejectCandidate"]
    message = json.dumps(gate["ElseSteps"][0]["Arguments"]["ErrorMessage"])
    assert '"summary"' in message and "Parameters.MaxRegression" in message and "Parameters.MinimumScore" in message
    # The confidence level reaches Evaluate (its interval); MaxRegression does not, so changing it keeps the cache.
    evaluate = json.dumps(all_steps(dev_definitions["churn-dev-training"])["Evaluate"]["Arguments"])
    assert "Parameters.ConfidenceLevel" in evaluate and "Parameters.MaxRegression" not in evaluate


@pytest.mark.parametrize("config", all_configs(), ids=lambda config: config.unit_name)
def test_every_job_step_retries_transient_service_errors_as_configured(config):
    """Capacity, throttling and internal errors; never a script's own failure (no such exception type exists)."""
    for definition in build_definitions(config, content_addressed_uris(ASSETS_BUCKET)).values():
        for name, step in all_steps(json.loads(definition)).items():
            if step["Type"] not in ("Processing", "Training", "Transform", "Model"):
                assert "RetryPolicies" not in step, name
                continue
            policies = step["RetryPolicies"]
            assert retry_policy_errors(policies) == []
            # A Model step runs no job: it retries the step's own faults only (the SDK refuses job retries on it).
            expected = [t for t in RETRYABLE_EXCEPTION_TYPES if step["Type"] != "Model" or t.startswith("Step.")]
            assert sorted(t for policy in policies for t in policy["ExceptionType"]) == sorted(expected)
            for policy in policies:
                assert policy["MaxAttempts"] == config.step_retry_max_attempts
                assert policy["IntervalSeconds"] == config.step_retry_interval_seconds
                assert policy["BackoffRate"] == config.step_retry_backoff_rate


def test_preprocess_runs_on_the_configured_instances_each_with_its_share_of_the_data_files():
    from dataclasses import replace

    config = replace(load_config("dev"), preprocess_instance_count=3)
    definitions = build_definitions(config, content_addressed_uris(ASSETS_BUCKET))
    for name, body in definitions.items():
        preprocess = all_steps(json.loads(body))["Preprocess"]["Arguments"]
        assert preprocess["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 3, name
        distribution = {
            item["InputName"]: item["S3Input"]["S3DataDistributionType"] for item in preprocess["ProcessingInputs"]
        }
        sharded = {"data": "ShardedByS3Key", "contract": "FullyReplicated", "code": "FullyReplicated"}
        sharded["steplib"] = "FullyReplicated"  # the step library, mounted whole on every instance
        assert distribution == sharded, name
        # Only Preprocess scales out: every other job keeps one instance.
        others = [
            step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
            for step_name, step in all_steps(json.loads(body)).items()
            if step["Type"] == "Processing" and step_name != "Preprocess"
        ]
        assert others and set(others) == {1}, name
