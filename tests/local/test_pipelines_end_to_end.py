"""The pipelines, run locally from the definitions of the synthesized dev assembly, on the bundled samples.

One story shares a state dir (buckets, registry, cache) across the tests of this module, each run done once and in
order when a test first needs it: train (registers version 1) -> approve -> train again (cached but Evaluate, whose
incumbent changed) -> train a third time through the CLI (everything cached); the one scoring run of the suite scores
the drifted sample with version 1. The other tests build on that state.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import tarfile
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import pandas as pd
import pytest

from config import EnvironmentConfig
from mlops.capture import CaptureWriter, record
from mlops.cli import main
from mlops.ground_truth import ground_truth_record
from pipeline_defs.local import Assembly, LocalModelRegistry, LocalRunner, LocalS3, RunResult, load_assembly
from pipeline_defs.local.inference import load_package
from pipeline_defs.local.step_runtime import steps_python
from tests.local.conftest import SAMPLE_DATA, put_sample, with_changed_script

pytestmark = pytest.mark.heavy(seconds=40)  # scheduled first, longest first (tests/conftest.py)

CACHEABLE = {"Preprocess", "Train", "Evaluate", "Score", "Baseline"}
DATASET = "s3://local-landing/datasets/sample-v1/"
PARAMETERS = {"InputDataUri": DATASET, "ExperimentId": "e2e", "ModelApprovalStatus": "PendingManualApproval"}
CUSTOMERS = "s3://local-landing/scoring/customers-v1/"
FEATURES = 7  # the feature contract's


class Story:
    def __init__(self, assembly: Assembly, assembly_dir: Path, config: EnvironmentConfig, state_dir: Path) -> None:
        self.assembly, self.assembly_dir, self.config, self.state_dir = assembly, assembly_dir, config, state_dir
        self.group = config.model_package_group_name
        self.registry = LocalModelRegistry(state_dir / "registry", config.region)
        put_sample(state_dir, "churn", DATASET)

    def runner(self, pipeline: str, definition: dict | None = None, assembly: Assembly | None = None) -> LocalRunner:
        name = self.config.pipeline_names()[pipeline]
        assembly = assembly or self.assembly
        return LocalRunner(
            definition or assembly.definitions[name],
            pipeline_name=name,
            state_dir=self.state_dir,
            region=self.config.region,
            assets=assembly.assets,
        )

    @cached_property
    def first(self) -> RunResult:
        return self.runner("training").run(PARAMETERS)

    @cached_property
    def second(self) -> RunResult:
        assert self.first.succeeded, self.first.failure_reason
        self.registry.set_approval(self.group, 1, "Approved")
        return self.runner("training").run(PARAMETERS)

    @cached_property
    def third(self) -> dict:
        """Through the CLI, as an operator would: `mlops run training --local --json ...`."""
        assert self.second.succeeded, self.second.failure_reason
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(
                ["run", "training", "--local", "--json", "--assembly", str(self.assembly_dir)]
                + ["--state-dir", str(self.state_dir)]
                + [f"--param={name}={value}" for name, value in PARAMETERS.items()]
            )
        assert code == 0, stdout.getvalue()
        return json.loads(stdout.getvalue())

    @cached_property
    def scoring(self) -> RunResult:
        """The scoring pipeline on the drifted sample, version 1 approved: the suite's one scoring run."""
        assert self.second.succeeded, self.second.failure_reason
        put_sample(self.state_dir, "churn-drifted", CUSTOMERS)
        return self.runner("scoring").run({"InputDataUri": CUSTOMERS, "ExperimentId": "e2e"})

    def records(self, uri: str) -> list[list[str]]:
        """The CSV records of every object under `uri`, in key order."""
        objects = self.runner("training").s3.objects(uri)
        return [line.split(",") for _, path in objects for line in path.read_text().splitlines() if line]

    def read_json(self, uri: str) -> dict:
        return json.loads(self.runner("training").s3.read_bytes(uri))

    def evaluation_report(self, result: RunResult) -> dict:
        return self.read_json(result.step("Evaluate").outputs["evaluation"] + "/evaluation.json")

    def incumbent(self, result: RunResult) -> str:
        return self.read_json(result.step("ResolveIncumbent").outputs["resolved"] + "/resolved.json")["model_data_url"]


@pytest.fixture(scope="module")
def story(assembly, assembly_dir, dev_config, tmp_path_factory) -> Story:
    return Story(assembly, assembly_dir, dev_config, tmp_path_factory.mktemp("state"))


def test_first_run_trains_evaluates_and_registers_version_1(story: Story, capsys) -> None:
    first = story.first
    assert first.status == "Succeeded", first.failure_reason
    assert [step.name for step in first.steps] == [
        "ResolveIncumbent",
        "Preprocess",
        "Train",
        "Evaluate",
        "Score",
        "Baseline",
        "CandidateNotWorse",
        "RegisterModel",
    ]
    assert not any(step.cache_hit for step in first.steps)
    assert {step.name for step in first.steps if step.cacheable} == CACHEABLE
    assert story.evaluation_report(first)["has_incumbent"] is False

    package = story.registry.describe(story.group, 1)
    region = story.config.region
    assert package["ModelPackageArn"] == f"arn:aws:sagemaker:{region}:000000000000:model-package/{story.group}/1"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    # The model-quality constraints the endpoint's monitor checks, registered next to the statistics.
    quality = package["ModelMetrics"]["ModelQuality"]
    assert quality["Constraints"]["S3Uri"] == quality["Statistics"]["S3Uri"].replace(
        "model_quality.json", "model_quality_constraints.json"
    )
    # The version's lineage, recorded at registration: data, run, scores, settings and the code of every step.
    lineage = package["CustomerMetadataProperties"]
    report = story.evaluation_report(first)
    assert lineage["experiment-id"] == "e2e" and lineage["dataset"] == first.parameters["InputDataUri"]
    assert lineage["execution"].endswith(f"/execution/{first.execution_id}")
    assert float(lineage["candidate-roc-auc"]) == report["candidate_score"]
    assert (lineage["incumbent-version"], lineage["incumbent-roc-auc"]) == ("null", "null")  # no approved model yet
    assert lineage["hp-n-estimators"] == "150"
    code = {key.removeprefix("code-"): value for key, value in lineage.items() if key.startswith("code-")}
    assert {"preprocess.py", "train.tar.gz", "evaluate.py", "inference.tar.gz"} <= set(code)
    # Each is the content hash CDK published the code object under, i.e. the code this run executed.
    assert set(code.values()) <= {uri.rsplit("/", 1)[-1].split(".")[0] for uri in story.assembly.assets}
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    job = f"pipelines-{first.execution_id}-Train"
    prefix = f"s3://local-artifacts/pipelines/{story.config.training_pipeline_name}/e2e/{first.execution_id}"
    assert model_url == first.step("Train").outputs["model"] == f"{prefix}/Train/model/{job}/output/model.tar.gz"
    with tarfile.open(story.runner("training").s3.path(model_url)) as tar:
        assert tar.getnames() == ["explainability.json", "model.joblib", "training_row_keys.txt"]
    # The permutation importances registered as the package's Explainability report, one per contract feature.
    explainability = story.read_json(package["ModelMetrics"]["Explainability"]["Report"]["S3Uri"])
    contract = json.loads((Path(__file__).parents[2] / "pipeline_defs" / "steps" / "feature_contract.json").read_text())
    importances = explainability["permutation_importances"]
    assert set(importances) == {feature["name"] for feature in contract["features"]}
    assert max(value["mean"] for value in importances.values()) > 0
    # ... and `mlops registry show` lists them, the most important first.
    assert main(["registry", "show", "1", "--local", "--state-dir", str(story.state_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["feature_importance"]
    assert list(shown) == sorted(importances, key=lambda name: -importances[name]["mean"])
    baselines = package["DriftCheckBaselines"]["ModelDataQuality"]
    assert baselines["Statistics"]["S3Uri"] == f"{prefix}/Baseline/baseline/statistics.json"
    assert story.read_json(baselines["Constraints"]["S3Uri"])["features"]
    quality = story.read_json(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    assert quality["binary_classification_metrics"]["auc"]["value"] > story.config.minimum_score


def test_second_run_reuses_every_step_whose_inputs_are_unchanged(story: Story) -> None:
    first, second = story.first, story.second
    assert second.status == "Succeeded", second.failure_reason
    hits = {step.name: step.cache_source for step in second.steps if step.cache_hit}
    assert hits == {step: first.execution_id for step in ("Preprocess", "Train", "Score", "Baseline")}
    # Evaluate re-runs for the right reason: its incumbent input is now the approved version 1's model.
    assert story.incumbent(first).endswith("/no-incumbent")
    assert story.incumbent(second) == first.step("Train").outputs["model"]
    report = story.evaluation_report(second)
    assert report["has_incumbent"] is True
    assert report["incumbent_score"] == pytest.approx(report["candidate_score"])  # the same model, cached
    assert second.step("RegisterModel").message == f"{story.group} version 2 (PendingManualApproval)"


def test_third_run_with_nothing_changed_hits_the_cache_for_every_cacheable_step(story: Story) -> None:
    third = story.third
    assert third["status"] == "Succeeded"
    steps = {step["name"]: step for step in third["steps"]}
    assert {name for name, step in steps.items() if step["cache_hit"]} == CACHEABLE
    assert {name for name, step in steps.items() if step["cacheable"]} == CACHEABLE
    assert steps["Evaluate"]["cache_source"] == story.second.execution_id
    assert steps["Train"]["cache_source"] == story.first.execution_id
    assert steps["ResolveIncumbent"]["cache_hit"] is False  # not cached: its answer changes with approvals
    assert Path(steps["Evaluate"]["local_outputs"]["evaluation"], "evaluation.json").is_file()
    # The steps ran on the step runtime: the image's Python and scikit-learn (requirements-steps.txt), not the CLI's.
    runtime = third["runtime"]
    assert runtime["interpreter"] == steps_python() and runtime["python"].startswith("3.10.")
    assert runtime["libraries"]["scikit-learn"] == "1.4.2"
    assert {step["interpreter"] for step in third["steps"] if step["type"] in ("Processing", "Training")} <= {
        steps_python(),
        None,  # a cache hit ran no process
    }


def test_a_worse_candidate_is_rejected_with_both_scores(story: Story) -> None:
    """A deliberately worse model: the deployed definition with crippled hyperparameters (1 stump).

    As if a change to the training code's hyperparameters shipped: the real train.py trains a genuinely worse model
    on the same data, and the gate compares it with the approved version 1 on the same held-out slice.
    """
    assert story.second.succeeded
    definition = copy.deepcopy(story.assembly.definitions[story.config.training_pipeline_name])
    train = next(step for step in definition["Steps"] if step["Name"] == "Train")
    train["Arguments"]["HyperParameters"] |= {"n-estimators": "1", "max-depth": "1"}
    versions_before = len(story.registry.versions(story.group))

    result = story.runner("training", definition).run(PARAMETERS)

    assert result.status == "Failed"
    assert result.steps[-1].name == "RejectCandidate"
    # The baseline is the candidate's own scores on the slice: a new model brings a new one.
    assert {step.name for step in result.steps if step.cache_hit} == {"Preprocess"}
    found = re.search(
        r"candidate roc_auc ([0-9.]+) vs approved model roc_auc ([0-9.]+) on the same (\d+) test rows: "
        r"regression ([0-9.]+), 95% CI \[([0-9.]+), ([0-9.]+)\]\. Limits: the interval's lower bound at most "
        r"MaxRegression 0.01 and candidate roc_auc at least MinimumScore 0.7$",
        result.failure_reason,
    )
    assert found, result.failure_reason
    candidate, incumbent, _, regression, lower, upper = map(float, found.groups())
    assert all(re.fullmatch(r"0\.\d{1,4}", score) for score in found.groups()[:2])  # 4 significant digits
    assert incumbent == pytest.approx(story.evaluation_report(story.first)["candidate_score"], abs=5e-5)
    assert candidate < incumbent - 0.01 and 0.01 < lower < regression < upper
    report = story.evaluation_report(result)["comparison"]
    assert report["incumbent_trained_on_test_rows"] == 0  # the split rule keeps version 1's training rows out
    assert len(story.registry.versions(story.group)) == versions_before


def test_changing_one_script_reruns_only_the_steps_that_use_it(story: Story, tmp_path: Path) -> None:
    assert story.third["status"] == "Succeeded"  # every step is cached now
    changed = load_assembly(
        with_changed_script(story.assembly_dir, "evaluate.py", tmp_path / "cdk.out"), story.config.region
    )
    definition = changed.definitions[story.config.training_pipeline_name]

    result = story.runner("training", definition, changed).run(PARAMETERS)

    assert result.status == "Succeeded", result.failure_reason
    # Evaluate and Score run the evaluator; the baseline is computed from Score's new output.
    assert {step.name for step in result.steps if step.cacheable and not step.cache_hit} == {
        "Evaluate",
        "Score",
        "Baseline",
    }
    staged = next((Path(result.step("Evaluate").work_dir) / "input" / "code").iterdir())
    assert staged.read_text().endswith("every step running this script re-runs.\n")


def test_the_evaluation_pipeline_flags_the_drifted_sample(story: Story) -> None:
    assert story.second.succeeded  # version 1 is approved
    evaluation_data = f"s3://local-landing/{story.config.evaluation_data_prefix}"
    runner = story.runner("evaluation")

    put_sample(story.state_dir, "churn", evaluation_data)
    healthy = runner.run({"ExperimentId": "e2e"})
    put_sample(story.state_dir, "churn-drifted", evaluation_data)
    drifted = runner.run({"ExperimentId": "e2e"})

    assert healthy.status == "Succeeded", healthy.failure_reason
    assert drifted.status == "Failed"
    assert drifted.steps[-1].name == "ModelUnhealthy"
    assert drifted.failure_reason.startswith(
        f"step ModelUnhealthy: Model package {story.registry.arn(story.group, 1)} : roc_auc "
    )
    violations = int(re.search(r"drift violations (\d+)", drifted.failure_reason).group(1))
    drift = story.read_json(drifted.step("CheckDrift").outputs["drift"] + "/drift_report.json")
    assert violations == drift["violations"] > 0
    # The drop test against version 1's registered evaluation AUC (ResolveModel hands Evaluate its statistics).
    resolved = story.read_json(healthy.step("ResolveModel").outputs["resolved"] + "/resolved.json")
    assert resolved["model_quality_input_uri"] == resolved["model_quality_statistics_uri"] is not None
    tested = story.evaluation_report(healthy)["auc_drop"]
    assert tested["method"] != "none" and tested["alarm"] is False
    assert tested["baseline"] == story.evaluation_report(story.first)["candidate_score"]
    # The drifted sample fails on its drift (what the demo shows), not on its AUC, which held up.
    assert story.evaluation_report(drifted)["auc_drop"]["alarm"] is False


def test_undeclared_columns_never_reach_the_model_and_a_first_run_failure_names_no_fake_incumbent(
    story: Story, tmp_path: Path
) -> None:
    """A producer's extra columns (an id, free text, a copy of the label) once trained a perfect, leaking model."""
    state_dir = tmp_path / "state"
    dataset = "s3://local-landing/datasets/extra-columns/"
    folder = LocalS3(state_dir / "s3").path(dataset)
    folder.mkdir(parents=True)
    lines = (SAMPLE_DATA / "churn" / "part-0000.csv").read_text().splitlines()
    rows = [f"customer_id,{lines[0]},notes,churned_copy"]
    rows += [f"c{i},{line},free text,{line.rsplit(',', 1)[1]}" for i, line in enumerate(lines[1:])]
    (folder / "part-0000.csv").write_text("\n".join(rows) + "\n")
    runner = LocalRunner(
        story.assembly.definitions[story.config.training_pipeline_name],
        pipeline_name=story.config.training_pipeline_name,
        state_dir=state_dir,
        region=story.config.region,
        assets=story.assembly.assets,
    )

    result = runner.run({**PARAMETERS, "InputDataUri": dataset, "MinimumScore": "0.99"})

    assert result.status == "Failed" and result.steps[-1].name == "RejectCandidate"
    report = json.loads(runner.s3.read_bytes(result.step("Preprocess").outputs["report"] + "/preprocess_report.json"))
    assert report["unknown_columns_dropped"] == ["customer_id", "notes", "churned_copy"]
    evaluation = json.loads(runner.s3.read_bytes(result.step("Evaluate").outputs["evaluation"] + "/evaluation.json"))
    assert 0.7 < evaluation["candidate_score"] < 0.95  # trained on the declared features only: no leak
    assert re.search(
        r"roc_auc 0\.\d{1,4} on \d+ labelled test rows; no incumbent compared\. Limits:", result.failure_reason
    )
    assert "approved model roc_auc" not in result.failure_reason


def test_the_evaluation_pipeline_merges_captured_traffic_with_its_ground_truth(story: Story) -> None:
    """MergeCapture (the real merge step) on the endpoint's capture: requests joined with labels by inference id."""
    assert story.second.succeeded  # version 1 is approved
    runner = story.runner("evaluation")
    endpoint = story.config.endpoint_name
    rows = pd.read_csv(SAMPLE_DATA / "churn" / "part-0000.csv", dtype=str, keep_default_na=False)
    rows = rows[rows["churned"].isin(["0", "1"])].head(300)
    when = datetime.now(UTC) - timedelta(minutes=1)
    writer = CaptureWriter(runner.s3.path(f"s3://local-artifacts/data-capture/{endpoint}/AllTraffic/"), 100)
    for index, cells in enumerate(rows.drop(columns=["churned"]).values.tolist()):
        writer.write(record((",".join(cells).encode(), "text/csv"), (b"0.5\n", "text/csv"), when, f"r{index}"), when)
    writer.close()
    truth = runner.s3.path(f"s3://local-landing/ground-truth/{endpoint}/2026/11/29/12/labels.jsonl")
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(
        "".join(json.dumps(ground_truth_record(f"r{i}", label)) + "\n" for i, label in enumerate(rows["churned"]))
    )

    result = runner.run(
        {
            "ExperimentId": "capture",
            "InputDataUri": f"s3://local-artifacts/data-capture/{endpoint}/",
            "GroundTruthUri": f"s3://local-landing/ground-truth/{endpoint}/",
            "CapturePeriodHours": 1.0,
        }
    )

    merge = story.read_json(result.step("MergeCapture").outputs["report"] + "/merge_report.json")
    assert (merge["source"], merge["in_period"], merge["labelled"], merge["unmatched_ground_truth"]) == (
        "capture",
        300,
        300,
        0,
    )
    assert story.evaluation_report(result)["candidate"]["rows"] == 300
    assert result.status == "Succeeded", result.failure_reason


def test_scoring_writes_one_score_per_row_joined_to_its_key_with_batch_capture_and_flags_drift(story: Story) -> None:
    result = story.scoring
    steps = ["ResolveModel", "Preprocess", "CreateModel", "Transform", "Summarize", "CheckDrift", "NoDrift"]
    assert [step.name for step in result.steps] == [*steps, "DriftDetected"]
    assert result.status == "Failed" and result.steps[-1].type == "Fail", result.failure_reason
    prepared = story.records(result.step("Preprocess").outputs["score"])
    scored = story.records(result.step("Transform").outputs["scores"])
    # The drifted sample has no duplicates or invalid rows: every input row is scored, exactly once, under its key.
    assert len(scored) == len(prepared) == 500
    assert sorted(row[0] for row in scored) == sorted(row[0] for row in prepared)
    by_key = {row[0]: row for row in prepared}
    for row in scored:
        assert row[: 1 + FEATURES] == by_key[row[0]]  # the whole input record (JoinSource Input), then the answer
        assert 0.0 <= float(row[1 + FEATURES]) <= 1.0
        assert re.fullmatch(r"[0-9a-f-]{36}", row[2 + FEATURES]) and row[3 + FEATURES].endswith("Z")
    assert len({row[2 + FEATURES] for row in scored}) == len(scored)  # one inference id per record
    # transform_instance_count 2 and two prepared files: each instance loaded the model and scored one file.
    work = Path(result.step("Transform").work_dir)
    assert sorted(folder.name for folder in work.iterdir() if (folder / "model").is_dir()) == ["algo-1", "algo-2"]
    # Batch capture: manifests of what was read and written, in the hour folder the job started in.
    s3 = story.runner("training").s3
    capture = result.step("Transform").outputs["capture"]
    manifests = {}
    for key, path in s3.objects(capture):
        layout = re.fullmatch(r".*/capture/(input|output)/\d{4}/\d{2}/\d{2}/\d{2}/[0-9a-f-]{36}\.json", key)
        assert layout, key
        manifests[layout.group(1)] = json.loads(path.read_text())
    scores_uri, score_uri = result.step("Transform").outputs["scores"], result.step("Preprocess").outputs["score"]
    assert manifests["input"] == [{"prefix": f"{score_uri}/"}, "score-0000.csv", "score-0001.csv"]
    assert manifests["output"] == [{"prefix": f"{scores_uri}/"}, "score-0000.csv.out", "score-0001.csv.out"]
    summary = story.read_json(result.step("Summarize").outputs["summary"] + "/summary.json")
    assert summary["rows"] == sum(item["rows"] for item in summary["manifest"]) == len(scored)
    assert sum(bucket["count"] for bucket in summary["histogram"]) == len(scored)
    top = [entry["score"] for entry in summary["top"]]
    assert top == sorted((float(row[1 + FEATURES]) for row in scored), reverse=True)[: len(top)]
    drift = story.read_json(result.step("CheckDrift").outputs["drift"] + "/drift_report.json")
    assert drift["violations"] > 0 and f"drift violations {drift['violations']} " in result.failure_reason


def test_transform_answers_are_what_the_local_endpoint_answers(story: Story, tmp_path: Path) -> None:
    scored = story.records(story.scoring.step("Transform").outputs["scores"])[:5]
    package = story.registry.describe(story.group, 1)
    code = load_package(package, story.runner("training").s3, tmp_path)  # what `mlops serve --local` loads

    body = "".join(",".join(row[1 : 1 + FEATURES]) + "\n" for row in scored).encode()
    answer, content_type = code.invoke(body, "text/csv", "text/csv")

    assert content_type == "text/csv"
    assert [float(line) for line in answer.decode().splitlines()] == [float(row[1 + FEATURES]) for row in scored]


def test_the_report_of_a_scoring_run_shows_its_histogram_drift_per_feature_and_top_rows(story: Story, tmp_path) -> None:
    result = story.scoring
    page = tmp_path / "scoring.html"
    arguments = ["report", result.execution_id, "--local", "--state-dir", str(story.state_dir), "--html", str(page)]

    assert main(arguments) == 0

    html = page.read_text()
    summary = story.read_json(result.step("Summarize").outputs["summary"] + "/summary.json")
    assert f"<td>rows scored</td><td>{summary['rows']}</td>" in html
    for bucket in summary["histogram"]:
        assert f"{bucket['lower']:g} to {bucket['upper']:g}: {bucket['count']} rows" in html
    assert f"Top {len(summary['top'])} rows by score" in html and summary["top"][0]["row_key"] in html
    drift = story.read_json(result.step("CheckDrift").outputs["drift"] + "/drift_report.json")
    drifted = [name for name, feature in drift["per_feature"].items() if feature["drifted"]]
    assert drifted and all(f"data-feature='{name}'" in html for name in drift["per_feature"])
    assert all(f"<section class='feature violated' data-feature='{name}'>" in html for name in drifted)


def test_a_run_from_evaluate_reuses_the_newest_run_and_leaves_the_cache_alone(story: Story) -> None:
    """`mlops run training --local --from Evaluate`: the gate and registration again on a run's model and slices (the
    back half of the pipeline, as SageMaker's selective execution does). The newest run that succeeded ran a changed
    definition (earlier tests), so it is refused; the third run is named. Last in this file: it registers a version."""
    source = story.third
    index = (story.state_dir / "cache" / f"{story.config.training_pipeline_name}.json").read_bytes()
    command = ["run", "training", "--local", "--json", "--from", "Evaluate", "--assembly", str(story.assembly_dir)]
    command += ["--state-dir", str(story.state_dir)]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(command) == 2
    assert "ran another definition of churn-dev-training" in stderr.getvalue()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([*command, "--source", source["execution_id"]])
    result = json.loads(stdout.getvalue())

    assert code == 0 and result["status"] == "Succeeded", result["failure_reason"]
    assert result["source_execution"] == source["execution_id"]
    ran = {step["name"]: step for step in result["steps"] if step["reused_from"] is None}
    assert list(ran) == ["Evaluate", "CandidateNotWorse", "RegisterModel"]
    assert {step["reused_from"] for step in result["steps"] if step["name"] not in ran} == {source["execution_id"]}
    # The same model, slices and incumbent as the source: the same evaluation (Evaluate is deterministic).
    metrics = ("candidate_score", "incumbent_score", "regression_lower_bound")
    for metric in metrics:
        key = f"Evaluate.Evaluation.{metric}"
        assert result["metrics"][key] == source["metrics"][key], key
    assert result["parameters"] == source["parameters"]
    assert (story.state_dir / "cache" / f"{story.config.training_pipeline_name}.json").read_bytes() == index
