"""Steps both pipelines run, defined once: model resolution, preprocessing and the one evaluator."""

from __future__ import annotations

from typing import Any

from pipeline_defs.dsl import PROCESSING_ROOT, PipelineBuilder, Step, cli, input_dir, output_dir


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
    return p.processing(
        "Preprocess",
        script="preprocess.py",
        cache=cache,
        inputs={"data": data},
        outputs=outputs,
        arguments=cli(mode=mode, input_dir=input_dir("data"), output_dir=f"{PROCESSING_ROOT}/output"),
    )


def evaluate(p: PipelineBuilder, *, model: Any, test: Any, incumbent: Any = None, cache: bool) -> Step:
    """The one evaluator: candidate (and incumbent, if any) on the same rows; report `Evaluation`."""
    inputs = {"model": model} | ({"incumbent": incumbent} if incumbent is not None else {}) | {"test": test}
    return p.processing(
        "Evaluate",
        script="evaluate.py",
        cache=cache,
        inputs=inputs,
        outputs=["evaluation"],
        arguments=cli(
            model_dir=input_dir("model"),
            incumbent_dir=input_dir("incumbent"),
            test_dir=input_dir("test"),
            output_dir=output_dir("evaluation"),
        ),
        reports={"Evaluation": ("evaluation", "evaluation.json")},
    )
