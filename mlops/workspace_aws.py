"""The notebook API on a deployed environment: `Workspace.aws("dev")` (mlops/workspace.py) reads AWS, not local state.

    ws = Workspace.aws("dev")                  # a cache folder: .local/aws-dev (cache_dir=...)
    ws.executions()                            # ListPipelineExecutions, every page, newest first
    run = ws.execution("latest")               # or an execution's ARN
    run.frame("Preprocess", "test")            # a step's output, downloaded once into the cache, as a DataFrame
    ws.package(3)                              # DescribeModelPackage of version 3
    ws.evaluate(candidate, on=run)             # judged by that execution's Evaluate job, as it ran

It reads what `mlops report --env`, `mlops step load --env` and `mlops registry --env` read, through the same code
(mlops/step_load_aws.py, mlops/registry.py): a step's outputs are its job's (a cache hit's: the reused job's) S3
outputs, downloaded under <cache>/<execution id>/<step>/<output>/ and kept (an execution's outputs never change).
`evaluate` loads the execution's Evaluate step as `mlops step load --env` does and then takes the local path: the step
runtime runs that Evaluate on the candidate's scores, the training definition's gate gives the verdict, and the
reports go to <cache>/experiments/<id>/. The caller needs the reads `mlops report --env` lists plus
ListPipelineExecutions, DescribeModelPackage, s3:ListBucket and kms:Decrypt with the unit's key: only a real account
confirms those (README, "Experiments").
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.aws import call, client
from mlops.common import pipeline_name
from mlops.cost.paging import execution_steps, items
from mlops.experiment import Judgement, Trial, judge
from mlops.registry import SageMakerRegistry
from mlops.step_load import LoadedStep
from mlops.step_load_aws import download, execution_arn, execution_parameters, load_from_aws, step_job
from mlops.workspace import ExecutionView, Workspace

COMPLETE = ".complete"  # written last in a downloaded output's folder: a folder without it is downloaded again


class AwsWorkspace(Workspace):
    """A deployed environment's executions, their steps' outputs (cached locally) and its registry."""

    def __init__(self, cache_dir: Path, config: EnvironmentConfig, assembly: Path) -> None:
        super().__init__(cache_dir, config, assembly)
        self.sagemaker, self.s3 = client("sagemaker", config), client("s3", config)
        self.registry = SageMakerRegistry(config)

    def executions(self, pipeline: str = "training") -> list[dict[str, Any]]:
        """{execution_id (its ARN), status, started} of each execution of `pipeline`, newest first."""
        name = pipeline_name(self.config, pipeline)
        listed = items(
            self.sagemaker,
            "list_pipeline_executions",
            "PipelineExecutionSummaries",
            f"listing the executions of {name}",
            PipelineName=name,
            SortBy="CreationTime",
            SortOrder="Descending",
        )
        return [
            {
                "execution_id": entry["PipelineExecutionArn"],
                "status": entry.get("PipelineExecutionStatus"),
                "started": entry.get("StartTime"),
            }
            for entry in listed
        ]

    def execution(self, execution: str = "latest", pipeline: str = "training") -> ExecutionView:
        arn = execution_arn(self.sagemaker, self.config, pipeline, execution)
        described = call(
            self.sagemaker.describe_pipeline_execution,
            f"describing {arn}",
            f"no pipeline execution {arn} in {self.config.region} (check the ARN and the environment)",
            PipelineExecutionArn=arn,
        )
        steps = execution_steps(self.sagemaker, arn, SortOrder="Ascending")
        record = {
            "execution_id": arn,
            "status": described.get("PipelineExecutionStatus"),
            "parameters": execution_parameters(self.sagemaker, arn),
            "steps": [{"name": step["StepName"], "status": step.get("StepStatus")} for step in steps],
        }
        return AwsExecutionView(self, pipeline, record, steps)

    def package(self, version: int) -> dict[str, Any]:
        """DescribeModelPackage of a registered version (its lineage: CustomerMetadataProperties)."""
        return self.registry.describe(self.config.model_package_group_name, version)

    def model_path(self, version: int) -> Path:
        """The model.tar.gz of a registered version, downloaded once into the cache."""
        uri = self.package(version)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        return cached(self, self.state_dir / "models" / str(version), uri) / Path(uri).name


class AwsExecutionView(ExecutionView):
    """One execution in AWS: its steps' outputs (downloaded on first use), its slices, and the gate."""

    def __init__(
        self, workspace: AwsWorkspace, pipeline: str, record: dict[str, Any], listed: list[dict[str, Any]]
    ) -> None:
        super().__init__(workspace, pipeline, record)
        self.aws, self.listed = workspace, listed
        self.name = self.id.rsplit("/", 1)[-1]
        self._outputs: dict[str, dict[str, Path]] = {}  # described and downloaded once per step

    def outputs(self, step: str) -> dict[str, Path]:
        """{output name: local folder} of a step: its job's S3 outputs, downloaded into the cache on first use."""
        if step not in self._outputs:
            self._outputs[step] = self._download(step)
        return self._outputs[step]

    def _download(self, step: str) -> dict[str, Path]:
        step_type, job = step_job(self.aws.sagemaker, self.id, step, self.listed)
        if step_type == "Training":
            uris = {"model": str(job["ModelArtifacts"]["S3ModelArtifacts"])}
        else:
            outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
            uris = {entry["OutputName"]: entry["S3Output"]["S3Uri"] for entry in outputs if "S3Output" in entry}
        folder = self.aws.state_dir / self.name / step
        return {name: cached(self.aws, folder / name, uri) for name, uri in uris.items()}

    def _judge(self, candidate: dict[str, str], experiment: str, definition: dict[str, Any]) -> Judgement:
        """The prepared candidate judged by this execution's Evaluate, loaded as `mlops step load --env` loads it."""
        config = self.aws.config

        def load_evaluate(folder: Path) -> LoadedStep:
            return load_from_aws(config, "training", self.id, "Evaluate", folder)

        trial = Trial(self.aws.state_dir, experiment, self.name, candidate, self.parameters, definition)
        return judge(trial, load_evaluate, {})


def cached(workspace: AwsWorkspace, folder: Path, uri: str) -> Path:
    """`folder` holding every object under `uri`, downloaded unless an earlier download completed there."""
    if (folder / COMPLETE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Downloaded beside it and moved in when complete: an interrupted download leaves nothing half-read in place.
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-") as scratch:
        download(workspace.s3, {Path(scratch): uri}, progress=lambda line: print(line, end="", file=sys.stderr))
        (Path(scratch) / COMPLETE).touch()
        if folder.exists():
            shutil.rmtree(folder)
        Path(scratch).rename(folder)
    return folder


def aws_workspace(env: str, cache_dir: str | Path | None, assembly: Path) -> AwsWorkspace:
    from config import load_config
    from mlops.common import project_root

    config = load_config(env)
    folder = Path(cache_dir) if cache_dir else project_root() / ".local" / f"aws-{env}"
    if not folder.is_absolute():
        folder = project_root() / folder
    folder.mkdir(parents=True, exist_ok=True)
    return AwsWorkspace(folder, config, assembly)
