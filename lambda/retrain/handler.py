"""Start training on drift only when it can help; otherwise say what is needed.

Invoked by EventBridge for (a) a CloudWatch alarm of the unit's monitoring entering ALARM (its data-quality drift and
model-quality alarms: the metric namespaces below) and (b) an eval-only or scoring execution that failed with drift
violations (its FailureReason says `drift violations N`, N > 0). Then:
- the newest complete dataset is the newest `<DATASET_PREFIX><id>/<MARKER_NAME>` in the landing bucket;
- the incumbent is the latest Approved version of MODEL_PACKAGE_GROUP, trained on its lineage's `dataset`
  (the InputDataUri training recorded);
- training starts on the newest dataset only when that dataset is newer than the incumbent's (its marker landed later)
  and no training execution is executing; the run's display name is derived from the event (the alarm transition or
  the failed execution), so a repeated event finds its run and starts nothing (and the same ClientRequestToken);
- otherwise one message goes to TOPIC_ARN: "drift detected; needs fresh labelled data", with the evidence.
Returns {"status": "started" | "duplicate" | "notified" | "ignored", ...}; SageMaker and S3 errors are raised (Lambda
retries the event). Configuration (read at cold start): TRAINING_PIPELINE, LANDING_BUCKET, DATASET_PREFIX,
MARKER_NAME, MODEL_PACKAGE_GROUP, TOPIC_ARN.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime
from typing import Any

import boto3

# The namespaces Model Monitor publishes drift (data-metrics) and model quality (model-metrics) to.
MONITORED_NAMESPACES = ("aws/sagemaker/Endpoints/data-metrics", "aws/sagemaker/Endpoints/model-metrics")
DRIFT_FAILURE = re.compile(r"drift violations (\d+)")
SUBJECT = "drift detected; needs fresh labelled data"
ACTIVE = ("Executing", "Stopping")
RECENT_EXECUTIONS = 50
SETTINGS = ("TRAINING_PIPELINE", "LANDING_BUCKET", "DATASET_PREFIX", "MARKER_NAME", "MODEL_PACKAGE_GROUP", "TOPIC_ARN")

_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """The service's client, made on first use; tests put stubbed clients here."""
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


def settings(environ: Any = os.environ) -> dict[str, str]:
    missing = [name for name in SETTINGS if not environ.get(name)]
    if missing:
        raise RuntimeError(f"retrain is misconfigured: {', '.join(missing)} not set")
    return {name: environ[name] for name in SETTINGS}


def drift_evidence(event: dict[str, Any]) -> tuple[str, str] | None:
    """(identity of this transition or failure, what it says) of a drift event; None for any other event."""
    detail = event.get("detail") or {}
    if event.get("detail-type") == "CloudWatch Alarm State Change":
        state = detail.get("state") or {}
        metrics = (detail.get("configuration") or {}).get("metrics") or []
        namespaces = {((m.get("metricStat") or {}).get("metric") or {}).get("namespace") for m in metrics}
        if state.get("value") != "ALARM" or not namespaces & set(MONITORED_NAMESPACES):
            return None
        name = detail.get("alarmName", "?")
        return f"alarm:{name}:{state.get('timestamp', '')}", f"alarm {name}: {state.get('reason', '')}"
    if event.get("detail-type") == "SageMaker Model Building Pipeline Execution Status Change":
        if detail.get("currentPipelineExecutionStatus") != "Failed":
            return None
        arn = detail.get("pipelineExecutionArn", "")
        reason = client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn).get("FailureReason", "")
        found = DRIFT_FAILURE.search(reason)
        if not found or int(found.group(1)) == 0:
            return None
        return f"execution:{arn}", f"execution {arn} failed: {reason}"
    return None


def datasets(config: dict[str, str]) -> dict[str, datetime]:
    """{folder URI: when its marker landed} of every complete dataset, one folder below the prefix."""
    prefix, marker = config["DATASET_PREFIX"], config["MARKER_NAME"]
    found: dict[str, datetime] = {}
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=config["LANDING_BUCKET"], Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            folder, _, name = item["Key"][len(prefix) :].rpartition("/")
            if name == marker and folder and "/" not in folder:
                found[f"s3://{config['LANDING_BUCKET']}/{prefix}{folder}/"] = item["LastModified"]
    return found


def incumbent(config: dict[str, str]) -> dict[str, Any] | None:
    """The latest Approved version (DescribeModelPackage), None when there is none."""
    sagemaker = client("sagemaker")
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=config["MODEL_PACKAGE_GROUP"],
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not summaries:
        return None
    package: dict[str, Any] = sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])
    return package


def training_runs(config: dict[str, str]) -> list[dict[str, Any]]:
    return client("sagemaker").list_pipeline_executions(
        PipelineName=config["TRAINING_PIPELINE"],
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=RECENT_EXECUTIONS,
    )["PipelineExecutionSummaries"]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    found = drift_evidence(event)
    if found is None:
        return {"status": "ignored"}
    identity, evidence = found
    digest = hashlib.sha256(identity.encode()).hexdigest()
    display_name = f"retrain-{digest[:16]}"
    runs = training_runs(config)
    if any(run.get("PipelineExecutionDisplayName") == display_name for run in runs):
        return {"status": "duplicate", "display_name": display_name}
    landed = datasets(config)
    newest = max(landed.items(), key=lambda item: item[1], default=None)
    package = incumbent(config)
    incumbent_uri = (package.get("CustomerMetadataProperties") or {}).get("dataset") if package else None
    # The incumbent's dataset landed when its marker did; a marker since removed counts as landed with the version.
    incumbent_landed = landed.get(incumbent_uri or "", package.get("CreationTime") if package else None)
    executing = [run["PipelineExecutionArn"] for run in runs if run.get("PipelineExecutionStatus") in ACTIVE]
    newer = (
        newest is not None and newest[0] != incumbent_uri and (incumbent_landed is None or newest[1] > incumbent_landed)
    )
    if newer and not executing:
        assert newest is not None
        dataset_id = newest[0].rstrip("/").rsplit("/", 1)[1]
        arn = client("sagemaker").start_pipeline_execution(
            PipelineName=config["TRAINING_PIPELINE"],
            PipelineExecutionDisplayName=display_name,
            PipelineExecutionDescription=f"Retraining on drift: {evidence}"[:3072],
            PipelineParameters=[
                {"Name": "InputDataUri", "Value": newest[0]},
                {"Name": "ExperimentId", "Value": f"retrain-{dataset_id}"[:128]},
            ],
            ClientRequestToken=digest[:64],
        )["PipelineExecutionArn"]
        return {"status": "started", "execution_arn": arn, "dataset": newest[0]}
    why = (
        f"training execution(s) already running: {', '.join(executing)}"
        if executing and newer
        else f"no dataset newer than the incumbent's ({incumbent_uri or 'no approved version'})"
    )
    message = {
        "subject": SUBJECT,
        "evidence": evidence,
        "newest_dataset": newest[0] if newest else None,
        "incumbent_dataset": incumbent_uri,
        "no_training_started_because": why,
    }
    client("sns").publish(TopicArn=config["TOPIC_ARN"], Subject=SUBJECT, Message=json.dumps(message, indent=1))
    return {"status": "notified", "reason": why}
