"""The README's `mlops` examples run verbatim, in order, on a fresh checkout after the quick start.

What counts as an example: a line of a ```bash fenced block of README.md that starts with `mlops ` (a `\\` at the
end of a line continues it), and a `printf ... > FILE` line that writes an example's input file. Every example
runs, through bash, with the venv's `mlops` first on PATH, in a fresh folder laid out like a clone after
`make synth` (cdk.json, cdk.out = the dev unit synthesized for this test process, the bundled sample data, the
committed files of config/) and with no state yet - except:
- examples that call AWS: they name a deployed unit with `--env` and do not say `--local` (`mlops start`,
  `mlops dlq replay`, `mlops dataset put --env`). There is no account here; tests/cli covers them with Stubber.
- `mlops serve` and `mlops ui`: servers that run until stopped; tests/cli/test_serve.py and
  tests/local/test_run_tracking.py run them.
- `mlops cost` (but `mlops cost prices`, which reads the committed snapshot): it always reads AWS.
Each example must exit 0 and print no traceback. The README says this rule where the examples are.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.capture import read_capture
from mlops.demo import DEMO_SUMMARY, TRAFFIC_ROWS
from pipeline_defs.local.step_runtime import steps_python
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.heavy(seconds=60)  # scheduled first, longest first (tests/conftest.py)

README = REPO_ROOT / "README.md"
SAMPLE_DATA = REPO_ROOT / "pipeline_defs" / "sample_data"
_FENCE = re.compile(r"^```(\w*)\s*$")


def bash_lines(markdown: str) -> list[str]:
    """The lines of every ```bash block, continuation lines (`\\` at the end) joined."""
    lines: list[str] = []
    language: str | None = None
    pending = ""
    for raw in markdown.splitlines():
        fence = _FENCE.match(raw.strip())
        if fence:
            language = None if language is not None else fence.group(1)
            continue
        if language != "bash":
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    return lines


def examples(markdown: str) -> list[str]:
    return [line.strip() for line in bash_lines(markdown) if _is_example(line.strip())]


def _is_example(line: str) -> bool:
    return line.startswith("mlops ") or (line.startswith("printf ") and " > " in line)


def skip_reason(example: str) -> str | None:
    """Why an example does not run here (None: it runs)."""
    words = shlex.split(example, comments=True)
    if words[0] != "mlops":
        return None
    if words[1] == "serve":
        return "a server that runs until stopped (tests/cli/test_serve.py)"
    if words[1] == "ui":
        return "a server that runs until stopped (tests/local/test_run_tracking.py)"
    if "--env" in words and "--local" not in words:
        return "calls AWS (a deployed unit named by --env)"
    if words[1] == "cost" and (words[2] != "prices" or "--refresh" in words):
        return "calls AWS (mlops cost reads the deployed unit's jobs and bills; tests/cli/test_cost_* stub it)"
    return None


def test_the_rule_finds_the_examples_and_skips_only_the_aws_and_server_ones() -> None:
    markdown = "\n".join(
        [
            "```bash",
            "mlops demo   # a comment",
            "mlops run training --local \\",
            "  --param A=1",
            "mlops start training --env prod --experiment e",
            "mlops dataset put d --id x --local --env dev",
            "mlops serve --local",
            "echo mlops demo",
            "printf 'a\\n' > input.csv",
            "printf 'a\\n'",
            "```",
            "```",
            "mlops graph training",
            "```",
        ]
    )

    found = examples(markdown)

    assert found == [
        "mlops demo   # a comment",
        "mlops run training --local    --param A=1",
        "mlops start training --env prod --experiment e",
        "mlops dataset put d --id x --local --env dev",
        "mlops serve --local",
        "printf 'a\\n' > input.csv",
    ]
    assert [skip_reason(line) is None for line in found] == [True, True, False, True, False, True]


@pytest.fixture
def fresh_checkout(tmp_path: Path, assembly_dir: Path) -> Path:
    """A folder laid out like a clone after `make synth`: what the `mlops` commands read from the checkout."""
    checkout = tmp_path / "checkout"
    (checkout / "pipeline_defs").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "cdk.json", checkout / "cdk.json")
    (checkout / "cdk.out").symlink_to(assembly_dir, target_is_directory=True)
    (checkout / "pipeline_defs" / "sample_data").symlink_to(REPO_ROOT / "pipeline_defs" / "sample_data")
    (checkout / "notebooks").symlink_to(REPO_ROOT / "notebooks")
    (checkout / "config").mkdir()
    for committed in (
        "prices",
        "deployments.json",
        "model_card.json",
        "schemas",
    ):  # what the commands read from config/
        (checkout / "config" / committed).symlink_to(REPO_ROOT / "config" / committed)
    return checkout


def test_every_local_example_of_the_readme_runs_verbatim_in_order(fresh_checkout: Path) -> None:
    found = examples(README.read_text())
    runnable = [line for line in found if skip_reason(line) is None]
    # The README's walk-through is there: the demo, a run of each pipeline, the registry, a new dataset.
    commands = {" ".join(shlex.split(line, comments=True)[1:3]) for line in runnable}
    assert {"demo", "run training", "run evaluation", "registry approve", "dataset put"} <= commands, commands

    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in runnable:
        is_demo = shlex.split(line, comments=True) == ["mlops", "demo"]
        # The demo keeps its MLflow record (checked below); the other lines skip it, as the suite does (seconds each).
        tracked = {key: value for key, value in environment.items() if key != "MLOPS_TRACKING"}
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {line}"],
            cwd=fresh_checkout,
            env=tracked if is_demo else environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"README example failed ({done.returncode}): {line}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"{line}\n{done.stderr[-3000:]}"
        if is_demo:
            # The suite's one demo run (it is the slowest command): what it did, before later examples change it.
            check_the_demo(fresh_checkout / ".local" / "demo", done.stdout)
    # The examples left experiments on the demo's state: check them there, where the state already is.
    check_the_loaded_step_reproduces_its_run(fresh_checkout / "loaded-train", fresh_checkout / ".local" / "demo")
    check_the_experiments(fresh_checkout, fresh_checkout / ".local" / "demo")
    check_the_notebooks_run(fresh_checkout)


def check_the_demo(state_dir: Path, printed: str) -> None:
    """The demo trained, approved, re-trained from the cache, failed the drifted evaluation, served, monitored."""
    report = json.loads((state_dir / DEMO_SUMMARY).read_text())
    assert report["expected"] is True and report["approved_version"] == 1
    first = report["runs"]["training-1"]
    assert first["registered"]["version"] == 1 and 0.7 <= first["metrics"]["Evaluate.Evaluation.candidate_score"] <= 1
    second = {step["name"]: step for step in report["runs"]["training-2"]["steps"]}
    assert [name for name, step in second.items() if step["cache_hit"]] == ["Preprocess", "Train", "Score", "Baseline"]
    assert "Evaluate re-ran because one of its inputs changed" in printed
    # The approved version's lineage, as `mlops registry show` prints it.
    assert "version 1: Approved. Its lineage (mlops registry show 1 --local" in printed
    assert "    dataset: s3://local-landing/datasets/sample-v1/" in printed and "    code-train.tar.gz: " in printed
    assert report["runs"]["evaluation"]["failure_reason"].startswith("step ModelUnhealthy: Model package ")
    assert "baseline_drift_check" in printed
    # Then it served the approved version and sent it the first complete rows of both samples, each one captured.
    complete = [
        sum("?" not in line for line in (SAMPLE_DATA / sample / "part-0000.csv").read_text().splitlines()[1:])
        for sample in ("churn", "churn-drifted")
    ]
    sent = sum(min(rows, TRAFFIC_ROWS) for rows in complete)
    assert report["served"]["version"] == 1 and report["served"]["sent"] == sent == 600
    records = list(read_capture(Path(report["served"]["capture_folder"]).parent.parent))
    assert len(records) == sent
    assert {record.endpoint_input.observed_content_type for _, record in records} == {"text/csv"}
    # Each request carried an inference id, and the sample's labels came back for them as ground truth.
    assert {record.inference_id for _, record in records} == {f"{s}-{i}" for s in ("churn", "churn-drifted") for i in
                                                             range(TRAFFIC_ROWS)}  # fmt: skip
    labelled = report["served"]["labels"]
    assert 0 < labelled <= sent
    # Both monitoring paths saw the drift in the captured traffic, and model quality was checked on the labels.
    monitored = report["monitored"]
    assert monitored["drift_violations"] > 0 and monitored["capture_run_failed_by_gate"] is True
    assert monitored["model_quality"]["checked"] is True and monitored["model_quality"]["labelled"] == labelled
    assert "7. The path of every account" in printed and "drift violations" in printed
    check_the_demo_record(state_dir, report)
    # Three self-contained pages, each naming what it reports on.
    for page in monitored["reports"]:
        html = Path(page).read_text()
        assert html.lower().startswith("<!doctype html>") and "<svg" in html
        assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from anywhere


def check_the_demo_record(state_dir: Path, report: dict) -> None:
    """Every run of the demo is on record in the state dir's MLflow store, each step a nested run whose metrics are
    the numbers of its reports."""
    from mlflow.tracking import MlflowClient

    from mlops.tracking import store_uri

    client = MlflowClient(tracking_uri=store_uri(state_dir))
    experiment = client.get_experiment_by_name("demo")
    records = client.search_runs([experiment.experiment_id], filter_string="tags.`mlops.role` = 'record'")
    executions = {run["execution_id"] for run in report["runs"].values()} | {report["monitored"]["capture_run"]}
    assert {record.data.tags["mlops.execution_id"] for record in records} == executions
    first = report["runs"]["training-1"]
    [parent] = [r for r in records if r.data.tags["mlops.execution_id"] == first["execution_id"]]
    assert (
        parent.data.tags["mlops.registered_version"] == "1"
        and parent.data.tags["mlops.dataset"] == first["parameters"]["InputDataUri"]
    )
    steps = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert {step.data.tags["mlflow.runName"] for step in steps} == {step["name"] for step in first["steps"]}
    [evaluate] = [step for step in steps if step.data.tags["mlflow.runName"] == "Evaluate"]
    reported = {
        key.removeprefix("Evaluate."): value for key, value in first["metrics"].items() if key.startswith("Evaluate.")
    }
    assert {key: value for key, value in evaluate.data.metrics.items() if key != "seconds"} == reported
    assert client.get_experiment_by_name("monitoring") is not None
    # The eval-only run's page links its run (the demo logs before it draws the pages).
    assert (
        "/runs/" in (state_dir / "report-evaluation.html").read_text()
        and "MLflow run" in (state_dir / "report-evaluation.html").read_text()
    )


def check_the_loaded_step_reproduces_its_run(loaded: Path, state_dir: Path) -> None:
    """`mlops step load Train` then its step.py, in the step runtime: the run's validation ROC AUC, to 1e-9."""
    record = json.loads((loaded / "loaded.json").read_text())
    done = subprocess.run([steps_python(), "step.py"], cwd=loaded, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reproduced = float(re.search(r"'validation_roc_auc': ([0-9.e-]+)", done.stdout).group(1))
    ran = state_dir / "executions" / record["pipeline"] / record["ran_in"] / "steps" / "Train"
    original = json.loads((ran / "output" / "data" / "metrics.json").read_text())["validation_roc_auc"]
    assert abs(reproduced - original) <= 1e-9
    assert json.loads((loaded / "output" / "data" / "metrics.json").read_text())["validation_roc_auc"] == original


def check_the_experiments(checkout: Path, state_dir: Path) -> None:
    """The README's experiment wrote its reports and page; an experiment function returning the model the execution's
    Evaluate judged prints Evaluate's own interval; a function that raises is one line and leaves no trace."""
    [experiment] = (state_dir / "experiments").glob("logistic-*")
    judged = json.loads((experiment / "experiment.json").read_text())
    assert judged["verdict"].startswith("gate CandidateNotWorse: ")
    assert "<svg" in (experiment / "report.html").read_text()

    from mlops.workspace import Workspace

    run = Workspace.local(state_dir, assembly=checkout / "cdk.out").execution(judged["execution"])
    evaluated = run.report("Evaluate", "evaluation", "evaluation.json")
    (checkout / "same_model.py").write_text(
        "import io, tarfile, joblib\n\n\ndef train_model(slices):\n"
        f"    with tarfile.open({str(run.outputs('Train')['model'])!r}) as tar:\n"
        "        member = next(m for m in tar.getmembers() if m.name.endswith('model.joblib'))\n"
        "        return joblib.load(io.BytesIO(tar.extractfile(member).read()))\n"
    )
    same = experiment_run(checkout, state_dir, "same_model.py:train_model", "--on", run.id, "--experiment-id", "same")
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines()[0] == evaluated["summary"]  # the interval Evaluate printed, to the digit
    reported = json.loads((state_dir / "experiments" / "same" / "evaluation" / "evaluation.json").read_text())
    assert reported["comparison"] == evaluated["comparison"] and reported["candidate"] == evaluated["candidate"]
    # The notebook API on an environment judges it the same: its Evaluate loaded from S3 as `step load --env` loads it.
    from tests.cli.test_workspace_aws import evaluate_through_aws

    model = run.outputs("Train")["model"]
    on_aws = evaluate_through_aws(state_dir, checkout / "cdk.out", run.id, model, checkout / "aws-cache")
    assert on_aws.evaluation["comparison"] == evaluated["comparison"]
    assert on_aws.evaluation["summary"] == evaluated["summary"] and on_aws.page.is_file()

    (checkout / "raising.py").write_text("def candidate(slices):\n    raise ValueError('no model today')\n")
    before = sorted(path.name for path in (state_dir / "experiments").iterdir())
    raised = experiment_run(checkout, state_dir, "raising.py:candidate", "--on", "latest")
    assert raised.returncode == 2 and raised.stderr.count("\n") == 1, raised.stderr
    assert "raised ValueError: no model today" in raised.stderr
    assert sorted(path.name for path in (state_dir / "experiments").iterdir()) == before
    assert not list(state_dir.glob(".experiment-*"))  # its scratch folder went with it


def experiment_run(checkout: Path, state_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "mlops"), "experiment", "run", *arguments]
    command += ["--local", "--state-dir", str(state_dir)]
    return subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=300, check=False)


def check_the_notebooks_run(checkout: Path) -> None:
    """notebooks/*.ipynb (outputs stripped in git) execute top to bottom on the demo's state, in one kernel: started
    in a folder of the checkout (a notebook finds the checkout as mlops does, by its cdk.json) that holds no package
    a notebook imports (the checkout's config/ holds only data files)."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    (checkout / "notebook-work").mkdir()
    kernel = KernelManager(kernel_name="python3")
    kernel.start_kernel(cwd=str(checkout / "notebook-work"))
    try:
        for notebook in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
            document = nbformat.read(notebook, as_version=4)
            code = [cell for cell in document.cells if cell.cell_type == "code"]
            assert code and all(not cell.outputs and cell.execution_count is None for cell in code), notebook.name
            NotebookClient(document, km=kernel, timeout=300).execute()
    finally:
        kernel.shutdown_kernel(now=True)
