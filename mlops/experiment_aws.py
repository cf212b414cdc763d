"""`mlops experiment run FILE.py:FUNCTION --on EXECUTION --env E [--instance-type T]`: the experiment as a processing
job of the image, role, network and key the execution's Evaluate job ran with, never as a pipeline step.

The job mounts what that Evaluate job read (its code and step library, the test slice, the incumbent, the contract)
where Evaluate had it, plus the execution's train and validation slices and the experiment's code (the driver
pipeline_defs/steps/experiment.py, train.py's slice reader, the experiment file and the Evaluate's arguments), uploaded
under experiments/<id>/ of the artifacts bucket with the unit's KMS key. It is tagged with the unit's tags and
`experiment-id`, so the bill (Cost Explorer, `mlops cost experiment ID --reconcile`) counts it with the experiment.
Its reports land in experiments/<id>/output/; `mlops report` does not read them (they belong to no execution).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from config import EnvironmentConfig
from mlops.aws import call, client
from mlops.cost.paging import execution_steps
from mlops.step_load import job_arguments
from mlops.step_load_aws import execution_arn, step_job
from pipeline_defs.contract import EXPERIMENT_TAG, PROCESSING_ROOT
from pipeline_defs.local.s3 import split_uri
from pipeline_defs.local.step_runtime import PROJECT_ROOT

STEPS = PROJECT_ROOT / "pipeline_defs" / "steps"
CODE = f"{PROCESSING_ROOT}/input/experiment"
OUTPUT = f"{PROCESSING_ROOT}/output/experiment"


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


def submit(args: argparse.Namespace, config: EnvironmentConfig, file: Path, name: str, experiment: str) -> int:
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
    summary = {
        "experiment": experiment,
        "job": started["ProcessingJobArn"],
        "reports": f"s3://{bucket}/{prefix}/output/",
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"started {job} for experiment {experiment} on {arn}: its reports land in {summary['reports']} "
            f"(evaluation.json says the interval and the gate's numbers; tagged {EXPERIMENT_TAG}={experiment})"
        )
    return 0
