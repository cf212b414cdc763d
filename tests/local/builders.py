"""Small hand-written pipeline definitions for the local engine's tests, the tiny step scripts they run, and how a test
waits for (and looks at) the processes a run starts.

The step code is kept in the local artifacts bucket (any s3:// code URI resolves through the local buckets, not only
CDK assets), so each run takes a fraction of a second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipeline_defs.local import RunResult

CODE_URI = "s3://local-artifacts/code/report.py"
TRAINING_CODE_URI = "s3://local-artifacts/code/fit.tar.gz"
REPORT_SCRIPT = """
import json, os, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if args.get("--fail") == "true":
    print("some progress", flush=True)
    print("error: asked to fail", file=sys.stderr)
    sys.exit(3)
inputs = sorted(str(p.relative_to(args["--input-dir"])) for p in Path(args["--input-dir"]).rglob("*") if p.is_file()) \
    if "--input-dir" in args else []
out = Path(args["--output-dir"])
report = {"score": float(args.get("--score", "0.5")), "inputs": inputs, "mode": os.environ.get("MODE"),
          "registry": [os.environ.get("REGISTRY_BACKEND"), os.environ.get("LOCAL_REGISTRY_DIR")]}
if args.get("--write-report", "true") == "true":
    (out / "report.json").write_text(json.dumps(report))
(out / "data.csv").write_text("a,b\\n1,2\\n")
"""
FIT_SCRIPT = """
import json, os, sys
model_dir = os.environ["SM_MODEL_DIR"]
record = {"args": sys.argv[1:], "channels": json.loads(os.environ["SM_CHANNELS"]),
          "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])), "hp": os.environ["SM_HP_ALPHA"]}
open(os.path.join(model_dir, "model.json"), "w").write(json.dumps(record))
print("loss=0.50")
print("loss=0.25")
"""
EXPIRE = "PT1H"


def output_uri(step: str, output: str) -> dict:
    values = ["s3://local-artifacts/runs", {"Get": "Execution.PipelineExecutionId"}, step, output]
    return {"Std:Join": {"On": "/", "Values": values}}


def processing(
    name: str,
    *arguments,
    inputs: dict | None = None,
    outputs=("out",),
    report: bool = True,
    cache: bool = True,
    environment: dict | None = None,
    instance_type: str = "ml.m5.large",
    **extra,
) -> dict:
    step_inputs = [
        {"InputName": input_name, "S3Input": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/input/{input_name}"}}
        for input_name, uri in {**(inputs or {}), "code": CODE_URI}.items()
    ]
    step = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": instance_type, "InstanceCount": 1}},
            "AppSpecification": {
                "ImageUri": "sklearn",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/report.py"],
                "ContainerArguments": ["--output-dir", f"/opt/ml/processing/output/{outputs[0]}", *arguments],
            },
            "ProcessingInputs": step_inputs,
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": output,
                        "S3Output": {
                            "S3Uri": output_uri(name, output),
                            "LocalPath": f"/opt/ml/processing/output/{output}",
                        },
                    }
                    for output in outputs
                ]
            },
            "Environment": environment or {},
            "Tags": [{"Key": "experiment-id", "Value": {"Get": "Parameters.ExperimentId"}}],
        },
        **extra,
    }
    if report:
        step["PropertyFiles"] = [{"PropertyFileName": "Report", "OutputName": outputs[0], "FilePath": "report.json"}]
    if cache:
        step["CacheConfig"] = {"Enabled": True, "ExpireAfter": EXPIRE}
    return step


def score_of(step: str, path: str = "score") -> dict:
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.Report"}, "Path": path}}


def pipeline(*steps: dict, parameters: list | None = None) -> dict:
    declared = [{"Name": "ExperimentId", "Type": "String", "DefaultValue": "exp"}]
    return {"Version": "2020-12-01", "Parameters": declared + (parameters or []), "Steps": list(steps)}


def gate(left: dict, threshold, if_steps: list, else_steps: list) -> dict:
    conditions = [{"Type": "GreaterThanOrEqualTo", "LeftValue": left, "RightValue": threshold}]
    return {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {"Conditions": conditions, "IfSteps": if_steps, "ElseSteps": else_steps},
    }


def fail(message_values: list) -> dict:
    return {
        "Name": "Stop",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": message_values}}},
    }


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def read_report(state_dir: Path, result: RunResult, step: str) -> dict:
    uri = result.step(step).outputs["out"]
    return json.loads((state_dir / "s3" / uri[len("s3://") :] / "report.json").read_text())


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
