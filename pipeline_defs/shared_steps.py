"""Steps both pipelines run, defined once: model resolution, preprocessing, the one evaluator, data quality."""

from __future__ import annotations

from typing import Any

from pipeline_defs.dsl import PROCESSING_ROOT, PipelineBuilder, Step, cli, input_dir, output_dir
from pipeline_defs.packaging import FEATURE_CONTRACT


def feature_contract(p: PipelineBuilder) -> str:
    """The S3 URI of the feature contract asset: an input of every step that reads it (so it is in their cache key)."""
    return p.settings.code_uri(FEATURE_CONTRACT)


def resolve_model(p: PipelineBuilder, name: str, *, model_package: Any, **options: Any) -> Step:
    """Looks the model package up in the registry at run time; never cached, approvals change its answer.

    Its `Resolved` report (resolved.json) names the package, its model data and its drift baseline.
    """
    fixed_outputs = {"no-incumbent": options["no_incumbent_uri"]} if "no_incumbent_uri" in options else {}
    if fixed_outputs:
        options["sentinel_dir"] = output_dir("no-incumbent")
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


def preprocess(p: PipelineBuilder, data: Any, *, mode: str, outputs: list[str], cache: bool) -> Step:
    """Enforces the feature contract; `outputs` are the data splits, plus `report` (what was dropped and why)."""
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
    cache: bool,
) -> Step:
    """The one evaluator: candidate (and incumbent, if any, with its paired interval) on the same rows; with a
    `quality_tolerance`, also the model-quality constraints the endpoint's monitor checks."""
    inputs = {"model": model} | ({"incumbent": incumbent} if incumbent is not None else {}) | {"test": test}
    confidence = {"confidence_level": confidence_level.to_string()} if confidence_level is not None else {}
    if quality_tolerance is not None:
        confidence["quality_tolerance"] = str(quality_tolerance)
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
            **confidence,
            output_dir=output_dir("evaluation"),
        ),
        reports={"Evaluation": ("evaluation", "evaluation.json")},
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
    """data_quality.py `command` on the `test` input, with the feature contract; its files go to `output`."""
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
            **options,
            output_dir=output_dir(output),
        ),
        reports=reports,
    )
