"""Stateless: the pipeline execution role, the step code assets and both SageMaker pipelines."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from config import EnvironmentConfig
from pipeline_defs import definitions
from pipeline_defs.packaging import PROCESSING_SCRIPTS, STEPS_DIR, write_tarballs
from pipeline_defs.sdk import sklearn_image_uri
from platform_constructs.pipeline_execution_role import PipelineExecutionRole
from platform_constructs.sagemaker_pipeline import INLINE_DEFINITION_LIMIT_BYTES, SageMakerPipeline
from stacks.storage_stack import StorageStack


class PipelinesStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageStack,
        inline_definition_limit_bytes: int = INLINE_DEFINITION_LIMIT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        code_assets = self._step_code_assets()
        self.execution_role = PipelineExecutionRole(
            self,
            "ExecutionRole",
            model_package_group_name=config.model_package_group_name,
            data_key=storage.data_key,
            artifacts_bucket_arn_export=storage.bucket_arn_exports["artifacts"],
            training_data_bucket_arn_export=storage.bucket_arn_exports["training-data"],
            read_prefixes=[config.dataset_prefix, config.evaluation_data_prefix],
            code_objects=[(asset.s3_bucket_name, asset.s3_object_key) for asset in code_assets.values()],
            image_repository_arn=_repository_arn(sklearn_image_uri(config.region), self.partition),
        ).role
        values = {
            "PipelineRoleArn": self.execution_role.role_arn,
            "DataKeyArn": storage.data_key.key_arn,
            "ArtifactsBucket": storage.artifacts_bucket.bucket_name,
            "LandingBucket": storage.training_data_bucket.bucket_name,
        }
        code_uris = {name: asset.s3_object_url for name, asset in code_assets.items()}
        descriptions = {
            config.training_pipeline_name: "Preprocess, train, evaluate against the approved model, register or fail",
            config.evaluation_pipeline_name: "Evaluate the approved model on new data, check drift vs its baseline",
        }
        self.pipelines: dict[str, SageMakerPipeline] = {}
        for name, definition in definitions.build_definitions(config, code_uris).items():
            construct_id_ = "TrainingPipeline" if name == config.training_pipeline_name else "EvaluationPipeline"
            self.pipelines[name] = SageMakerPipeline(
                self,
                construct_id_,
                pipeline_name=name,
                description=descriptions[name],
                definition=definition,
                substitutions={
                    variable: (placeholder, values[variable])
                    for variable, placeholder in definitions.PLACEHOLDERS.items()
                    if placeholder in definition
                },
                role=self.execution_role,
                # Imported by export name, so the deployment's IAM findings name the bucket exactly.
                definitions_bucket=s3.Bucket.from_bucket_arn(
                    self, f"{construct_id_}DefinitionsBucket", Fn.import_value(storage.bucket_arn_exports["artifacts"])
                ),
                definitions_bucket_export=storage.bucket_arn_exports["artifacts"],
                assets_bucket_name=next(iter(code_assets.values())).s3_bucket_name,
                inline_limit_bytes=inline_definition_limit_bytes,
            )
            CfnOutput(self, f"{construct_id_}Name", value=name)
        CfnOutput(self, "ExecutionRoleArn", value=self.execution_role.role_arn)

    def _step_code_assets(self) -> dict[str, s3_assets.Asset]:
        """One content-addressed asset per script and per source tarball (asset hash = content hash)."""
        assets = {
            script: s3_assets.Asset(self, f"Code-{script}", path=str(STEPS_DIR / script))
            for script in PROCESSING_SCRIPTS
        }
        # The tarballs are staged into the cloud assembly by the Asset; the build folder can go afterwards.
        with tempfile.TemporaryDirectory() as build_dir:
            for name, path in write_tarballs(Path(build_dir)).items():
                assets[name] = s3_assets.Asset(self, f"Code-{name}", path=str(path))
        return assets


def _repository_arn(image_uri: str, partition: str) -> str:
    """arn of `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`."""
    registry, repository = image_uri.split(":")[0].split("/", 1)
    account, _, _, region = registry.split(".")[:4]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"
