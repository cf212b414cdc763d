"""Stateless: the pipeline execution role, the step code assets and the unit's SageMaker pipelines."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from config import EnvironmentConfig
from pipeline_defs import contract, definitions
from pipeline_defs.contract import DeployTimeValue
from pipeline_defs.packaging import FILE_ASSETS, STEPS_DIR, write_archives
from platform_constructs.pipeline_execution_role import PipelineExecutionRole
from platform_constructs.sagemaker_pipeline import INLINE_DEFINITION_LIMIT_BYTES, SageMakerPipeline


class PipelinesStack(Stack):
    """The pipelines of one unit and the role they run with.

    From the storage stack it takes only what it uses: the data key, the two bucket names (deploy-time values
    of the definitions) and the export names of the two bucket ARNs (IAM statements with object-key wildcards).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data_key: kms.IKey,
        artifacts_bucket_name: str,
        landing_bucket_name: str,
        artifacts_bucket_arn_export: str,
        landing_bucket_arn_export: str,
        pinned_package_arn: str | None = None,
        inline_definition_limit_bytes: int = INLINE_DEFINITION_LIMIT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        code_assets = self._step_code_assets()
        self.execution_role = PipelineExecutionRole(
            self,
            "ExecutionRole",
            model_package_group_name=config.model_package_group_name,
            data_key=data_key,
            artifacts_bucket_arn_export=artifacts_bucket_arn_export,
            training_data_bucket_arn_export=landing_bucket_arn_export,
            # The eval-only pipeline also reads the unit's endpoint traffic: its capture and the labels for it.
            read_prefixes=[
                config.dataset_prefix,
                config.evaluation_data_prefix,
                config.scoring_data_prefix,
                f"{contract.GROUND_TRUTH_PREFIX}{config.endpoint_name}/",
            ],
            captured_prefixes=[f"{contract.DATA_CAPTURE_PREFIX}{config.endpoint_name}/"],
            code_objects=[(asset.s3_bucket_name, asset.s3_object_key) for asset in code_assets.values()],
            image_uri=definitions.sklearn_image_uri(config.region),
            job_name_prefix=contract.PIPELINE_JOB_PREFIX,
            artifacts_prefix=contract.ARTIFACTS_PREFIX,
        ).role
        # The Fn::Sub values of the definitions: what only CloudFormation knows at deploy time.
        self.deploy_time_values: dict[DeployTimeValue, str] = {
            DeployTimeValue.PIPELINE_ROLE_ARN: self.execution_role.role_arn,
            DeployTimeValue.DATA_KEY_ARN: data_key.key_arn,
            DeployTimeValue.ARTIFACTS_BUCKET: artifacts_bucket_name,
            DeployTimeValue.LANDING_BUCKET: landing_bucket_name,
        }
        code_uris = {name: asset.s3_object_url for name, asset in code_assets.items()}
        descriptions = {
            config.training_pipeline_name: "Preprocess, train, evaluate against the approved model, register or fail",
            config.evaluation_pipeline_name: "Evaluate the approved model on new data, check drift vs its baseline",
            config.scoring_pipeline_name: "Score a customer list by batch transform, capture, check drift, summarize",
        }
        construct_ids = {
            config.training_pipeline_name: "TrainingPipeline",
            config.evaluation_pipeline_name: "EvaluationPipeline",
            config.scoring_pipeline_name: "ScoringPipeline",
        }
        scoring_model = definitions.scoring_model_default(config, pinned_package_arn)
        self.pipelines: dict[str, SageMakerPipeline] = {}
        built = definitions.definitions_for_synth(config, code_uris, scoring_model_package=scoring_model)
        for name, definition in built.items():
            construct_id_ = construct_ids[name]
            self.pipelines[name] = SageMakerPipeline(
                self,
                construct_id_,
                pipeline_name=name,
                description=descriptions[name],
                definition=definition,
                substitutions={
                    variable: (placeholder, self.deploy_time_values[variable])
                    for variable, placeholder in definitions.PLACEHOLDERS.items()
                    if placeholder in definition
                },
                role=self.execution_role,
                # Imported by export name, so the deployment's IAM findings name the bucket exactly.
                definitions_bucket=s3.Bucket.from_bucket_arn(
                    self, f"{construct_id_}DefinitionsBucket", Fn.import_value(artifacts_bucket_arn_export)
                ),
                definitions_bucket_export=artifacts_bucket_arn_export,
                assets_bucket_name=next(iter(code_assets.values())).s3_bucket_name,
                inline_limit_bytes=inline_definition_limit_bytes,
            )
            CfnOutput(self, f"{construct_id_}Name", value=name)
        CfnOutput(self, "ExecutionRoleArn", value=self.execution_role.role_arn)

    def _step_code_assets(self) -> dict[str, s3_assets.Asset]:
        """One content-addressed asset per script, the feature contract, each source tarball and the step library's zip
        (hash = content hash)."""
        assets = {name: s3_assets.Asset(self, f"Code-{name}", path=str(STEPS_DIR / name)) for name in FILE_ASSETS}
        # The archives are staged into the cloud assembly by the Asset; the build folder can go afterwards.
        with tempfile.TemporaryDirectory() as build_dir:
            for name, path in write_archives(Path(build_dir)).items():
                assets[name] = s3_assets.Asset(self, f"Code-{name}", path=str(path))
        return assets
