"""The estimate: dollars from job and endpoint descriptions x the price snapshot. Pure functions, no AWS calls.

compute = billed seconds x instance count x USD per hour / 3600
    billed seconds: training - BillableTimeInSeconds (already net of managed spot savings); processing -
    ProcessingEndTime - ProcessingStartTime; transform - TransformEndTime - TransformStartTime; a running job - now -
    its start, flagged. Provisioning before the start time is not billed; failed and stopped jobs are billed for the
    time they ran.
storage = volume GB x instance count x (end or now - start) / (730 h) x USD per GB-month
    AWS prorates GB-month charges over a 730-hour month. Transform jobs have no storage line (not billed apart).
A step served from cache (CacheHitResult) or reused by a selective execution ran in another execution, which paid
for it: it costs $0 here and names that execution. Cost Explorer charges it the same way (the job's experiment-id
tag is the first run's), so the estimate and the bill reconcile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops.aws import AwsCallFailed
from mlops.cost.prices import PriceSnapshot

HOURS_PER_MONTH = 730
# Step metadata key -> the Price List component of its job.
JOB_STEP_KINDS = {"TrainingJob": "Training", "ProcessingJob": "Processing", "TransformJob": "Transform"}
_RUNNING = {"InProgress", "Stopping"}
_FINISHED_NEEDS_TIMES = {"Completed"}


class MalformedAnswer(AwsCallFailed):
    """An AWS answer lacks a field the estimate needs; the message names the job (exit code 1)."""


@dataclass(frozen=True)
class Fleet:
    instance_type: str
    count: int

    def __str__(self) -> str:
        return f"{self.instance_type} x{self.count}"


@dataclass(frozen=True)
class StepCost:
    """One Training/Processing step of one execution: what ran, for how long, and what it cost in this run."""

    step: str
    kind: str  # Training | Processing | Transform
    job: str
    status: str
    fleets: tuple[Fleet, ...] = ()
    billed_seconds: float = 0.0
    storage_gb: int = 0
    compute_usd: float = 0.0
    storage_usd: float = 0.0
    running: bool = False
    spot: bool = False
    reused_from: str | None = None
    note: str = ""

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.storage_usd


@dataclass(frozen=True)
class ExecutionCost:
    arn: str
    pipeline: str
    experiment_id: str
    status: str
    started: datetime
    last_activity: datetime  # the latest step end (now while a step runs): billing lags behind it
    steps: tuple[StepCost, ...] = field(default_factory=tuple)

    @property
    def total_usd(self) -> float:
        return sum(step.total_usd for step in self.steps)

    @property
    def running(self) -> bool:
        return any(step.running for step in self.steps)


@dataclass(frozen=True)
class JobStep:
    """A step of ListPipelineExecutionSteps that ran (or reused) a priced job."""

    step: str
    kind: str
    job_name: str
    status: str
    reused_from: str | None


def job_steps(steps: Iterable[Mapping[str, Any]]) -> list[JobStep]:
    """The Training/Processing steps with a job; others (condition, fail, register, ...) bill nothing here."""
    found = []
    for step in steps:
        metadata = step.get("Metadata", {})
        for key, kind in JOB_STEP_KINDS.items():
            if key not in metadata:
                continue
            arn = metadata[key].get("Arn")
            if not arn:
                raise MalformedAnswer(f"step {step.get('StepName', '?')}: its {key} metadata has no Arn")
            reused = step.get("CacheHitResult") or step.get("SelectiveExecutionResult") or {}
            found.append(
                JobStep(
                    step=step.get("StepName", "?"),
                    kind=kind,
                    job_name=arn.rsplit("/", 1)[-1],
                    status=step.get("StepStatus", "?"),
                    reused_from=reused.get("SourcePipelineExecutionArn"),
                )
            )
    return found


def reused_step(job_step: JobStep) -> StepCost:
    return StepCost(
        step=job_step.step,
        kind=job_step.kind,
        job=job_step.job_name,
        status=job_step.status,
        reused_from=job_step.reused_from,
        note="cached: paid by the execution it came from",
    )


def _require(job: Mapping[str, Any], path: str, what: str) -> Any:
    value: Any = job
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        raise MalformedAnswer(f"{what}: the description has no {path}")
    return value


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return max(0.0, (end - start).total_seconds()) if start is not None and end is not None else 0.0


def _fleet(config: Mapping[str, Any], what: str) -> Fleet:
    instance_type = config.get("SelectedInstanceType") or config.get("InstanceType")
    count = config.get("SelectedInstanceCount") or config.get("InstanceCount")
    if not instance_type or not count:
        raise MalformedAnswer(f"{what}: the description has no InstanceType/InstanceCount")
    return Fleet(str(instance_type), int(count))


def _priced(
    *,
    step: str,
    kind: str,
    job: str,
    status: str,
    fleets: tuple[Fleet, ...],
    billed_seconds: float,
    wall_seconds: float,
    storage_gb: int,
    prices: PriceSnapshot,
    **flags: Any,
) -> StepCost:
    compute = sum(billed_seconds * f.count * prices.hourly(kind, f.instance_type) / 3600 for f in fleets)
    instances = sum(f.count for f in fleets)
    gb_months = storage_gb * instances * wall_seconds / (HOURS_PER_MONTH * 3600)
    storage = gb_months * prices.storage(kind) if storage_gb else 0.0
    return StepCost(
        step=step,
        kind=kind,
        job=job,
        status=status,
        fleets=fleets,
        billed_seconds=billed_seconds,
        storage_gb=storage_gb,
        compute_usd=compute,
        storage_usd=storage,
        **flags,
    )


def training_cost(step: str, job: Mapping[str, Any], prices: PriceSnapshot, now: datetime) -> StepCost:
    """The cost of a DescribeTrainingJob answer (heterogeneous InstanceGroups are priced group by group)."""
    name = str(job.get("TrainingJobName", "?"))
    what = f"training job {name} (step {step})"
    status = str(_require(job, "TrainingJobStatus", what))
    resources = _require(job, "ResourceConfig", what)
    groups = resources.get("InstanceGroups") or []
    fleets = tuple(_fleet(g, what) for g in groups) if groups else (_fleet(resources, what),)
    start, end = job.get("TrainingStartTime"), job.get("TrainingEndTime")
    running = status in _RUNNING
    if running:
        billed = _seconds(start, now)
    elif job.get("BillableTimeInSeconds") is not None:
        billed = float(job["BillableTimeInSeconds"])
    elif status in _FINISHED_NEEDS_TIMES or start is not None:
        billed = _seconds(_require(job, "TrainingStartTime", what), _require(job, "TrainingEndTime", what))
    else:
        billed = 0.0  # failed or stopped before the instances started: nothing billed
    # Instances kept warm after the job are billed at the training rate as well.
    retained = float((job.get("WarmPoolStatus") or {}).get("ResourceRetainedBillableTimeInSeconds") or 0)
    return _priced(
        step=step,
        kind="Training",
        job=name,
        status=status,
        fleets=fleets,
        billed_seconds=billed + retained,
        wall_seconds=_seconds(start, now if running else end),
        storage_gb=int(resources.get("VolumeSizeInGB") or 0),
        prices=prices,
        running=running,
        spot=bool(job.get("EnableManagedSpotTraining")),
        note=f"incl. {retained:.0f} s warm pool" if retained else "",
    )


def processing_cost(step: str, job: Mapping[str, Any], prices: PriceSnapshot, now: datetime) -> StepCost:
    """The cost of a DescribeProcessingJob answer: processing has no billable-seconds field, so end - start."""
    return _timed_job_cost(step, job, prices, now, kind="Processing", resources="ProcessingResources.ClusterConfig")


def transform_cost(step: str, job: Mapping[str, Any], prices: PriceSnapshot, now: datetime) -> StepCost:
    """The cost of a DescribeTransformJob answer: instance type x count x (end - start), at the Transform rate."""
    return _timed_job_cost(step, job, prices, now, kind="Transform", resources="TransformResources")


def _timed_job_cost(
    step: str, job: Mapping[str, Any], prices: PriceSnapshot, now: datetime, *, kind: str, resources: str
) -> StepCost:
    """A job billed from its start to its end time (`<kind>StartTime`, `<kind>EndTime`) on the fleet at `resources`."""
    name = str(job.get(f"{kind}JobName", "?"))
    what = f"{kind.lower()} job {name} (step {step})"
    status = str(_require(job, f"{kind}JobStatus", what))
    cluster = _require(job, resources, what)
    start, end = job.get(f"{kind}StartTime"), job.get(f"{kind}EndTime")
    running = status in _RUNNING
    if running:
        seconds = _seconds(start, now)
    elif status in _FINISHED_NEEDS_TIMES:
        seconds = _seconds(_require(job, f"{kind}StartTime", what), _require(job, f"{kind}EndTime", what))
    else:
        seconds = _seconds(start, end)
    return _priced(
        step=step,
        kind=kind,
        job=name,
        status=status,
        fleets=(_fleet(cluster, what),),
        billed_seconds=seconds,
        wall_seconds=seconds,
        storage_gb=int(cluster.get("VolumeSizeInGB") or 0),
        prices=prices,
        running=running,
    )


# --- the endpoint ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointCost:
    endpoint: str
    variant: str
    instance_type: str
    instance_count: int
    hours: float
    usd: float


def endpoint_costs(
    endpoint: Mapping[str, Any],
    endpoint_config: Mapping[str, Any],
    prices: PriceSnapshot,
    since: datetime,
    now: datetime,
) -> list[EndpointCost]:
    """Instance-hours of each variant since `since` (or the endpoint's creation), at its current instance count.

    DescribeEndpoint gives the count now; an autoscaled variant that changed size in the window is priced at its
    current size (the README says so). Serverless variants have no instances to price and are refused.
    """
    name = str(endpoint.get("EndpointName", "?"))
    created = _require(endpoint, "CreationTime", f"endpoint {name}")
    hours = _seconds(max(since, created), now) / 3600
    instance_types = {}
    for variant in _require(endpoint_config, "ProductionVariants", f"endpoint {name}'s config"):
        if variant.get("ServerlessConfig"):
            raise MalformedAnswer(f"endpoint {name}: variant {variant.get('VariantName')} is serverless (not priced)")
        instance_types[variant.get("VariantName")] = variant.get("InstanceType")
    costs = []
    for variant in _require(endpoint, "ProductionVariants", f"endpoint {name}"):
        variant_name = variant.get("VariantName")
        instance_type = instance_types.get(variant_name)
        count = variant.get("CurrentInstanceCount")
        if not instance_type or count is None:
            raise MalformedAnswer(f"endpoint {name}: variant {variant_name} has no instance type or current count")
        usd = hours * int(count) * prices.hourly("Hosting", instance_type)
        costs.append(EndpointCost(name, str(variant_name), instance_type, int(count), hours * int(count), usd))
    return costs
