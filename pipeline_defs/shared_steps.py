"""Steps both pipelines run, defined once: model resolution, preprocessing, the one evaluator, data quality; and the
eval-only pipeline's capture merge."""

from __future__ import annotations

from typing import Any

from pipeline_defs.contract import SCORE_COLUMN
from pipeline_defs.dsl import PROCESSING_ROOT, PipelineBuilder, Step, cli, input_dir, output_dir
from pipeline_defs.packaging import FEATURE_CONTRACT
from pipeline_defs.sdk import ExecutionVariables


def feature_contract(p: PipelineBuilder) -> str:
    """The S3 URI of the feature contract asset: an input of every step that reads it (so it is in their cache key)."""
    return p.settings.code_uri(FEATURE_CONTRACT)


def resolve_model(p: PipelineBuilder, name: str, *, model_package: Any, **options: Any) -> Step:
    """Looks the model package up in the registry at run time; never cached, approvals change its answer.

    Its `Resolved` report (resolved.json) names the package, its model data and its drift baseline.
    """
    fixed_outputs = {}
    if "no_incumbent_uri" in options:
        fixed_outputs["no-incumbent"] = options["no_incumbent_uri"]
        options["sentinel_dir"] = output_dir("no-incumbent")
    if "placeholder_uri" in options:
        fixed_outputs["placeholder"] = options.pop("placeholder_uri")
        options["placeholder_dir"] = output_dir("placeholder")
    return p.processing(
        name,
        script="resolve_model.py",
        cache=False,
        outputs=["resolved"],
        fixed_outputs=fixed_outputs,
        arguments=cli(
            group_name=p.settings.model_package_group_name,
            model_package=model_package,
            **options,
            output_dir=output_dir("resolved"),
        ),
        reports={"Resolved": ("resolved", "resolved.json")},
    )


def preprocess(p: PipelineBuilder, data: Any, *, mode: str, outputs: list[str], cache: bool, **options: Any) -> Step:
    """Enforces the feature contract; `outputs` are the data splits, plus `report` (what was dropped and why);
    `options`: more of preprocess.py's arguments (score mode's `shards`)."""
    return p.processing(
        "Preprocess",
        script="preprocess.py",
        cache=cache,
        inputs={"data": data, "contract": feature_contract(p)},
        # Each instance preprocesses its share of the data files (preprocess.py names its files after its host).
        instance_count=p.settings.preprocess_instance_count,
        sharded_inputs=["data"],
        outputs=[*outputs, "report"],
        arguments=cli(
            mode=mode,
            input_dir=input_dir("data"),
            contract=input_dir("contract"),
            **options,
            output_dir=f"{PROCESSING_ROOT}/output",
        ),
    )


def evaluate(
    p: PipelineBuilder,
    *,
    model: Any,
    test: Any,
    incumbent: Any = None,
    confidence_level: Any = None,
    quality_tolerance: float | None = None,
    allow_unlabelled: bool = False,
    registered_quality: Any = None,
    cache: bool,
) -> Step:
    """The one evaluator: candidate (and incumbent, if any, with its paired interval) on the same rows; with a
    `quality_tolerance`, also the model-quality constraints the endpoint's monitor checks; with `allow_unlabelled`,
    rows without a label are left out of the metrics (and labelled rows lacking a class say "not measured"); with
    `registered_quality` (the eval-only role: ResolveModel's model_quality_input_uri), the AUC's drop from the
    version's registered one is tested (evaluation.json auc_drop, auc_drop_alarm).
    Predicted labels (accuracy, f1, precision, recall) use the unit's model_quality_probability_threshold, the one
    Model Monitor's analyzer uses, so the constraints and the monitor's statistics count the same predictions."""
    inputs = {"model": model} | ({"incumbent": incumbent} if incumbent is not None else {}) | {"test": test}
    options: dict[str, Any] = {}
    if registered_quality is not None:
        inputs["registered_quality"] = registered_quality
        options["registered_quality_dir"] = input_dir("registered_quality")
    if confidence_level is not None:  # a pipeline parameter, or a fixed level as text
        options["confidence_level"] = (
            confidence_level if isinstance(confidence_level, str) else confidence_level.to_string()
        )
    if quality_tolerance is not None:
        options["quality_tolerance"] = str(quality_tolerance)
    options["probability_threshold"] = str(p.settings.model_quality_probability_threshold)
    if allow_unlabelled:
        options["allow_unlabelled"] = True
    return p.processing(
        "Evaluate",
        script="evaluate.py",
        cache=cache,
        inputs=inputs | {"contract": feature_contract(p)},
        outputs=["evaluation"],
        arguments=cli(
            model_dir=input_dir("model"),
            incumbent_dir=input_dir("incumbent"),
            test_dir=input_dir("test"),
            contract=input_dir("contract"),
            **options,
            output_dir=output_dir("evaluation"),
        ),
        reports={"Evaluation": ("evaluation", "evaluation.json")},
    )


def score(p: PipelineBuilder, *, model: Any, test: Any, cache: bool) -> Step:
    """The evaluator's scoring alone (evaluate.py --score-only): output `scored` holds the rows as the endpoint's
    monitor sees traffic, the model's score first, then the features. It depends on the model and the rows only, so
    a new incumbent re-runs Evaluate but not this step (nor the baseline computed from it)."""
    return p.processing(
        "Score",
        script="evaluate.py",
        cache=cache,
        inputs={"model": model, "test": test, "contract": feature_contract(p)},
        outputs=["scored"],
        arguments=cli(
            model_dir=input_dir("model"),
            test_dir=input_dir("test"),
            contract=input_dir("contract"),
            score_only=True,
            score_column=SCORE_COLUMN,
            output_dir=output_dir("scored"),
        ),
    )


def data_quality(
    p: PipelineBuilder,
    name: str,
    command: str,
    *,
    inputs: dict[str, Any],
    output: str,
    cache: bool = True,
    reports: dict[str, tuple[str, str]] | None = None,
    **options: Any,
) -> Step:
    """data_quality.py `command` on the `test` input (scored rows: the score column first, then the features), with
    the feature contract; its files go to `output`."""
    return p.processing(
        name,
        script="data_quality.py",
        cache=cache,
        inputs=inputs | {"contract": feature_contract(p)},
        outputs=[output],
        arguments=cli(
            command,
            data_dir=input_dir("test"),
            contract=input_dir("contract"),
            score_column=SCORE_COLUMN,
            **options,
            output_dir=output_dir(output),
        ),
        reports=reports,
    )


def check_drift(p: PipelineBuilder, *, scored: Any, baseline: Any) -> Step:
    """CheckDrift: `scored` rows (the score first, then the features: the endpoint's monitor's layout) against the
    resolved version's registered baseline folder; never cached (its inputs move with every run). Its `Drift` report
    (drift_report.json) holds `violations`."""
    return data_quality(
        p,
        "CheckDrift",
        "check",
        cache=False,
        inputs={"test": scored, "baseline": baseline},
        output="drift",
        baseline_dir=input_dir("baseline"),
        reports={"Drift": ("drift", "drift_report.json")},
    )


def merge_capture(p: PipelineBuilder, *, data: Any, ground_truth: Any, period_hours: Any, after: Step) -> Step:
    """merge_capture.py: `data` is a labelled dataset (passed through) or an endpoint's data capture, merged with the
    ground truth by inference id into the labelled (or not yet labelled) rows Preprocess reads. Never cached: a
    capture prefix keeps its URI while traffic arrives. `after`: the step that writes the ground-truth placeholder."""
    return p.processing(
        "MergeCapture",
        script="merge_capture.py",
        cache=False,
        inputs={"data": data, "ground_truth": ground_truth, "contract": feature_contract(p)},
        outputs=["data", "report"],
        depends_on=[after],
        arguments=cli(
            data_dir=input_dir("data"),
            ground_truth_dir=input_dir("ground_truth"),
            contract=input_dir("contract"),
            score_column=SCORE_COLUMN,
            period_end=ExecutionVariables.START_DATETIME,
            period_hours=period_hours.to_string(),
            output_dir=f"{PROCESSING_ROOT}/output",
        ),
        reports={"Merge": ("report", "merge_report.json")},
    )
