"""A processing job on several instances, run locally as SageMaker runs it: one process per instance, each with its
resourceconfig.json (current_host, hosts) and its share of a ShardedByS3Key input, every output merged."""

from __future__ import annotations

import copy
import json
import re
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from config import EnvironmentConfig
from pipeline_defs.local import Assembly, LocalRunner, LocalS3, RunResult
from pipeline_defs.local.processing import RESOURCE_CONFIG_VARIABLE
from pipeline_defs.local.training import LEADER_ADDRESS_VARIABLE
from tests.helpers import STEPS_DIR, load_module, step_runtime_probabilities
from tests.local.builders import pipeline, processing
from tests.local.conftest import SAMPLE_DATA

pytestmark = pytest.mark.heavy(seconds=14)  # scheduled first, longest first (tests/conftest.py)

SHARD_CODE_URI = "s3://local-artifacts/code/shard.py"
# Writes <host>.json naming what this instance saw; with --same-name every instance also writes the same data.csv.
SHARD_SCRIPT = """
import json, os, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
config = json.loads(Path(os.environ["LOCAL_RESOURCE_CONFIG"]).read_text())
files = lambda folder: sorted(p.name for p in Path(folder).rglob("*") if p.is_file())
out = Path(args["--output-dir"])
seen = {"data": files(args["--input-dir"]), "contract": files(args["--contract"]), **config}
(out / f"{config['current_host']}.json").write_text(json.dumps(seen))
if args.get("--same-name") == "true":
    (out / "data.csv").write_text("a\\n1\\n")
"""


def sharded_step(state_dir: Path, instances: int, *arguments: str) -> dict:
    (state_dir / "s3" / "local-artifacts" / "code" / "shard.py").write_text(SHARD_SCRIPT)
    for number in range(5):
        shard = state_dir / "s3" / "local-landing" / "shards" / f"part-{number}.csv"
        shard.parent.mkdir(parents=True, exist_ok=True)
        shard.write_text(f"a\n{number}\n")
    contract = state_dir / "s3" / "local-landing" / "contract" / "contract.json"
    contract.parent.mkdir(parents=True)
    contract.write_text("{}")
    step = processing(
        "Shard",
        *("--input-dir", "/opt/ml/processing/input/data", "--contract", "/opt/ml/processing/input/contract"),
        *arguments,
        inputs={"data": "s3://local-landing/shards/", "contract": "s3://local-landing/contract/"},
        report=False,
    )
    job = step["Arguments"]
    job["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = instances
    job["AppSpecification"]["ContainerEntrypoint"][1] = "/opt/ml/processing/input/code/shard.py"
    for item in job["ProcessingInputs"]:
        if item["InputName"] == "code":
            item["S3Input"]["S3Uri"] = SHARD_CODE_URI
        if item["InputName"] == "data":
            item["S3Input"]["S3DataDistributionType"] = "ShardedByS3Key"
    return step


def seen_by_each_instance(state_dir: Path, result) -> dict[str, dict]:
    output = state_dir / "s3" / result.step("Shard").outputs["out"][len("s3://") :]
    return {path.stem: json.loads(path.read_text()) for path in sorted(output.glob("algo-*.json"))}


def test_each_instance_gets_its_share_of_a_sharded_input_and_all_of_the_others(run, state_dir) -> None:
    result = run(pipeline(sharded_step(state_dir, 3)))

    assert result.status == "Succeeded", result.failure_reason
    seen = seen_by_each_instance(state_dir, result)
    hosts = ["algo-1", "algo-2", "algo-3"]
    assert list(seen) == hosts and all(seen[host]["hosts"] == hosts for host in hosts)
    assert all(seen[host]["current_host"] == host for host in hosts)
    assert {host: seen[host]["data"] for host in hosts} == {
        "algo-1": ["part-0.csv", "part-3.csv"],
        "algo-2": ["part-1.csv", "part-4.csv"],
        "algo-3": ["part-2.csv"],
    }
    assert all(seen[host]["contract"] == ["contract.json"] for host in hosts)  # FullyReplicated: every instance
    work = Path(result.step("Shard").work_dir)
    assert all((work / host / "log.txt").is_file() for host in hosts)


def test_one_instance_is_algo_1_of_one_host_with_every_object(run, state_dir) -> None:
    result = run(pipeline(sharded_step(state_dir, 1)))

    assert result.status == "Succeeded", result.failure_reason
    [(host, seen)] = seen_by_each_instance(state_dir, result).items()
    assert (host, seen["hosts"], len(seen["data"])) == ("algo-1", ["algo-1"], 5)


def test_two_instances_writing_the_same_file_fail_the_step_naming_both(run, state_dir) -> None:
    result = run(pipeline(sharded_step(state_dir, 2, "--same-name", "true")))

    assert result.status == "Failed"
    assert "instances algo-1 and algo-2 both wrote out/data.csv" in result.failure_reason


def test_the_step_script_reads_the_variable_the_runner_sets() -> None:
    module = load_module("instance_preprocess", STEPS_DIR / "preprocess.py")
    assert module.RESOURCE_CONFIG_VARIABLE == RESOURCE_CONFIG_VARIABLE
    assert str(module.RESOURCE_CONFIG) == "/opt/ml/config/resourceconfig.json"


# The dev unit's training pipeline with Preprocess on three instances -------------------------------------------------
@pytest.fixture(scope="module")
def three_instance_run(
    assembly: Assembly, dev_config: EnvironmentConfig, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunResult, LocalS3]:
    """The bundled sample as three files (every third row each), Preprocess with InstanceCount 3."""
    name = dev_config.training_pipeline_name
    definition = copy.deepcopy(assembly.definitions[name])
    [preprocess] = [step for step in definition["Steps"] if step["Name"] == "Preprocess"]
    preprocess["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 3
    state = tmp_path_factory.mktemp("three-instances")
    sample = pd.read_csv(SAMPLE_DATA / "churn" / "part-0000.csv", dtype=str, keep_default_na=False)
    folder = LocalS3(state / "s3").path("s3://local-landing/datasets/thirds/")
    folder.mkdir(parents=True)
    for number in range(3):
        sample.iloc[number::3].to_csv(folder / f"part-{number}.csv", index=False)
    runner = LocalRunner(
        definition, pipeline_name=name, state_dir=state, region=dev_config.region, assets=assembly.assets
    )
    return runner.run({"InputDataUri": "s3://local-landing/datasets/thirds/", "ExperimentId": "thirds"}), runner.s3


def test_preprocess_on_three_instances_feeds_train_the_union_of_their_files(three_instance_run) -> None:
    result, s3 = three_instance_run
    assert result.step("Preprocess").status == "Succeeded", result.failure_reason
    outputs = result.step("Preprocess").outputs
    hosts = ("algo-1", "algo-2", "algo-3")
    for part in ("train", "validation", "test"):
        keys = sorted(key.rsplit("/", 1)[1] for key, _ in s3.objects(outputs[part] + "/"))
        assert keys == [*(f"row_keys-{host}.txt" for host in hosts), *(f"{part}-{host}.csv" for host in hosts)]
    reports = [json.loads(path.read_text()) for _, path in s3.objects(outputs["report"] + "/")]
    sample_rows = len(pd.read_csv(SAMPLE_DATA / "churn" / "part-0000.csv", dtype=str))
    assert sum(report["rows_read"] for report in reports) == sample_rows  # every row of the sample, read once

    assert result.step("Train").status == "Succeeded", result.failure_reason
    [(_, archive)] = s3.objects(result.step("Train").outputs["model"])
    with tarfile.open(archive) as tar:
        trained_on = tar.extractfile("training_row_keys.txt").read().decode().split()  # type: ignore[union-attr]
    keys_of = lambda part: [  # noqa: E731
        key for uri, path in s3.objects(outputs[part] + "/") if uri.endswith(".txt") for key in path.read_text().split()
    ]
    assert sorted(trained_on) == sorted(keys_of("train") + keys_of("validation"))


def test_the_training_pipeline_succeeds_with_preprocess_on_three_instances(three_instance_run) -> None:
    """Evaluate and Score read the union of the three instances' test files (each with its row keys)."""
    result, s3 = three_instance_run
    assert result.succeeded, result.failure_reason
    test_files = [
        path for uri, path in s3.objects(result.step("Preprocess").outputs["test"] + "/") if uri.endswith(".csv")
    ]
    assert len(test_files) == 3
    test_rows = sum(len(pd.read_csv(path)) for path in test_files)
    assert result.metrics["Evaluate.Evaluation.scored_rows"] == test_rows
    [scored] = [path for uri, path in s3.objects(result.step("Score").outputs["scored"] + "/") if uri.endswith(".csv")]
    assert len(pd.read_csv(scored)) == test_rows


# training_engine xgboost: Train on two instances (one process each), on the three-instance run's Preprocess files -----
def test_xgboost_trains_one_model_on_two_instances_that_the_scikit_learn_steps_read(
    three_instance_run, assembly: Assembly, dev_config: EnvironmentConfig, tmp_path: Path
) -> None:
    """The dev definition's Train as training_engine xgboost synthesizes it (tests/infra: image, instances, sharded
    train channel), on the files the three Preprocess instances wrote: algo-1 and algo-2 each read their share and
    train together; algo-1's model.joblib follows the model-artifact contract (the step runtime's Evaluate code reads
    it), and its training_row_keys.txt lists every instance's rows."""
    source, s3 = three_instance_run
    outputs = source.step("Preprocess").outputs
    [train] = [
        step for step in assembly.definitions[dev_config.training_pipeline_name]["Steps"] if step["Name"] == "Train"
    ]
    job = copy.deepcopy(train["Arguments"])
    job["AlgorithmSpecification"]["TrainingImage"] = (
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    )
    job["ResourceConfig"]["InstanceCount"] = 2
    job["HyperParameters"]["sagemaker_program"] = "train_xgboost.py"
    job["HyperParameters"]["n-estimators"] = "30"  # enough for the check below, cheap for the suite
    for channel in job["InputDataConfig"]:
        data = channel["DataSource"]["S3DataSource"]
        if channel["ChannelName"] in ("train", "validation"):
            data["S3Uri"] = outputs[channel["ChannelName"]]
        data["S3DataDistributionType"] = "ShardedByS3Key" if channel["ChannelName"] == "train" else "FullyReplicated"
    runner = LocalRunner(
        pipeline({"Name": "Train", "Type": "Training", "Arguments": job}),
        pipeline_name="xgboost-two-instances",
        state_dir=s3.root.parent,
        region=dev_config.region,
        assets=assembly.assets,
    )
    result = runner.run({"ExperimentId": "xgboost"})

    assert result.succeeded, result.failure_reason
    work = Path(result.step("Train").work_dir)
    logs = {host: (work / host / "log.txt").read_text() for host in ("algo-1", "algo-2")}
    assert "instance 1 of 2" in logs["algo-1"] and "instance 2 of 2" in logs["algo-2"]
    assert result.step("Train").interpreter.endswith(".venv-xgboost/bin/python")
    shares = [int(re.search(r"read (\d+) rows from \d+ file\(s\) in .*train", log).group(1)) for log in logs.values()]
    train_rows = sum(len(pd.read_csv(path)) for uri, path in s3.objects(outputs["train"] + "/") if uri.endswith(".csv"))
    assert min(shares) > 0 and sum(shares) == train_rows  # each its share, together every training row
    [(_, archive)] = s3.objects(result.step("Train").outputs["model"])
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    trained_on = (tmp_path / "training_row_keys.txt").read_text().split()
    keys = [
        key
        for uri, path in s3.objects(outputs["train"] + "/")
        if uri.endswith(".txt")
        for key in path.read_text().split()
    ]
    assert len(trained_on) > len(keys) and set(keys) <= set(trained_on)  # every instance's rows, and validation's
    test = pd.concat(
        pd.read_csv(path, dtype=str, keep_default_na=False)
        for uri, path in s3.objects(outputs["test"] + "/")
        if uri.endswith(".csv")
    )
    probabilities = step_runtime_probabilities(tmp_path / "model.joblib", test.drop(columns=["churned"]))
    assert roc_auc_score(test["churned"].astype(int), probabilities) > 0.7
    # The script reads the variable the runner sets (the script imports xgboost, absent here: read, not imported).
    script = (STEPS_DIR / "train_xgboost.py").read_text()
    assert f'LEADER_ADDRESS_VARIABLE = "{LEADER_ADDRESS_VARIABLE}"' in script
