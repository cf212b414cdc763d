"""Training pipeline: Preprocess -> Train -> Evaluate (vs the approved model) + Score -> Baseline -> Register | Fail."""

from __future__ import annotations

from pipeline_defs import sdk
from pipeline_defs.contract import SENTINELS_PREFIX, XGBOOST_ENGINE, Parameter
from pipeline_defs.dsl import PipelineBuilder, PipelineSettings
from pipeline_defs.packaging import INFERENCE_TARBALL
from pipeline_defs.sdk import (
    ConditionEquals,
    ConditionGreaterThanOrEqualTo,
    ConditionLessThanOrEqualTo,
    ConditionOr,
    ExecutionVariables,
)
from pipeline_defs.shared_steps import data_quality, evaluate, feature_contract, preprocess, resolve_model, score

HYPERPARAMETERS = {"n-estimators": 150, "max-depth": 3, "learning-rate": 0.1, "seed": 42}


def training_pipeline(name: str, settings: PipelineSettings) -> PipelineBuilder:
    p = PipelineBuilder(name, settings)
    input_data = p.parameter(Parameter.INPUT_DATA_URI)
    # The gate's defaults come from the unit's config, the one place they are decided (config/settings.py).
    max_regression = p.float_parameter(Parameter.MAX_REGRESSION, settings.max_regression)
    minimum_score = p.float_parameter(Parameter.MINIMUM_SCORE, settings.minimum_score)
    approval_status = p.parameter(Parameter.MODEL_APPROVAL_STATUS, settings.default_approval_status)
    confidence_level = p.float_parameter(Parameter.CONFIDENCE_LEVEL, settings.confidence_level)

    # With no approved model, Evaluate reads a fixed sentinel prefix, so its cache key stays stable on first runs.
    no_incumbent = f"s3://{settings.artifacts_bucket}/{SENTINELS_PREFIX}{name}/no-incumbent"
    incumbent = resolve_model(p, "ResolveIncumbent", model_package="latest", no_incumbent_uri=no_incumbent)
    prepared = preprocess(p, input_data, mode="split", outputs=["train", "validation", "test"], cache=True)
    # The engine (README, "Training engines"): both scripts ship in train.tar.gz and write the same model artifact;
    # XGBoost's instances each read their share of Preprocess's training files (validation whole on each).
    xgboost = settings.training_engine == XGBOOST_ENGINE
    trained = p.training(
        "Train",
        script="train_xgboost.py" if xgboost else "train.py",
        source_tarball="train.tar.gz",
        image=sdk.xgboost_image_uri(settings.region) if xgboost else None,
        instance_count=settings.training_instance_count,
        sharded_channels=("train",) if xgboost else (),
        channels={
            "train": prepared.output("train"),
            "validation": prepared.output("validation"),
            "contract": feature_contract(p),
        },
        content_types={"contract": "application/json"},
        hyperparameters=HYPERPARAMETERS,
        metrics={"validation:roc_auc": r"validation_roc_auc=([0-9.]+)"},
    )
    # The confidence level is an argument of Evaluate (its interval), MaxRegression only of the gate.
    evaluated = evaluate(
        p,
        model=trained.model_artifacts,
        incumbent=incumbent.report("Resolved", "model_data_url"),
        test=prepared.output("test"),
        confidence_level=confidence_level,
        quality_tolerance=settings.model_quality_tolerance,
        cache=True,
    )
    # Drift baselines come from the same held-out slice the models are compared on, laid out as the endpoint's monitor
    # reads traffic: the candidate's score, then the features.
    scored = score(p, model=trained.model_artifacts, test=prepared.output("test"), cache=True)
    baseline = data_quality(p, "Baseline", "baseline", inputs={"test": scored.output("scored")}, output="baseline")

    def evaluation(path: str):
        return evaluated.report("Evaluation", path)

    register = p.register(
        "RegisterModel",
        model_data=trained.model_artifacts,
        approval_status=approval_status,
        inference_script="inference.py",
        inference_tarball=INFERENCE_TARBALL,
        model_statistics=evaluated.file("evaluation", "model_quality.json"),
        model_constraints=evaluated.file("evaluation", "model_quality_constraints.json"),
        explainability=evaluated.file("evaluation", "explainability.json"),
        data_statistics=baseline.file("baseline", "statistics.json"),
        data_constraints=baseline.file("baseline", "constraints.json"),
        # Which data, run, code and settings produced this version, and what it was compared with (mlops registry show).
        lineage={
            "dataset": input_data,
            "execution": ExecutionVariables.PIPELINE_EXECUTION_ARN,
            "candidate-roc-auc": p.text(evaluation("candidate_score")),
            "incumbent-version": p.text(incumbent.report("Resolved", "model_package_version")),
            "incumbent-roc-auc": p.text(evaluation("incumbent_score")),
            **{f"hp-{name}": str(value) for name, value in HYPERPARAMETERS.items()},
            **p.code_versions(),
        },
    )
    rejected = p.fail(
        "RejectCandidate",
        "Candidate not registered:",
        evaluation("summary"),
        "Limits: the interval's lower bound at most MaxRegression",
        max_regression,
        "and candidate roc_auc at least MinimumScore",
        minimum_score,
    )
    p.gate(
        "CandidateNotWorse",
        all_of=[
            # Rejected only when the regression is credibly above the margin: the interval's lower bound exceeds
            # it. MaxRegression is compared here, not passed to Evaluate, so changing it keeps Evaluate's cache.
            ConditionOr(
                conditions=[
                    ConditionEquals(left=evaluation("has_incumbent"), right=False),
                    ConditionLessThanOrEqualTo(left=evaluation("regression_lower_bound"), right=max_regression),
                ]
            ),
            ConditionGreaterThanOrEqualTo(left=evaluation("candidate_score"), right=minimum_score),
        ],
        if_true=[register],
        if_false=[rejected],
    )
    return p
