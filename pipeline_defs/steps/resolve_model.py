"""Resolve-model step: finds the model package to compare against (or to re-evaluate) at run time, never at synth.

Inputs:  --group-name        the model package group (default: $MODEL_PACKAGE_GROUP_NAME)
         --model-package     a model package ARN, or `latest` (default): the latest Approved package of the group
         --no-incumbent-uri  the S3 URI reported as model_data_url when no package is found: where the pipeline
                             uploads the sentinel dir, so evaluate.py then reads the NO_INCUMBENT marker
         --no-quality-uri    the S3 URI reported as model_quality_input_uri when the version registered no model-quality
                             statistics: a prefix holding only a PLACEHOLDER, so the eval-only Evaluate reads "none"
         --require           nothing found is an error (exit 1): the eval-only pipeline needs an approved model
         --sentinel-dir      where the NO_INCUMBENT marker goes when nothing is found (default: <output-dir>/none)
         --placeholder-dir   always gets a PLACEHOLDER file: the pipeline uploads it to a fixed prefix that stands for
                             "nothing" where an input needs an S3 prefix holding an object (the eval-only pipeline's
                             default GroundTruthUri)
         $REGISTRY_BACKEND   `sagemaker` (default): the SageMaker Model Registry through boto3;
                             `local`: $LOCAL_REGISTRY_DIR/<group-name>/<version, 6 digits>.json, each file one
                             DescribeModelPackage response as JSON (timestamps as ISO 8601 strings).
Outputs: --output-dir        resolved.json {"found", "model_package_arn", "model_package_version", "model_data_url",
                             "statistics_uri", "constraints_uri", "baseline_uri", "model_quality_statistics_uri",
                             "model_quality_input_uri"}: model_data_url is the ModelDataUrl
                             of InferenceSpecification.Containers[0], the URIs are DriftCheckBaselines.ModelDataQuality.
                             Statistics / Constraints.S3Uri (null when absent) and baseline_uri is the S3 prefix that
                             holds both (null unless they share one), for a single processing input.
                             model_quality_statistics_uri is ModelMetrics.ModelQuality.Statistics.S3Uri, the evaluation
                             slice's metrics registered with the version (the AUC and class counts the eval-only
                             pipeline's drop test compares with), null ("none") when it registered none;
                             model_quality_input_uri is that URI, else --no-quality-uri (null without it).
         --sentinel-dir      NO_INCUMBENT, when nothing is found.
         --placeholder-dir   PLACEHOLDER.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# The step library: a zip in ../steplib/ in a processing job (pipeline_defs/packaging.py), installed in the repository.
sys.path[:0] = [str(path) for path in sorted(Path(__file__).resolve().parent.parent.glob("steplib/*.zip"))]
from steplib import StepError, run_step

NO_INCUMBENT = "NO_INCUMBENT"
PLACEHOLDER = "PLACEHOLDER"


class SageMakerRegistry:
    """The SageMaker Model Registry."""

    def __init__(self, client) -> None:
        self.client = client

    def latest_approved(self, group_name: str) -> dict | None:
        summaries = self._call(
            "list_model_packages",
            ModelPackageGroupName=group_name,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )["ModelPackageSummaryList"]
        return self.describe(summaries[0]["ModelPackageArn"]) if summaries else None

    def describe(self, arn: str) -> dict:
        return self._call("describe_model_package", ModelPackageName=arn)

    def _call(self, operation: str, **request) -> dict:
        try:
            return getattr(self.client, operation)(**request)
        except (BotoCoreError, ClientError) as error:
            raise StepError(f"SageMaker {operation} failed: {error}") from error


class LocalRegistry:
    """DescribeModelPackage responses stored as <root>/<group-name>/<version>.json, as the local runner keeps them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def latest_approved(self, group_name: str) -> dict | None:
        approved = [
            package
            for package in self._packages(f"{group_name}/*.json")
            if package.get("ModelApprovalStatus") == "Approved"
        ]
        return max(
            approved, key=lambda package: (created(package), package.get("ModelPackageVersion", 0)), default=None
        )

    def describe(self, arn: str) -> dict:
        for package in self._packages("*/*.json"):
            if package.get("ModelPackageArn") == arn:
                return package
        raise StepError(f"model package {arn} not found in the local registry {self.root}")

    def _packages(self, pattern: str) -> list[dict]:
        packages = []
        for path in sorted(self.root.glob(pattern)):
            try:
                packages.append(json.loads(path.read_text()))
            except json.JSONDecodeError as error:
                raise StepError(f"{path} is not valid JSON: {error}") from error
        return packages


def created(package: dict) -> datetime:
    try:
        # datetime.fromisoformat only accepts a "Z" suffix from Python 3.11 on.
        return datetime.fromisoformat(str(package["CreationTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError) as error:
        raise StepError(f"model package {package.get('ModelPackageArn')} has no valid CreationTime: {error}") from error


def registry_from_environment() -> SageMakerRegistry | LocalRegistry:
    backend = os.environ.get("REGISTRY_BACKEND", "sagemaker")
    if backend == "local":
        root = os.environ.get("LOCAL_REGISTRY_DIR")
        if not root:
            raise StepError("REGISTRY_BACKEND=local needs LOCAL_REGISTRY_DIR")
        return LocalRegistry(Path(root))
    if backend == "sagemaker":
        try:
            return SageMakerRegistry(boto3.client("sagemaker"))
        except BotoCoreError as error:
            raise StepError(f"cannot create a SageMaker client: {error}") from error
    raise StepError(f"unknown REGISTRY_BACKEND '{backend}': expected 'sagemaker' or 'local'")


def find(registry: SageMakerRegistry | LocalRegistry, group_name: str | None, model_package: str) -> dict | None:
    """The DescribeModelPackage response to use, or None when the group has no approved package yet."""
    if model_package != "latest":
        return registry.describe(model_package)
    if not group_name:
        raise StepError("--group-name (or MODEL_PACKAGE_GROUP_NAME) is required with --model-package latest")
    return registry.latest_approved(group_name)


def resolved(package: dict | None, no_incumbent_uri: str | None, no_quality_uri: str | None = None) -> dict:
    if package is None:
        return {
            "found": False,
            "model_package_arn": None,
            "model_package_version": None,
            "model_data_url": no_incumbent_uri,
            "statistics_uri": None,
            "constraints_uri": None,
            "baseline_uri": None,
            "model_quality_statistics_uri": None,
            "model_quality_input_uri": no_quality_uri,
        }
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or "ModelDataUrl" not in containers[0]:
        raise StepError(f"model package {package['ModelPackageArn']} has no ModelDataUrl in its first container")
    data_quality = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    statistics_uri = data_quality.get("Statistics", {}).get("S3Uri")
    constraints_uri = data_quality.get("Constraints", {}).get("S3Uri")
    baseline_uri = None
    if statistics_uri and constraints_uri and prefix(statistics_uri) == prefix(constraints_uri):
        baseline_uri = prefix(statistics_uri)
    quality_uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    return {
        "found": True,
        "model_package_arn": package["ModelPackageArn"],
        "model_package_version": package.get("ModelPackageVersion"),
        "model_data_url": containers[0]["ModelDataUrl"],
        "statistics_uri": statistics_uri,
        "constraints_uri": constraints_uri,
        "baseline_uri": baseline_uri,
        "model_quality_statistics_uri": quality_uri,
        "model_quality_input_uri": quality_uri or no_quality_uri,
    }


def prefix(uri: str) -> str:
    """The "folder" of an S3 object URI."""
    return uri.rsplit("/", 1)[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-name", default=os.environ.get("MODEL_PACKAGE_GROUP_NAME"))
    parser.add_argument("--model-package", default="latest", help="a model package ARN, or `latest`")
    parser.add_argument("--no-incumbent-uri")
    parser.add_argument("--no-quality-uri", help="reported as model_quality_input_uri without registered statistics")
    parser.add_argument("--require", action="store_true", help="exit 1 when no model package is found")
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output/resolved"))
    parser.add_argument("--sentinel-dir", type=Path, help="default: <output-dir>/none")
    parser.add_argument("--placeholder-dir", type=Path, help="where the PLACEHOLDER file goes (none: not written)")
    return parser.parse_args(argv)


def run(
    *,
    group_name: str | None,
    output_dir: Path,
    model_package: str = "latest",
    no_incumbent_uri: str | None = None,
    no_quality_uri: str | None = None,
    require: bool = False,
    sentinel_dir: Path | None = None,
    placeholder_dir: Path | None = None,
) -> dict[str, Any]:
    """resolved.json (and the NO_INCUMBENT marker when nothing is approved); returns resolved.json's document."""
    package = find(registry_from_environment(), group_name, model_package)
    if package is None and require:
        raise StepError(f"no Approved model package in group '{group_name}': approve one before evaluating")
    result = resolved(package, no_incumbent_uri, no_quality_uri)

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "resolved.json").write_text(json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n")
    if result["found"]:
        status = package.get("ModelApprovalStatus")
        print(f"resolved {result['model_package_arn']} ({status}): model data {result['model_data_url']}")
    else:
        marker = (sentinel_dir or output_dir / "none") / NO_INCUMBENT
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("No model package is approved in this group yet.\n")
        print(f"no Approved model package in group '{group_name}': wrote {marker}")
    print(f"wrote {output_dir / 'resolved.json'}")
    if placeholder_dir is not None:
        placeholder_dir.mkdir(parents=True, exist_ok=True)
        marker = placeholder_dir / PLACEHOLDER
        marker.write_text("Stands for 'nothing' where a pipeline input needs an object.\n")
    return result


def main(argv: list[str] | None = None) -> int:
    return run_step(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
