"""Eval-only pipeline: the approved model, the same evaluator, new data or captured traffic (merged with its ground
truth), drift against its registered baseline."""

from __future__ import annotations

from pipeline_defs.contract import SENTINELS_PREFIX, Parameter
from pipeline_defs.dsl import PipelineBuilder, PipelineSettings
from pipeline_defs.sdk import ConditionEquals, ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo, ConditionOr
from pipeline_defs.shared_steps import check_drift, evaluate, merge_capture, preprocess, resolve_model, score


def evaluation_pipeline(name: str, settings: PipelineSettings) -> PipelineBuilder:
    p = PipelineBuilder(name, settings)
    # Scheduled runs evaluate whatever is under the evaluation prefix now. That URI does not change when its
    # data does, so no step here is cached: a cache hit would silently report on last week's data.
    # InputDataUri is a labelled dataset, or an endpoint's data capture (s3://<artifacts>/data-capture/<endpoint>/):
    # then MergeCapture joins it with GroundTruthUri's labels by inference id, over the CapturePeriodHours before the
    # run started (0: all of it).
    input_data = p.parameter(
        Parameter.INPUT_DATA_URI, f"s3://{settings.landing_bucket}/{settings.evaluation_data_prefix}"
    )
    placeholder = f"s3://{settings.artifacts_bucket}/{SENTINELS_PREFIX}{name}/no-ground-truth/"
    ground_truth = p.parameter(Parameter.GROUND_TRUTH_URI, placeholder)
    period_hours = p.float_parameter(Parameter.CAPTURE_PERIOD_HOURS, 0.0)
    model_package = p.parameter(Parameter.MODEL_PACKAGE_ARN, "latest")
    minimum_score = p.float_parameter(Parameter.MINIMUM_SCORE, settings.minimum_score)
    max_drift_violations = p.float_parameter(Parameter.MAX_DRIFT_VIOLATIONS, 0.0)

    # A version that registered no model-quality statistics hands Evaluate the placeholder: its drop test says "none".
    model = resolve_model(
        p,
        "ResolveModel",
        model_package=model_package,
        require=True,
        placeholder_uri=placeholder,
        no_quality_uri=placeholder,
    )
    merged = merge_capture(p, data=input_data, ground_truth=ground_truth, period_hours=period_hours, after=model)
    prepared = preprocess(p, merged.output("data"), mode="evaluate", outputs=["test"], cache=False)
    evaluated = evaluate(
        p,
        model=model.report("Resolved", "model_data_url"),
        test=prepared.output("test"),
        allow_unlabelled=True,
        # The health check compares the upper end of the AUC's interval with MinimumScore (README, "The eval-only
        # pipeline"): unhealthy only when the model is credibly below the floor, not on a small sample's noise; and it
        # fails a credible drop from the version's registered AUC (auc_drop_alarm), the test `mlops monitor --local`
        # applies to captured traffic, at the same level.
        registered_quality=model.report("Resolved", "model_quality_input_uri"),
        confidence_level=str(settings.confidence_level),
        cache=False,
    )

    def evaluation(path: str):
        return evaluated.report("Evaluation", path)

    # The same baseline and layout as the endpoint's monitor: the approved model's score first, then the features.
    scored = score(p, model=model.report("Resolved", "model_data_url"), test=prepared.output("test"), cache=False)
    drift = check_drift(p, scored=scored.output("scored"), baseline=model.report("Resolved", "baseline_uri"))
    unhealthy = p.fail(
        "ModelUnhealthy",
        "Model package",
        model.report("Resolved", "model_package_arn"),
        ":",
        evaluation("summary"),
        "MinimumScore",
        minimum_score,
        "; drift violations",
        drift.report("Drift", "violations"),
        "(MaxDriftViolations",
        max_drift_violations,
        ")",
    )
    p.gate(
        "ModelHealthy",
        all_of=[
            # Unlabelled traffic (no ground truth yet) is checked for drift only: the score is then not measured.
            ConditionOr(
                conditions=[
                    ConditionEquals(left=evaluation("has_labels"), right=False),
                    ConditionGreaterThanOrEqualTo(left=evaluation("candidate_score_upper_bound"), right=minimum_score),
                ]
            ),
            # False also without labels or registered statistics (evaluation.json's auc_drop says why).
            ConditionEquals(left=evaluation("auc_drop_alarm"), right=False),
            ConditionLessThanOrEqualTo(left=drift.report("Drift", "violations"), right=max_drift_violations),
        ],
        if_true=[],
        if_false=[unhealthy],
    )
    return p
