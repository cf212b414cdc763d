"""A small, typed layer over the SageMaker SDK v3 so that a pipeline reads in about one screen.

    p = PipelineBuilder("churn-dev-training", settings)
    prep = p.processing("Preprocess", script="preprocess.py", inputs={"data": p.parameter("InputDataUri")},
                        outputs=["train", "test"])
    train = p.training("Train", script="train.py", channels={"train": prep.output("train")})
    p.definition()  # deterministic JSON, built without any network call

Conventions it fixes once for every step:
- a processing input `x` is mounted at /opt/ml/processing/input/x, an output `y` is written from
  /opt/ml/processing/output/y to s3://<artifacts>/pipelines/<pipeline>/<ExperimentId>/<execution>/<step>/y
  (outputs are not part of SageMaker's cache key, downstream steps read them through step properties);
- step code is an s3:// URI of a content-addressed asset, so a script change changes exactly the steps
  that run it (and their cache keys), while an unchanged script keeps their cache;
- every job is encrypted with the unit's KMS key and tagged with the unit's tags, the pipeline name and
  `experiment-id` = the ExperimentId parameter. ExperimentId goes into tags and output paths only, never
  into arguments, environment or inputs, which are in the cache key;
- caching is on for a step unless it says `cache=False`, with the unit's `expire_after`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_defs import sdk
from pipeline_defs.contract import (
    ARTIFACTS_PREFIX,
    DEFAULT_EXPERIMENT_ID,
    EXPERIMENT_TAG,
    PROCESSING_ROOT,
    SKLEARN_ENGINE,
    Parameter,
)
from pipeline_defs.packaging import STEP_LIBRARY
from pipeline_defs.sdk import (
    CacheConfig,
    Compute,
    Condition,
    ConditionStep,
    DriftCheckBaselines,
    ExecutionVariables,
    FailStep,
    InputData,
    Join,
    JsonGet,
    MetricDefinition,
    MetricsSource,
    ModelBuilder,
    ModelMetrics,
    ModelStep,
    ModelTrainer,
    OutputDataConfig,
    ParameterFloat,
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    ProcessingStep,
    PropertyFile,
    S3DataSource,
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    ScriptProcessor,
    StepExceptionTypeEnum,
    StepRetryPolicy,
    StoppingCondition,
    Tag,
    TrainingStep,
    Transformer,
    TransformStep,
)


@dataclass(frozen=True)
class RetrySettings:
    """How a job step retries transient service errors (contract.RETRYABLE_EXCEPTION_TYPES); the values are the
    unit's config (step_retry_*), their one home."""

    max_attempts: int
    interval_seconds: int
    backoff_rate: float


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """What a definition needs from its environment. Role, key and bucket may be placeholders."""

    region: str
    role_arn: str
    kms_key_arn: str
    artifacts_bucket: str
    landing_bucket: str
    evaluation_data_prefix: str
    model_package_group_name: str
    processing_instance_type: str
    training_instance_type: str
    # config's training_engine (contract.TRAINING_ENGINES) and its instances.
    training_engine: str = SKLEARN_ENGINE
    training_instance_count: int = 1
    preprocess_instance_count: int
    # Batch transform (the scoring pipeline): instance type and count, and the capture layout's output prefix.
    transform_instance_type: str
    transform_instance_count: int
    scoring_data_prefix: str
    scoring_top_n: int
    cache_expire_after: str
    # The training gate's parameter defaults (config: minimum_score, max_regression, confidence_level).
    minimum_score: float
    max_regression: float
    confidence_level: float
    default_approval_status: str
    code_uris: Mapping[str, str]
    tags: Mapping[str, str] = field(default_factory=dict)
    # Relative drop of a monitored metric below its evaluated value before the model-quality monitor flags it.
    model_quality_tolerance: float
    # The score at or above which Evaluate predicts churn: the same threshold Model Monitor's analyzer applies.
    model_quality_probability_threshold: float
    retry: RetrySettings
    max_runtime_seconds: int = 3600
    volume_size_gb: int = 30

    def code_uri(self, script: str) -> str:
        if script not in self.code_uris:
            raise KeyError(f"no code asset for step script '{script}'; known: {sorted(self.code_uris)}")
        uri = self.code_uris[script]
        if not uri.startswith("s3://"):
            raise ValueError(
                f"code of '{script}' must be an s3:// URI (a local path would upload at build time): {uri}"
            )
        return uri


@dataclass(frozen=True)
class Step:
    """A built step and the typed handles later steps use to refer to it."""

    sdk_step: Any
    reports: Mapping[str, PropertyFile]

    @property
    def name(self) -> str:
        return self.sdk_step.name

    def output(self, name: str):
        return self.sdk_step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    @property
    def model_name(self):
        """The name SageMaker gave the model a Model step created."""
        return self.sdk_step.properties.ModelName

    @property
    def transform_output(self):
        """Where a Transform step wrote its results (`<input object>.out` per input object)."""
        return self.sdk_step.properties.TransformOutput.S3OutputPath

    def file(self, output: str, file_name: str) -> Join:
        return Join(on="/", values=[self.output(output), file_name])

    def report(self, report: str, json_path: str) -> JsonGet:
        if report not in self.reports:
            raise KeyError(f"step {self.name} has no report '{report}'; it has {sorted(self.reports)}")
        return JsonGet(step_name=self.name, property_file=self.reports[report], json_path=json_path)

    @property
    def model_artifacts(self):
        return self.sdk_step.properties.ModelArtifacts.S3ModelArtifacts


class PipelineBuilder:
    def __init__(self, name: str, settings: PipelineSettings) -> None:
        self.name = name
        self.settings = settings
        self._session = sdk.offline_session(settings.region)
        self._image = sdk.sklearn_image_uri(settings.region)
        self._parameters: list[Any] = []
        self._steps: list[Any] = []
        self.experiment_id = self.parameter(Parameter.EXPERIMENT_ID, default=DEFAULT_EXPERIMENT_ID)

    # Parameters ---------------------------------------------------------------------------------
    def parameter(self, name: str, default: str | None = None) -> ParameterString:
        return self._add_parameter(ParameterString(name=name, default_value=default))

    def float_parameter(self, name: str, default: float) -> ParameterFloat:
        return self._add_parameter(ParameterFloat(name=name, default_value=default))

    def _add_parameter(self, parameter):
        if any(p.name == parameter.name for p in self._parameters):
            raise ValueError(f"pipeline {self.name} already has a parameter named {parameter.name}")
        self._parameters.append(parameter)
        return parameter

    # Steps --------------------------------------------------------------------------------------
    def processing(
        self,
        name: str,
        *,
        script: str,
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[str] = (),
        fixed_outputs: Mapping[str, str] | None = None,
        arguments: Sequence[Any] = (),
        environment: Mapping[str, str] | None = None,
        reports: Mapping[str, tuple[str, str]] | None = None,
        cache: bool = True,
        depends_on: Sequence[Step] = (),
        instance_count: int = 1,
        sharded_inputs: Collection[str] = (),
    ) -> Step:
        """A script in the scikit-learn image. `reports` = {name: (output, json file)} for JsonGet.

        `fixed_outputs` = {output: s3 uri} for the rare output that must not move per execution; `depends_on`: steps
        that must finish first although no value of theirs is read (e.g. the one that writes a fixed output).
        `sharded_inputs` are split between the `instance_count` instances by S3 key (ShardedByS3Key); every other
        input is copied whole to each instance.
        """
        unknown = set(sharded_inputs) - set(inputs or {})
        if unknown:
            raise ValueError(f"step {name} shards input(s) {sorted(unknown)} it does not declare")
        if STEP_LIBRARY_INPUT in (inputs or {}):
            raise ValueError(f"step {name}: the input name '{STEP_LIBRARY_INPUT}' is the step library's")
        # Every script imports the step library: mounting it makes its content hash part of the step's cache key.
        inputs = {**(inputs or {}), STEP_LIBRARY_INPUT: self.settings.code_uri(STEP_LIBRARY)}
        processor = ScriptProcessor(
            role=self.settings.role_arn,
            image_uri=self._image,
            command=["python3"],
            instance_count=instance_count,
            instance_type=self.settings.processing_instance_type,
            volume_size_in_gb=self.settings.volume_size_gb,
            volume_kms_key=self.settings.kms_key_arn,
            output_kms_key=self.settings.kms_key_arn,
            max_runtime_in_seconds=self.settings.max_runtime_seconds,
            base_job_name=name.lower(),
            env=dict(environment) if environment else None,
            tags=[{"Key": key, "Value": value} for key, value in self._job_tags()],
            sagemaker_session=self._session,
        )
        output_uris = {output: self._output_uri(name, output) for output in outputs} | dict(fixed_outputs or {})
        property_files = {
            report: PropertyFile(name=report, output_name=output, path=path)
            for report, (output, path) in (reports or {}).items()
        }
        for report, file in property_files.items():
            if file.output_name not in output_uris:
                raise ValueError(
                    f"report {report} of step {name} reads output '{file.output_name}', which is not declared"
                )
        step = ProcessingStep(
            name=name,
            step_args=processor.run(
                code=self.settings.code_uri(script),
                inputs=[
                    _processing_input(input_name, uri, sharded=input_name in sharded_inputs)
                    for input_name, uri in inputs.items()
                ],
                outputs=[_processing_output(output, uri) for output, uri in output_uris.items()],
                arguments=list(arguments),
            ),
            property_files=list(property_files.values()),
            cache_config=self._cache_config(cache),
            retry_policies=self._retry_policies(),
            depends_on=[dependency.name for dependency in depends_on] or None,
        )
        return self._add_step(Step(step, property_files))

    def training(
        self,
        name: str,
        *,
        script: str,
        source_tarball: str,
        channels: Mapping[str, Any],
        hyperparameters: Mapping[str, str | int | float],
        metrics: Mapping[str, str] | None = None,
        content_types: Mapping[str, str] | None = None,
        cache: bool = True,
        image: str | None = None,
        instance_count: int = 1,
        sharded_channels: Collection[str] = (),
    ) -> Step:
        """Script mode without the SDK's code upload: the tarball holds `script` at its root.

        Channels are text/csv unless `content_types` ({channel: type}) says otherwise. `image` defaults to the
        scikit-learn image; `sharded_channels` are split between the `instance_count` instances by S3 key
        (ShardedByS3Key; the SDK then sets no content type on them), every other channel is copied whole to each.
        """
        unknown = set(sharded_channels) - set(channels)
        if unknown:
            raise ValueError(f"step {name} shards channel(s) {sorted(unknown)} it does not declare")
        trainer = ModelTrainer(
            sagemaker_session=self._session,
            role=self.settings.role_arn,
            training_image=image or self._image,
            base_job_name=name.lower(),
            compute=Compute(
                instance_type=self.settings.training_instance_type,
                instance_count=instance_count,
                volume_size_in_gb=self.settings.volume_size_gb,
                volume_kms_key_id=self.settings.kms_key_arn,
            ),
            stopping_condition=StoppingCondition(max_runtime_in_seconds=self.settings.max_runtime_seconds),
            output_data_config=OutputDataConfig(
                s3_output_path=self._output_uri(name, "model"),
                kms_key_id=self.settings.kms_key_arn,
                compression_type="GZIP",
            ),
            hyperparameters={
                "sagemaker_program": script,
                "sagemaker_submit_directory": self.settings.code_uri(source_tarball),
                "sagemaker_region": self.settings.region,
                **hyperparameters,
            },
            tags=[Tag(key=key, value=value) for key, value in self._job_tags()],
        )
        if metrics:
            trainer = trainer.with_metric_definitions(
                [MetricDefinition(name=metric, regex=regex) for metric, regex in metrics.items()]
            )
        step = TrainingStep(
            name=name,
            step_args=trainer.train(
                input_data_config=[
                    InputData(
                        channel_name=channel,
                        data_source=_sharded_source(uri) if channel in sharded_channels else uri,
                        content_type=(content_types or {}).get(channel, "text/csv"),
                    )
                    for channel, uri in channels.items()
                ]
            ),
            cache_config=self._cache_config(cache),
            retry_policies=self._retry_policies(),
        )
        return self._add_step(Step(step, {}))

    def register(
        self,
        name: str,
        *,
        model_data: Any,
        inference_script: str,
        inference_tarball: str,
        approval_status: Any,
        model_statistics: Any,
        model_constraints: Any,
        explainability: Any,
        data_statistics: Any,
        data_constraints: Any,
        lineage: Mapping[str, Any],
    ) -> Step:
        """A model package version with its quality metrics, data-drift baselines and lineage.

        `lineage` becomes CustomerMetadataProperties next to the experiment id (API limits: 50 entries, keys up to 128
        and values up to 256 characters; run-time values enter as text through `text`)."""
        builder = ModelBuilder(
            s3_model_data_url=model_data,
            image_uri=self._image,
            role_arn=self.settings.role_arn,
            sagemaker_session=self._session,
            instance_type=self.settings.processing_instance_type,
            # The scikit-learn serving container loads `inference_script` from this content-addressed tarball.
            env_vars={
                "SAGEMAKER_PROGRAM": inference_script,
                "SAGEMAKER_SUBMIT_DIRECTORY": self.settings.code_uri(inference_tarball),
                "SAGEMAKER_REGION": self.settings.region,
            },
            dependencies=None,  # the default {"auto": True} uploads code through default_bucket()
            log_level=logging.ERROR,
        )
        json_source = lambda uri: MetricsSource(content_type="application/json", s3_uri=uri)  # noqa: E731
        step = ModelStep(
            name=name,
            step_args=builder.register(
                model_package_group_name=self.settings.model_package_group_name,
                approval_status=approval_status,
                content_types=["text/csv", "application/json"],
                response_types=["application/json", "text/csv"],
                inference_instances=["ml.m5.large", "ml.m5.xlarge"],
                transform_instances=["ml.m5.large"],
                model_metrics=ModelMetrics(
                    model_statistics=json_source(model_statistics),
                    model_constraints=json_source(model_constraints),
                    # ModelMetrics.Explainability.Report: the candidate's permutation importances (steps/train.py).
                    explainability=json_source(explainability),
                ),
                drift_check_baselines=DriftCheckBaselines(
                    model_data_statistics=json_source(data_statistics),
                    model_data_constraints=json_source(data_constraints),
                ),
                customer_metadata_properties={EXPERIMENT_TAG: self.experiment_id, **lineage},
            ),
        )
        return Step(step, {})  # a ModelStep is only ever a branch of a gate, never a top-level step

    def model_from_package(self, name: str, *, model_package: Any) -> Step:
        """CreateModel of a registered model package (run-time ARN): SageMaker takes the image, the model data and the
        inference code's environment from the package itself, so the model is exactly the version that was registered.
        A Model step has no cache and no job-level retries (the SDK refuses SageMakerJobStepRetryPolicy on it)."""
        session = self._session
        session.context = None
        session.init_model_step_arguments(_PackageModel(session))
        session.create_model(
            name=name.lower(),
            role=self.settings.role_arn,
            container_defs={"ModelPackageName": model_package},
            tags=[{"Key": key, "Value": value} for key, value in self._job_tags()],
        )
        step = ModelStep(name=name, step_args=session.context, retry_policies=self._retry_policies(job=False))
        return self._add_step(Step(step, {}))

    def transform(self, name: str, *, model: Step, data: Any, input_filter: str, output_filter: str) -> Step:
        """A batch transform of headerless CSV (`data`, one record a line) by `model`'s container, on the unit's
        transform instances: SageMaker hands each instance whole objects of `data` (one per instance at most), so the
        input should hold at least as many objects as instances. Each output line is its input record joined with the
        model's answer (JoinSource Input), `input_filter` choosing what the model sees and `output_filter` what is kept
        (JSONPath on the CSV record as an array). Input and output are captured in batch capture's layout under the
        step's `capture` output with inference ids (BatchDataCaptureConfig), everything encrypted with the unit's key.
        Not cached: its cache key holds ModelName, which a Model step makes new in every execution."""
        kms = self.settings.kms_key_arn
        transformer = Transformer(
            model_name=model.model_name,
            instance_count=self.settings.transform_instance_count,
            instance_type=self.settings.transform_instance_type,
            strategy="MultiRecord",
            assemble_with="Line",
            output_path=self._output_uri(name, "scores"),
            output_kms_key=kms,
            accept="text/csv",
            max_payload=TRANSFORM_MAX_PAYLOAD_MB,
            tags=[{"Key": key, "Value": value} for key, value in self._job_tags()],
            base_transform_job_name=name.lower(),
            sagemaker_session=self._session,
            volume_kms_key=kms,
        )
        step = TransformStep(
            name=name,
            step_args=transformer.transform(
                data=data,
                data_type="S3Prefix",
                content_type="text/csv",
                split_type="Line",
                input_filter=input_filter,
                output_filter=output_filter,
                join_source="Input",
                batch_data_capture_config={
                    "DestinationS3Uri": self._output_uri(name, "capture"),
                    "KmsKeyId": kms,
                    "GenerateInferenceId": True,
                },
            ),
            retry_policies=self._retry_policies(),
        )
        return self._add_step(Step(step, {}))

    def code_versions(self) -> dict[str, str]:
        """{`code-<script>`: content hash} of every step code object: which code produced a registered version."""
        return {
            f"code-{script}": uri.rsplit("/", 1)[-1].split(".", 1)[0]
            for script, uri in sorted(self.settings.code_uris.items())
        }

    @staticmethod
    def text(value: Any) -> Join:
        """A run-time value (a number, a JsonGet) as text: metadata values are strings."""
        return Join(on="", values=[value])

    def fail(self, name: str, *message: Any) -> Step:
        """A Fail step whose message joins literal text and run-time values with spaces."""
        return Step(FailStep(name=name, error_message=Join(on=" ", values=list(message))), {})

    def gate(
        self, name: str, *, all_of: Sequence[Condition], if_true: Sequence[Step], if_false: Sequence[Step]
    ) -> Step:
        step = ConditionStep(
            name=name,
            conditions=list(all_of),
            if_steps=[s.sdk_step for s in if_true],
            else_steps=[s.sdk_step for s in if_false],
        )
        return self._add_step(Step(step, {}))

    # Output -------------------------------------------------------------------------------------
    def definition(self) -> str:
        pipeline = Pipeline(
            name=self.name,
            parameters=self._parameters,
            steps=self._steps,
            sagemaker_session=self._session,
            pipeline_experiment_config=None,  # the default creates an Experiment and a Trial per run
        )
        return pipeline.definition()

    # Internals ----------------------------------------------------------------------------------
    def _add_step(self, step: Step) -> Step:
        if any(s.name == step.name for s in self._steps):
            raise ValueError(f"pipeline {self.name} already has a step named {step.name}")
        self._steps.append(step.sdk_step)
        return step

    def _job_tags(self) -> list[tuple[str, Any]]:
        static = {**self.settings.tags, "pipeline": self.name}
        return [*sorted(static.items()), (EXPERIMENT_TAG, self.experiment_id)]

    def _retry_policies(self, *, job: bool = True) -> list[Any]:
        """Transient service errors of the step (throttling, faults) and, with `job`, of its job (capacity, internal,
        limits)."""
        retry = self.settings.retry
        timing = {
            "max_attempts": retry.max_attempts,
            "interval_seconds": retry.interval_seconds,
            "backoff_rate": retry.backoff_rate,
        }
        step = StepRetryPolicy(exception_types=list(StepExceptionTypeEnum), **timing)
        if not job:
            return [step]
        return [step, SageMakerJobStepRetryPolicy(exception_types=list(SageMakerJobExceptionTypeEnum), **timing)]

    def _cache_config(self, cache: bool) -> CacheConfig | None:
        return CacheConfig(enable_caching=True, expire_after=self.settings.cache_expire_after) if cache else None

    def _output_uri(self, step_name: str, output: str) -> Join:
        return Join(
            on="/",
            values=[
                f"s3://{self.settings.artifacts_bucket}/{ARTIFACTS_PREFIX.rstrip('/')}",
                ExecutionVariables.PIPELINE_NAME,
                self.experiment_id,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step_name,
                output,
            ],
        )


# Transform requests carry at most this many MB of records (MaxPayloadInMB): a mini-batch of lines, far below the
# 100 MB limit and the container's own request limit.
TRANSFORM_MAX_PAYLOAD_MB = 6


class _PackageModel:
    """What the SDK's ModelStep reads of a model object (its session) when the model comes from a package."""

    def __init__(self, session: Any) -> None:
        self.sagemaker_session = session


# The processing input the step library's zip is mounted as: /opt/ml/processing/input/steplib/, the folder each script
# looks in beside its own code folder (/opt/ml/processing/input/code/).
STEP_LIBRARY_INPUT = "steplib"


def _processing_input(name: str, uri: Any, *, sharded: bool) -> ProcessingInput:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=f"{PROCESSING_ROOT}/input/{name}",
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="ShardedByS3Key" if sharded else "FullyReplicated",
        ),
    )


def _sharded_source(uri: Any) -> S3DataSource:
    return S3DataSource(s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="ShardedByS3Key")


def _processing_output(name: str, uri: Any) -> ProcessingOutput:
    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=uri, local_path=f"{PROCESSING_ROOT}/output/{name}", s3_upload_mode="EndOfJob"
        ),
    )


def cli(*positional: Any, **options: Any) -> list[Any]:
    """Container arguments from keywords: `cli("check", data_dir=x)` -> ["check", "--data-dir", x]."""
    arguments = list(positional)
    for option, value in options.items():
        arguments.append(f"--{option.replace('_', '-')}")
        if value is not True:  # a True value is a flag without an argument
            arguments.append(value)
    return arguments


def input_dir(name: str) -> str:
    return f"{PROCESSING_ROOT}/input/{name}"


def output_dir(name: str) -> str:
    return f"{PROCESSING_ROOT}/output/{name}"
