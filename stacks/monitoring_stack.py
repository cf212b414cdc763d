"""Stateless monitoring: Model Monitor schedules on the unit's endpoint, their role and their alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import EnvironmentConfig
from config.deployments import ModelPin
from pipeline_defs.contract import DATA_CAPTURE_PREFIX, GROUND_TRUTH_PREFIX, MONITORING_PREFIX, SCORE_COLUMN
from pipeline_defs.definitions import model_monitor_image_uri
from platform_constructs.monitoring_alarms import QUALITY_METRICS, MonitoringAlarms
from platform_constructs.monitoring_role import MonitoringRole
from platform_constructs.monitoring_schedules import ModelMonitorSchedules, ModelQualitySettings, MonitoringJob

NO_MODEL_QUALITY_BASELINE = (
    "The pinned version has no model_quality_constraints_uri: no model-quality schedule. Promote a version whose "
    "package registered a model-quality constraints.json."
)


class MonitoringStack(Stack):
    """Exists only when the unit serves a pinned version and `model_monitor` is on (Model Monitor is closed to new
    customers since 2026-07-30: an account without it keeps the switch off)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        pin: ModelPin,
        data_key: kms.IKey,
        artifacts_bucket_name: str,
        landing_bucket_name: str,
        artifacts_bucket_arn_export: str,
        landing_bucket_arn_export: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        endpoint = config.endpoint_name
        interval_hours = config.monitoring_interval_hours
        assert interval_hours is not None  # validated by the config
        image_uri = model_monitor_image_uri(config.region)
        reports_prefix = f"{MONITORING_PREFIX}{endpoint}/"
        ground_truth_prefix = f"{GROUND_TRUTH_PREFIX}{endpoint}/"
        mq_constraints = pin.model_quality_constraints_uri
        dq_schedule, mq_schedule = config.resource_name("dq"), config.resource_name("mq")
        role = MonitoringRole(
            self,
            "MonitoringRole",
            endpoint_name=endpoint,
            image_uri=image_uri,
            baseline_objects=[
                pin.data_quality_statistics_uri,
                pin.data_quality_constraints_uri,
                *([mq_constraints] if mq_constraints else []),
            ],
            data_key=data_key,
            artifacts_bucket_arn_export=artifacts_bucket_arn_export,
            landing_bucket_arn_export=landing_bucket_arn_export,
            capture_prefix=f"{DATA_CAPTURE_PREFIX}{endpoint}/",
            ground_truth_prefix=ground_truth_prefix,
            reports_prefix=reports_prefix,
        )
        self.role = role.role
        model_quality = None
        if mq_constraints:
            model_quality = ModelQualitySettings(
                problem_type=config.model_quality_problem_type,
                probability_threshold=config.model_quality_probability_threshold,
                start_offset=config.model_quality_start_offset,
                end_offset=config.model_quality_end_offset,
                ground_truth_uri=f"s3://{landing_bucket_name}/{ground_truth_prefix}",
                constraints_uri=mq_constraints,
            )
        else:
            Annotations.of(self).add_warning_v2("churn:NoModelQualityBaseline", NO_MODEL_QUALITY_BASELINE)
        self.schedules = ModelMonitorSchedules(
            self,
            "Monitors",
            job=MonitoringJob(
                endpoint_name=endpoint,
                image_uri=image_uri,
                role_arn=role.role.role_arn,
                output_uri=f"s3://{artifacts_bucket_name}/{MONITORING_PREFIX.rstrip('/')}",
                data_key_arn=data_key.key_arn,
                instance_type=config.monitoring_instance_type,
                max_runtime_seconds=config.monitoring_max_runtime_seconds,
                schedule_expression=config.monitoring_schedule,
                interval_hours=interval_hours,
            ),
            data_quality_schedule_name=dq_schedule,
            statistics_uri=pin.data_quality_statistics_uri,
            constraints_uri=pin.data_quality_constraints_uri,
            model_quality=model_quality,
            model_quality_schedule_name=mq_schedule,
            name_prefix=config.name_prefix,
            tags=config.tags,
            role_policy=role.policy,
        )
        monitoring_alarms = MonitoringAlarms(
            self,
            "Alarms",
            endpoint_name=endpoint,
            monitoring_role_arn=role.role.role_arn,
            data_quality_schedule_name=dq_schedule,
            drift_features=[SCORE_COLUMN],
            drift_threshold=config.drift_alarm_threshold,
            model_quality_schedule_name=mq_schedule if model_quality else None,
            # The package's own constraints (evaluate.py wrote them): an alarm fires where its monitor finds one.
            quality_floors={m: value for m, value in pin.model_quality_thresholds.items() if m in QUALITY_METRICS},
            interval_hours=interval_hours,
        )
        # The hook for notifications: the unit's topic becomes each alarm's action once it exists.
        self.alarms: list[cloudwatch.Alarm] = monitoring_alarms.alarms
        outputs = {
            "DataQualityScheduleName": dq_schedule,
            "GroundTruthUri": f"s3://{landing_bucket_name}/{ground_truth_prefix}",
            "MonitoringReportsUri": f"s3://{artifacts_bucket_name}/{reports_prefix}",
        }
        if model_quality:
            outputs["ModelQualityScheduleName"] = mq_schedule
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)
