"""Eval-only pipeline: the approved model, the same evaluator, new data, drift against its registered baseline."""

from __future__ import annotations

from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo

from pipeline_defs.dsl import PROCESSING_ROOT, PipelineBuilder, PipelineSettings, input_dir, output_dir


def evaluation_pipeline(name: str, settings: PipelineSettings) -> PipelineBuilder:
    p = PipelineBuilder(name, settings)
    # Scheduled runs evaluate whatever is under the evaluation prefix now. That URI does not change when its
    # data does, so no step here is cached: a cache hit would silently report on last week's data.
    input_data = p.parameter("InputDataUri", f"s3://{settings.landing_bucket}/{settings.evaluation_data_prefix}")
    model_package = p.parameter("ModelPackageArn", "latest")
    minimum_score = p.float_parameter("MinimumScore", settings.minimum_score)
    max_drift_violations = p.float_parameter("MaxDriftViolations", 0.0)

    model = p.processing(
        "ResolveModel",
        script="resolve_model.py",
        cache=False,
        outputs=["resolved"],
        arguments=[
            "--group-name",
            settings.model_package_group_name,
            "--model-package",
            model_package,
            "--require",
            "--output-dir",
            output_dir("resolved"),
        ],
        reports={"Resolved": ("resolved", "resolved.json")},
    )
    prepared = p.processing(
        "Preprocess",
        script="preprocess.py",
        cache=False,
        inputs={"data": input_data},
        outputs=["test"],
        arguments=["--mode", "evaluate", "--input-dir", input_dir("data"), "--output-dir", f"{PROCESSING_ROOT}/output"],
    )
    evaluated = p.processing(
        "Evaluate",
        script="evaluate.py",
        cache=False,
        inputs={"model": model.report("Resolved", "model_data_url"), "test": prepared.output("test")},
        outputs=["evaluation"],
        arguments=[
            "--model-dir",
            input_dir("model"),
            "--incumbent-dir",
            input_dir("incumbent"),
            "--test-dir",
            input_dir("test"),
            "--output-dir",
            output_dir("evaluation"),
        ],
        reports={"Evaluation": ("evaluation", "evaluation.json")},
    )
    drift = p.processing(
        "CheckDrift",
        script="data_quality.py",
        cache=False,
        inputs={"test": prepared.output("test"), "baseline": model.report("Resolved", "baseline_uri")},
        outputs=["drift"],
        arguments=[
            "check",
            "--data-dir",
            input_dir("test"),
            "--baseline-dir",
            input_dir("baseline"),
            "--output-dir",
            output_dir("drift"),
        ],
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
