"""The notebook API: a run's data and reports, registered models, and the pipeline's own gate, from a notebook.

    from mlops.workspace import Workspace
    ws = Workspace.local(".local/demo")      # or Workspace.aws("dev"): the same methods on a deployed environment
    ws.executions()                          # the training executions, newest first
    run = ws.execution("latest")
    run.slices().train.head()                # train / validation / test DataFrames, as the steps read them
    run.report("Evaluate", "evaluation", "evaluation.json")
    model = ws.load_model(1)                 # a registered version's fitted model
    judged = ws.evaluate(candidate, on=run)  # an estimator, a model.tar.gz or the test slice's scores
    run.frame("Score", "scored")             # a step's CSV output as a DataFrame

`evaluate` judges the candidate exactly as `mlops experiment run` does (mlops/experiment.py): the execution's Evaluate
step, as it ran, compares it with the same incumbent on the same rows, and the training definition's gate gives the
verdict. An estimator is scored here, in the notebook's Python, and crosses to the step runtime as scores: a model
pickled with this kernel's library versions may not load in the image's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from config import EnvironmentConfig, load_config
from mlops.common import project_root
from mlops.executions import started_at
from mlops.experiment import Judgement, judge_local
from mlops.local import read_assembly
from mlops.report.local import find_execution, local_path
from pipeline_defs.local import LocalModelRegistry, LocalS3
from pipeline_defs.packaging import STEPS_DIR

SCORE_COLUMN = "churn_probability"


def step_script(name: str) -> ModuleType:
    """A step script of this repository as a module (its own reading of slices, models and reports)."""
    import importlib.util
    import sys

    module_name = f"step_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, STEPS_DIR / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


class ModelNotLoadable(Exception):
    """A registered model that this Python's libraries cannot unpickle."""


class Workspace:
    """Local state (`mlops demo`, `mlops run --local`): executions, their outputs, the registry."""

    def __init__(self, state_dir: Path, config: EnvironmentConfig, assembly: Path) -> None:
        self.state_dir, self.config, self.assembly = state_dir, config, assembly
        self.s3 = LocalS3(state_dir / "s3")

    @classmethod
    def local(cls, state_dir: str | Path = ".local", env: str = "dev", assembly: str | Path | None = None) -> Workspace:
        root = project_root()
        state = Path(state_dir) if Path(state_dir).is_absolute() else root / state_dir
        if not state.is_dir():
            raise FileNotFoundError(f"no local state at {state}: run `mlops demo` (or mlops run --local) first")
        return cls(state, load_config(env), Path(assembly) if assembly else root / "cdk.out")

    @classmethod
    def aws(
        cls, env: str = "dev", cache_dir: str | Path | None = None, assembly: str | Path | None = None
    ) -> Workspace:
        """A deployed environment (mlops/workspace_aws.py): its executions, their steps' outputs (downloaded once into
        `cache_dir`, default .local/aws-<env>), its registry; the same methods as local state."""
        from mlops.workspace_aws import aws_workspace  # boto3 only when asked for

        return aws_workspace(env, cache_dir, Path(assembly) if assembly else project_root() / "cdk.out")

    def executions(self, pipeline: str = "training") -> list[dict[str, Any]]:
        """{id, status, started, metrics} of each finished execution of `pipeline`, newest first."""
        folder = self.state_dir / "executions" / self.config.pipeline_names()[pipeline]
        records = sorted(folder.glob("*/execution.json"), key=lambda path: started_at(path.parent), reverse=True)
        found = [json.loads(path.read_text()) for path in records]
        return [{key: record.get(key) for key in ("execution_id", "status", "started", "metrics")} for record in found]

    def execution(self, execution: str = "latest", pipeline: str = "training") -> ExecutionView:
        path = find_execution(self.state_dir, self.config, None if execution == "latest" else execution, pipeline)
        return ExecutionView(self, pipeline, json.loads(path.read_text()))

    def evaluate(self, candidate: Any, on: str | ExecutionView = "latest") -> Judgement:
        """`candidate` judged on a training execution (its id, "latest" or one from `execution()`)."""
        return (on if isinstance(on, ExecutionView) else self.execution(on)).evaluate(candidate)

    def package(self, version: int) -> dict[str, Any]:
        """A registered version as the registry describes it (its lineage: CustomerMetadataProperties)."""
        registry = LocalModelRegistry(self.state_dir / "registry", self.config.region)
        described: dict[str, Any] = registry.describe(self.config.model_package_group_name, version)
        return described

    def model_path(self, version: int) -> Path:
        """The model.tar.gz of a registered version."""
        return local_path(self.s3, self.package(version)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])

    def load_model(self, version: int) -> Any:
        """A registered version's fitted model, loaded as Evaluate loads it, in this Python. A model pickled by the
        step runtime's scikit-learn loads only in a kernel of the same version; elsewhere judge it by its path
        (`run.evaluate(ws.model_path(N))`), which scores it in the step runtime."""
        with tempfile.TemporaryDirectory(prefix="model-") as scratch:
            shutil.copy(self.model_path(version), Path(scratch) / "model.tar.gz")
            try:
                return step_script("evaluate").load_model(Path(scratch))[0]
            except (AttributeError, ImportError, ModuleNotFoundError, TypeError, ValueError) as error:
                raise ModelNotLoadable(
                    f"version {version} does not load in this kernel ({type(error).__name__}: {error}): it was "
                    f"pickled by the step runtime's scikit-learn; use run.evaluate(ws.model_path({version})), which "
                    "scores it there, or a kernel of the step runtime (.venv-steps)"
                ) from None


class ExecutionView:
    """One finished local execution: its record, its steps' outputs and reports, its slices, and the gate."""

    def __init__(self, workspace: Workspace, pipeline: str, record: dict[str, Any]) -> None:
        self.workspace, self.pipeline, self.record = workspace, pipeline, record
        self.id: str = record["execution_id"]
        self.parameters: dict[str, Any] = record.get("parameters", {})
        self.metrics: dict[str, float] = record.get("metrics", {})
        self.steps = [step["name"] for step in record.get("steps", [])]
        self._slices: Any = None  # read once: an execution's slices never change

    def outputs(self, step: str) -> dict[str, Path]:
        """{output name: local folder} of a step of this execution (a cache hit's: the run it reused)."""
        found = next((entry for entry in self.record.get("steps", []) if entry["name"] == step), None)
        if found is None:
            raise KeyError(f"no step {step} in execution {self.id}: it has {', '.join(self.steps)}")
        return {name: local_path(self.workspace.s3, uri) for name, uri in found.get("outputs", {}).items()}

    def frame(self, step: str, output: str) -> Any:
        """Every *.csv of a step's output as one DataFrame (in file name order), e.g. frame("Score", "scored")."""
        import pandas as pd

        files = sorted(self.outputs(step)[output].rglob("*.csv"))
        if not files:
            raise FileNotFoundError(f"output {output} of step {step} in execution {self.id} holds no *.csv file")
        return pd.concat([pd.read_csv(path) for path in files], ignore_index=True)

    def report(self, step: str, output: str, file: str) -> Any:
        """A JSON report a step wrote, e.g. report("Evaluate", "evaluation", "evaluation.json")."""
        return json.loads((self.outputs(step)[output] / file).read_text())

    def slices(self) -> Any:
        """The train, validation and test slices (features and label) as Train and Evaluate read them."""
        if self._slices is not None:
            return self._slices
        contract = json.loads((STEPS_DIR / "feature_contract.json").read_text())
        folders = {name: path for name, path in self.outputs("Preprocess").items()}
        driver = step_script("experiment")
        self._slices = driver.read_slices(step_script("train"), step_script("evaluate"), folders, contract)
        return self._slices

    def evaluate(self, candidate: Any, experiment: str | None = None) -> Judgement:
        """`candidate` (a fitted estimator, a model.tar.gz path or the test slice's scores) judged by this execution's
        Evaluate and the training gate, as `mlops experiment run` judges it; the report page is `.page`."""
        experiment = experiment or f"notebook-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        definition = read_assembly(self.workspace.assembly, self.workspace.config).definitions[
            self.workspace.config.pipeline_names()["training"]
        ]
        with tempfile.TemporaryDirectory(prefix="candidate-") as scratch:
            given = Path(scratch)
            if isinstance(candidate, str | Path) and str(candidate).endswith(".tar.gz"):
                shutil.copy(candidate, given / "model.tar.gz")
                chosen = {"model_dir": str(given)}
            else:
                test = self.slices().test
                label = json.loads((STEPS_DIR / "feature_contract.json").read_text())["label"]
                scores = step_script("experiment").candidate_scores(candidate, test, label)
                (given / "scores.csv").write_text(
                    SCORE_COLUMN + "\n" + "".join(f"{float(score)!r}\n" for score in _sequence(scores))
                )
                chosen = {"scores": str(given / "scores.csv")}
            return self._judge(chosen, experiment, definition)

    def _judge(self, candidate: dict[str, str], experiment: str, definition: dict[str, Any]) -> Judgement:
        """The prepared candidate ({"scores": CSV} | {"model_dir": DIR}) judged on this local execution."""
        return judge_local(self.workspace.state_dir, self.workspace.config, self.id, candidate, experiment, definition)


def _sequence(scores: Any) -> Sequence[float]:
    return [float(score) for score in scores]
