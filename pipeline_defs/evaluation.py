"""Eval-only pipeline: the approved model, the same evaluator, new data, drift against its registered baseline."""

from __future__ import annotations

from pipeline_defs.contract import Parameter
from pipeline_defs.dsl import PipelineBuilder, PipelineSettings, input_dir
from pipeline_defs.sdk import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
from pipeline_defs.shared_steps import data_quality, evaluate, preprocess, resolve_model


def evaluation_pipeline(name: str, settings: PipelineSettings) -> PipelineBuilder:
    p = PipelineBuilder(name, settings)
    # Scheduled runs evaluate whatever is under the evaluation prefix now. That URI does not change when its
    # data does, so no step here is cached: a cache hit would silently report on last week's data.
    input_data = p.parameter(
        Parameter.INPUT_DATA_URI, f"s3://{settings.landing_bucket}/{settings.evaluation_data_prefix}"
    )
    model_package = p.parameter(Parameter.MODEL_PACKAGE_ARN, "latest")
    minimum_score = p.float_parameter(Parameter.MINIMUM_SCORE, settings.minimum_score)
    max_drift_violations = p.float_parameter(Parameter.MAX_DRIFT_VIOLATIONS, 0.0)

    model = resolve_model(p, "ResolveModel", model_package=model_package, require=True)
    prepared = preprocess(p, input_data, mode="evaluate", outputs=["test"], cache=False)
    evaluated = evaluate(p, model=model.report("Resolved", "model_data_url"), test=prepared.output("test"), cache=False)
    drift = data_quality(
        p,
        "CheckDrift",
        "check",
        cache=False,
        inputs={"test": prepared.output("test"), "baseline": model.report("Resolved", "baseline_uri")},
        output="drift",
        baseline_dir=input_dir("baseline"),
        reports={"Drift": ("drift", "drift_report.json")},
    )
    unhealthy = p.fail(
        "ModelUnhealthy",
        "Model package",
        model.report("Resolved", "model_package_arn"),
        "roc_auc",
        evaluated.report("Evaluation", "candidate_score"),
        "(MinimumScore",
        minimum_score,
        "); drift violations",
        drift.report("Drift", "violations"),
        "(MaxDriftViolations",
        max_drift_violations,
        ")",
    )
    p.gate(
        "ModelHealthy",
        all_of=[
            ConditionGreaterThanOrEqualTo(left=evaluated.report("Evaluation", "candidate_score"), right=minimum_score),
            ConditionLessThanOrEqualTo(left=drift.report("Drift", "violations"), right=max_drift_violations),
        ],
        if_true=[],
        if_false=[unhealthy],
    )
    return p
