"""Model Monitor on one endpoint: a data-quality schedule and, with a model-quality baseline, a model-quality schedule.

The data-quality job is defined inline on its schedule (CloudFormation updates a schedule in place). Model quality
has no inline form: its job definition is a resource of its own whose every property is create-only, so any change
replaces it - and a replacement under the same name fails. It is therefore named by a hash of its content: a change
creates a new definition next to the old one, the schedule (fixed name, updated in place) moves to it, and
CloudFormation deletes the old one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnTag, Stack
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IDependable

# Where the analyzer reads the endpoint's data and writes its reports inside the container (the SDK's defaults).
ENDPOINT_INPUT_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH = "/opt/ml/processing/output"
# An hour or a day of captured CSV rows of a small tabular model fits easily; SageMaker's minimum is 1 GB.
VOLUME_SIZE_GB = 20
# The endpoint answers the churn probability as the only CSV column: index 0 of the captured output.
PROBABILITY_ATTRIBUTE = "0"
JOB_DEFINITION_NAME_LIMIT = 63
_DIGEST_LENGTH = 12

_Schedule = sagemaker.CfnMonitoringSchedule
_ModelQuality = sagemaker.CfnModelQualityJobDefinition


@dataclass(frozen=True, kw_only=True)
class MonitoringJob:
    """What the jobs of both monitors share."""

    endpoint_name: str
    image_uri: str
    role_arn: str
    # s3://<artifacts bucket>/monitoring: SageMaker appends <endpoint>/<schedule>/yyyy/mm/dd/hh/.
    output_uri: str
    data_key_arn: str
    instance_type: str
    max_runtime_seconds: int
    schedule_expression: str
    # Hours between executions: each data-quality run analyses the capture of exactly that period.
    interval_hours: int


@dataclass(frozen=True, kw_only=True)
class ModelQualitySettings:
    problem_type: str
    probability_threshold: float
    start_offset: str
    end_offset: str
    # s3://<landing bucket>/ground-truth/<endpoint>: labels under yyyy/mm/dd/hh/ below it.
    ground_truth_uri: str
    constraints_uri: str


class ModelMonitorSchedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job: MonitoringJob,
        data_quality_schedule_name: str,
        statistics_uri: str,
        constraints_uri: str,
        model_quality: ModelQualitySettings | None,
        model_quality_schedule_name: str,
        name_prefix: str,
        tags: Mapping[str, str],
        role_policy: IDependable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.job = job
        self.data_quality = _Schedule(
            self,
            "DataQualitySchedule",
            monitoring_schedule_name=data_quality_schedule_name,
            endpoint_name=job.endpoint_name,
            monitoring_schedule_config=_Schedule.MonitoringScheduleConfigProperty(
                monitoring_type="DataQuality",
                schedule_config=_Schedule.ScheduleConfigProperty(
                    schedule_expression=job.schedule_expression,
                    # Without a window each run reads only the last hour: a daily run would skip 23 hours.
                    data_analysis_start_time=f"-PT{job.interval_hours}H",
                    data_analysis_end_time="-PT0H",
                ),
                monitoring_job_definition=self._data_quality_job(statistics_uri, constraints_uri),
            ),
        )
        self.data_quality.node.add_dependency(role_policy)
        self.model_quality_definition: _ModelQuality | None = None
        self.model_quality: _Schedule | None = None
        if model_quality is not None:
            self.model_quality_definition = self._model_quality_definition(model_quality, name_prefix, tags)
            self.model_quality_definition.node.add_dependency(role_policy)
            self.model_quality = _Schedule(
                self,
                "ModelQualitySchedule",
                monitoring_schedule_name=model_quality_schedule_name,
                endpoint_name=job.endpoint_name,
                monitoring_schedule_config=_Schedule.MonitoringScheduleConfigProperty(
                    monitoring_type="ModelQuality",
                    monitoring_job_definition_name=self.model_quality_definition.job_definition_name,
                    schedule_config=_Schedule.ScheduleConfigProperty(schedule_expression=job.schedule_expression),
                ),
            )
            # The name is a plain string, not a reference: the order must be declared.
            self.model_quality.node.add_dependency(self.model_quality_definition)

    def _data_quality_job(self, statistics_uri: str, constraints_uri: str) -> _Schedule.MonitoringJobDefinitionProperty:
        job = self.job
        return _Schedule.MonitoringJobDefinitionProperty(
            role_arn=job.role_arn,
            monitoring_app_specification=_Schedule.MonitoringAppSpecificationProperty(image_uri=job.image_uri),
            monitoring_inputs=[
                _Schedule.MonitoringInputProperty(
                    endpoint_input=_Schedule.EndpointInputProperty(
                        endpoint_name=job.endpoint_name, local_path=ENDPOINT_INPUT_PATH
                    )
                )
            ],
            baseline_config=_Schedule.BaselineConfigProperty(
                statistics_resource=_Schedule.StatisticsResourceProperty(s3_uri=statistics_uri),
                constraints_resource=_Schedule.ConstraintsResourceProperty(s3_uri=constraints_uri),
            ),
            monitoring_output_config=_output_config(_Schedule, job),
            monitoring_resources=_resources(_Schedule, job),
            environment={"publish_cloudwatch_metrics": "Enabled"},
            stopping_condition=_Schedule.StoppingConditionProperty(max_runtime_in_seconds=job.max_runtime_seconds),
        )

    def _model_quality_definition(
        self, settings: ModelQualitySettings, name_prefix: str, tags: Mapping[str, str]
    ) -> _ModelQuality:
        job = self.job
        definition = _ModelQuality(
            self,
            "ModelQualityJobDefinition",
            role_arn=job.role_arn,
            endpoint_name=job.endpoint_name,
            model_quality_app_specification=_ModelQuality.ModelQualityAppSpecificationProperty(
                image_uri=job.image_uri, problem_type=settings.problem_type
            ),
            model_quality_job_input=_ModelQuality.ModelQualityJobInputProperty(
                endpoint_input=_ModelQuality.EndpointInputProperty(
                    endpoint_name=job.endpoint_name,
                    local_path=ENDPOINT_INPUT_PATH,
                    probability_attribute=PROBABILITY_ATTRIBUTE,
                    probability_threshold_attribute=settings.probability_threshold,
                    start_time_offset=settings.start_offset,
                    end_time_offset=settings.end_offset,
                ),
                ground_truth_s3_input=_ModelQuality.MonitoringGroundTruthS3InputProperty(
                    s3_uri=settings.ground_truth_uri
                ),
            ),
            model_quality_baseline_config=_ModelQuality.ModelQualityBaselineConfigProperty(
                constraints_resource=_ModelQuality.ConstraintsResourceProperty(s3_uri=settings.constraints_uri)
            ),
            model_quality_job_output_config=_output_config(_ModelQuality, job),
            job_resources=_resources(_ModelQuality, job),
            stopping_condition=_ModelQuality.StoppingConditionProperty(max_runtime_in_seconds=job.max_runtime_seconds),
            # Tags are create-only too: given here, they are part of the content the name is derived from.
            tags=[CfnTag(key=key, value=value) for key, value in sorted(tags.items())],
        )
        definition.job_definition_name = content_name(
            name_prefix, "mq", Stack.of(self).resolve(definition_content(definition))
        )
        return definition


def _output_config(resource: Any, job: MonitoringJob) -> Any:
    """The reports' S3 output, encrypted with the data key (`resource`: the L1 class whose property types to use)."""
    return resource.MonitoringOutputConfigProperty(
        kms_key_id=job.data_key_arn,
        monitoring_outputs=[
            resource.MonitoringOutputProperty(
                s3_output=resource.S3OutputProperty(
                    s3_uri=job.output_uri, local_path=OUTPUT_PATH, s3_upload_mode="EndOfJob"
                )
            )
        ],
    )


def _resources(resource: Any, job: MonitoringJob) -> Any:
    """One instance whose ML storage volume is encrypted with the data key."""
    return resource.MonitoringResourcesProperty(
        cluster_config=resource.ClusterConfigProperty(
            instance_count=1,
            instance_type=job.instance_type,
            volume_size_in_gb=VOLUME_SIZE_GB,
            volume_kms_key_id=job.data_key_arn,
        )
    )


def definition_content(definition: _ModelQuality) -> dict[str, object]:
    """Every property of the job definition but its name, as CloudFormation will receive it (tokens unresolved)."""
    return {
        "RoleArn": definition.role_arn,
        "EndpointName": definition.endpoint_name,
        "ModelQualityAppSpecification": definition.model_quality_app_specification,
        "ModelQualityJobInput": definition.model_quality_job_input,
        "ModelQualityBaselineConfig": definition.model_quality_baseline_config,
        "ModelQualityJobOutputConfig": definition.model_quality_job_output_config,
        "JobResources": definition.job_resources,
        "NetworkConfig": definition.network_config,
        "StoppingCondition": definition.stopping_condition,
        "Tags": definition.tags_raw,
    }


def content_name(prefix: str, kind: str, content: object) -> str:
    """`<prefix>-<kind>-<12 hex digits of the content's SHA-256>`, the prefix shortened to fit 63 characters."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:_DIGEST_LENGTH]
    suffix = f"-{kind}-{digest}"
    return f"{prefix[: JOB_DEFINITION_NAME_LIMIT - len(suffix)].rstrip('-')}{suffix}"
