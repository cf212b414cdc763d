"""Alarms on Model Monitor's results: failed executions, drift of the watched features, a drop in model quality.

Metric names, namespaces and dimensions are the ones the analyzer publishes when `publish_cloudwatch_metrics` is
Enabled (see README, "Model Monitor schedules": what is documented and what is not verified in an account).
`alarms` is the hook for notifications: give each one an action once the unit has a topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct

DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
DRIFT_METRIC_PREFIX = "feature_baseline_drift_"
# Model-quality metrics whose drop alarms, at the threshold of the pinned package's constraints (higher is better).
QUALITY_METRICS = ("auc", "f1")


class MonitoringAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        monitoring_role_arn: str,
        data_quality_schedule_name: str,
        drift_features: Sequence[str],
        drift_threshold: float,
        model_quality_schedule_name: str | None,
        quality_floors: Mapping[str, float],
        interval_hours: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        # One datapoint per execution: the period spans the schedule's interval (CloudWatch allows at most a day).
        self.period = Duration.hours(interval_hours)
        self.alarms: list[cloudwatch.Alarm] = []
        # SageMaker publishes no metric for a failed monitoring execution. Each execution is a processing job run
        # with the monitoring role, and its state-change event carries the job's RoleArn (the event's detail is the
        # job's description): the rule's MatchedEvents count is the metric.
        self.failed_executions = events.Rule(
            self,
            "FailedExecutionsRule",
            description=f"Model Monitor executions on {endpoint_name} that failed",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Processing Job State Change"],
                detail={"ProcessingJobStatus": ["Failed"], "RoleArn": [monitoring_role_arn]},
            ),
        )
        self._alarm(
            "FailedExecutionsAlarm",
            cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="MatchedEvents",
                dimensions_map={"RuleName": self.failed_executions.rule_name},
                statistic="Sum",
                period=Duration.hours(1),
            ),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description=f"A Model Monitor execution on {endpoint_name} failed (no data in the window, a bad "
            "baseline, missing ground truth or permissions): see the schedule's last execution",
        )
        for feature in drift_features:
            self._alarm(
                f"DriftAlarm{_pascal(feature)}",
                self._metric(DATA_METRICS_NAMESPACE, f"{DRIFT_METRIC_PREFIX}{feature}", data_quality_schedule_name),
                threshold=drift_threshold,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=f"{feature} on {endpoint_name} drifted from its baseline by more than {drift_threshold}",
            )
        if model_quality_schedule_name is not None:
            for metric, floor in sorted(quality_floors.items()):
                self._alarm(
                    f"QualityAlarm{_pascal(metric)}",
                    self._metric(MODEL_METRICS_NAMESPACE, metric, model_quality_schedule_name),
                    threshold=floor,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    description=f"{metric} of {endpoint_name} on labelled traffic fell below {floor:.4f}",
                )

    def _metric(self, namespace: str, name: str, schedule_name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map={"Endpoint": self.endpoint_name, "MonitoringSchedule": schedule_name},
            statistic="Maximum" if namespace == DATA_METRICS_NAMESPACE else "Minimum",
            period=self.period,
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
    ) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=1,
                # No execution in a period (no traffic, schedule not due) is not a finding.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
        )


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
