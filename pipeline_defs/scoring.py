"""Scoring pipeline: the resolved model scores a customer list by batch transform, with capture, a drift check
against the version's registered baseline and a summary (rows, mean, histogram, top-N, output manifest)."""

from __future__ import annotations

from pipeline_defs.contract import SCORE_COLUMN, Parameter
from pipeline_defs.dsl import PROCESSING_ROOT, PipelineBuilder, PipelineSettings, cli, input_dir
from pipeline_defs.sdk import ConditionLessThanOrEqualTo
from pipeline_defs.shared_steps import check_drift, feature_contract, preprocess, resolve_model

# What the model sees of a prepared record (row key hash, then the features): everything but the key. The joined
# output keeps the whole record, the score after it (and, with GenerateInferenceId, the inference id and time).
MODEL_INPUT_FILTER = "$[1:]"
KEEP_JOINED_RECORD = "$"
# A scheduled run scores what the producers keep current under <scoring_data_prefix>latest/.
SCHEDULED_FOLDER = "latest/"


def scoring_pipeline(name: str, settings: PipelineSettings, model_package: str = "latest") -> PipelineBuilder:
    """`model_package`: ModelPackageArn's default, the unit's pinned version or `latest` (config: scoring_model)."""
    p = PipelineBuilder(name, settings)
    # Nothing here is cached. A scheduled run reads the same URI while its data changes (the eval-only pipeline's
    # reason), and Transform's cache key holds ModelName, which CreateModel makes new in every execution: every later
    # step reads that execution's output.
    input_data = p.parameter(
        Parameter.INPUT_DATA_URI, f"s3://{settings.landing_bucket}/{settings.scoring_data_prefix}{SCHEDULED_FOLDER}"
    )
    model_arn = p.parameter(Parameter.MODEL_PACKAGE_ARN, model_package)
    max_drift_violations = p.float_parameter(Parameter.MAX_DRIFT_VIOLATIONS, 0.0)

    model = resolve_model(p, "ResolveModel", model_package=model_arn, require=True)
    prepared = preprocess(
        p, input_data, mode="score", outputs=["score"], cache=False, shards=str(settings.transform_instance_count)
    )
    created = p.model_from_package("CreateModel", model_package=model.report("Resolved", "model_package_arn"))
    transformed = p.transform(
        "Transform",
        model=created,
        data=prepared.output("score"),
        input_filter=MODEL_INPUT_FILTER,
        output_filter=KEEP_JOINED_RECORD,
    )
    summarized = p.processing(
        "Summarize",
        script="summarize_scores.py",
        cache=False,
        inputs={"scores": transformed.transform_output, "contract": feature_contract(p)},
        outputs=["summary", "scored"],
        arguments=cli(
            scores_dir=input_dir("scores"),
            contract=input_dir("contract"),
            score_column=SCORE_COLUMN,
            top_n=str(settings.scoring_top_n),
            output_dir=f"{PROCESSING_ROOT}/output",
        ),
        reports={"Summary": ("summary", "summary.json")},
    )
    # The same check, baseline and layout as the eval-only pipeline's and the endpoint's monitor: score, features.
    drift = check_drift(p, scored=summarized.output("scored"), baseline=model.report("Resolved", "baseline_uri"))
    drifted = p.fail(
        "DriftDetected",
        "Scored",
        summarized.report("Summary", "rows"),
        "rows with model package",
        model.report("Resolved", "model_package_arn"),
        "(scores kept); drift violations",
        drift.report("Drift", "violations"),
        "(MaxDriftViolations",
        max_drift_violations,
        ")",
    )
    p.gate(
        "NoDrift",
        all_of=[ConditionLessThanOrEqualTo(left=drift.report("Drift", "violations"), right=max_drift_violations)],
        if_true=[],
        if_false=[drifted],
    )
    return p
