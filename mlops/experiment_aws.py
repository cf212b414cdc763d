"""`mlops experiment run FILE.py:FUNCTION --on EXECUTION --env E [--instance-type T]`: the experiment as a processing
job of the image, role, network and key the execution's Evaluate job ran with, never as a pipeline step.

The job mounts what that Evaluate job read (its code and step library, the test slice, the incumbent, the contract)
where Evaluate had it, plus the execution's train and validation slices and the experiment's code (the driver
pipeline_defs/steps/experiment.py, train.py's slice reader, the experiment file and the Evaluate's arguments), uploaded
under experiments/<id>/ of the artifacts bucket with the unit's KMS key. It is tagged with the unit's tags and
`experiment-id`, so the bill (Cost Explorer, `mlops cost experiment ID --reconcile`) counts it with the experiment.
Its reports land in experiments/<id>/output/; `mlops report` does not read them (they belong to no execution).

Unless --no-wait, the command then polls DescribeProcessingJob (a progress line on stderr) until the job ends, downloads
its reports and judges them as the local path does (mlops/experiment.py, `record_experiment`): the training
definition's own gate with the execution's parameters (ListPipelineParametersForExecution), the same printed verdict
and the same files in <state dir>/experiments/<id>/. A job that fails or is stopped is one line with its FailureReason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, call, client
from mlops.common import pipeline_name
from mlops.cost.paging import execution_steps
from mlops.experiment import Judgement, Trial, new_experiment_folder, record_experiment
from mlops.local import read_assembly
from mlops.step_load import job_arguments
from mlops.step_load_aws import download, execution_arn, execution_parameters, step_job
from pipeline_defs.contract import EXPERIMENT_TAG, PROCESSING_ROOT
from pipeline_defs.local.s3 import split_uri
from pipeline_defs.local.step_runtime import PROJECT_ROOT

STEPS = PROJECT_ROOT / "pipeline_defs" / "steps"
CODE = f"{PROCESSING_ROOT}/input/experiment"
OUTPUT = f"{PROCESSING_ROOT}/output/experiment"
POLL_SECONDS = 30.0  # between two DescribeProcessingJob calls while the job runs (a job takes minutes)
RUNNING = ("InProgress", "Stopping")


def processing_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def submit(
    args: argparse.Namespace, config: EnvironmentConfig, file: Path, name: str, experiment: str
) -> Judgement | None:
    """Start the experiment's job; unless --no-wait, wait for it and return its judgement (None: not waited for)."""
    # The gate and the reports' folder are checked before anything is started: no assembly or a used id, no job.
    definition = None
    if not args.no_wait:
        definition = read_assembly(args.assembly, config).definitions[pipeline_name(config, "training")]
        new_experiment_folder(args.state_dir, experiment)
    sagemaker, s3 = client("sagemaker", config), client("s3", config)
    arn = execution_arn(sagemaker, config, "training", args.on)
    listed = execution_steps(sagemaker, arn)
    _, evaluate = step_job(sagemaker, arn, "Evaluate", listed)
    _, preprocess = step_job(sagemaker, arn, "Preprocess", listed)
    slices = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in preprocess["ProcessingOutputConfig"]["Outputs"]}
    output_config = evaluate["ProcessingOutputConfig"]
    bucket = split_uri(output_config["Outputs"][0]["S3Output"]["S3Uri"])[0]
    prefix = f"experiments/{experiment}"
    script, argv, _ = job_arguments("Processing", evaluate)
    loaded = {"execution": arn, "step": "Evaluate", "script": script, "argv": argv}
    code = {
        "experiment.py": (STEPS / "experiment.py").read_bytes(),
        "train.py": (STEPS / "train.py").read_bytes(),
        file.name: file.read_bytes(),
        "loaded.json": json.dumps(loaded, indent=2).encode(),
    }
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": output_config["KmsKeyId"]}
    for key, body in code.items():
        call(s3.put_object, f"uploading {key}", Bucket=bucket, Key=f"{prefix}/code/{key}", Body=body, **encryption)
    inputs = [item for item in evaluate["ProcessingInputs"] if item["InputName"] != "model"]  # the candidate is ours
    inputs += [
        processing_input("experiment", f"s3://{bucket}/{prefix}/code/", CODE),
        processing_input("train", slices["train"], f"{PROCESSING_ROOT}/input/train"),
        processing_input("validation", slices["validation"], f"{PROCESSING_ROOT}/input/validation"),
    ]
    resources = evaluate["ProcessingResources"]["ClusterConfig"]
    job = f"experiment-{experiment}"[:63].rstrip("-")
    request = {
        "ProcessingJobName": job,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "experiment",
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/{prefix}/output",
                        "LocalPath": OUTPUT,
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": output_config["KmsKeyId"],
        },
        "ProcessingResources": {"ClusterConfig": {**resources, "InstanceCount": 1, "InstanceType": args.instance_type}},
        "StoppingCondition": evaluate.get("StoppingCondition", {"MaxRuntimeInSeconds": 3600}),
        "AppSpecification": {
            "ImageUri": evaluate["AppSpecification"]["ImageUri"],
            "ContainerEntrypoint": ["python3", f"{CODE}/experiment.py"],
            "ContainerArguments": [
                f"--evaluate-folder={PROCESSING_ROOT}",
                f"--loaded={CODE}/loaded.json",
                f"--function={CODE}/{file.name}:{name}",
                f"--train={PROCESSING_ROOT}/input/train",
                f"--validation={PROCESSING_ROOT}/input/validation",
                f"--train-script={CODE}/train.py",
                f"--output-dir={OUTPUT}",
            ],
        },
        "Environment": evaluate.get("Environment", {}),
        "RoleArn": evaluate["RoleArn"],
        "Tags": [
            *({"Key": key, "Value": value} for key, value in sorted(config.tags.items())),
            {"Key": EXPERIMENT_TAG, "Value": experiment},
        ],
        **({"NetworkConfig": evaluate["NetworkConfig"]} if evaluate.get("NetworkConfig") else {}),
    }
    started = call(sagemaker.create_processing_job, f"starting processing job {job}", **request)
    reports = f"s3://{bucket}/{prefix}/output/"
    if definition is None:
        if args.json:
            print(
                json.dumps({"experiment": experiment, "job": started["ProcessingJobArn"], "reports": reports}, indent=2)
            )
        else:
            print(
                f"started {job} for experiment {experiment} on {arn}: its reports land in {reports} "
                f"(evaluation.json says the interval and the gate's numbers; tagged {EXPERIMENT_TAG}={experiment})"
            )
        return None
    print(f"started {job} for experiment {experiment} on {arn} (tagged {EXPERIMENT_TAG}={experiment})", file=sys.stderr)
    wait_for_job(sagemaker, job)
    candidate = {"function": f"{file.name}:{name}", "job": str(started["ProcessingJobArn"])}
    return judge_job(sagemaker, s3, args.state_dir, arn, reports, experiment, candidate, definition)


def wait_for_job(sagemaker: Any, job: str) -> None:
    """Poll DescribeProcessingJob until the job ends; AwsCallFailed with its FailureReason unless it Completed."""
    began = time.monotonic()
    while True:
        described = call(sagemaker.describe_processing_job, f"describing {job}", ProcessingJobName=job)
        status = str(described.get("ProcessingJobStatus", "?"))
        waited = int(time.monotonic() - began)
        print(
            f"\rprocessing job {job}: {status} ({waited // 60}m{waited % 60:02d}s)", end="", file=sys.stderr, flush=True
        )
        if status not in RUNNING:
            print(file=sys.stderr)
            break
        time.sleep(POLL_SECONDS)
    if status != "Completed":
        reason = described.get("FailureReason") or described.get("ExitMessage") or "no reason given"
        raise AwsCallFailed(f"processing job {job} {status}: {reason}")


def judge_job(
    sagemaker: Any,
    s3: Any,
    state_dir: Path,
    arn: str,
    reports: str,
    experiment: str,
    candidate: Mapping[str, str],
    definition: Mapping[str, Any],
) -> Judgement:
    """The job's reports, downloaded, judged by the training gate with the execution's parameters, as locally."""
    parameters = execution_parameters(sagemaker, arn)
    state_dir.mkdir(parents=True, exist_ok=True)  # with --env the state dir only holds the experiment's reports

    def fetch_reports(work: Path) -> None:
        download(s3, {work / "evaluation": reports}, progress=lambda line: print(line, end="", file=sys.stderr))

    execution = arn.rsplit("/", 1)[-1]
    return record_experiment(Trial(state_dir, experiment, execution, candidate, parameters, definition), fetch_reports)
