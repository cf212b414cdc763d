"""The pipeline definitions of a unit (training, eval-only, scoring), built from its config, with placeholders
for deploy-time values.

`build_definitions` builds them with the SageMaker SDK (about 2 s to import, 1 s to build). `cdk synth` calls
`definitions_for_synth` instead, which serves them from a cache when nothing that shapes them changed, so a synth
with unchanged pipelines never imports the SDK (the same for the image URI the execution role needs). The cache key
is the SHA-256 of everything a definition is a function of:
- every file under `pipeline_defs/` that can take part in building (the DSL, both pipelines, the SDK wrapper with
  its patches, the contract, the step scripts, this module; not the local engine or the sample data);
- the unit's config (every field), the scoring pipeline's default model (the pin) and the code URIs
  (content-addressed: a changed step script is a new URI);
- the name and version of every installed distribution (the SDK and all it depends on) and the Python version;
- `CACHE_FORMAT`, bumped if the entry's layout changes.
An entry stores its inputs next to its value and is used only when they equal the current ones, so even a hash
collision cannot serve a definition built for other inputs; an unreadable entry is rebuilt. Inputs that hold an
unresolved CDK token (its text differs from process to process) are never cached. Entries live in
`<checkout>/.cache/synth/`, written atomically (a temporary file renamed over the entry), so parallel synths and
test workers can share them; `make clean` removes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from config import EnvironmentConfig
from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.contract import DeployTimeValue

if TYPE_CHECKING:
    from pipeline_defs.dsl import PipelineSettings

# Shaped like the real values (the SDK parses ARNs and bucket names), and replaced by CloudFormation.
ROLE_ARN_PLACEHOLDER = "arn:aws:iam::000000000000:role/PLACEHOLDER-PipelineExecutionRole"
KMS_KEY_ARN_PLACEHOLDER = "arn:aws:kms:us-east-1:000000000000:key/PLACEHOLDER-DataKey"
ARTIFACTS_BUCKET_PLACEHOLDER = "placeholder-artifacts-bucket"
LANDING_BUCKET_PLACEHOLDER = "placeholder-landing-bucket"
# {Fn::Sub variable of the deployed definition: the placeholder it replaces}
PLACEHOLDERS: dict[DeployTimeValue, str] = {
    DeployTimeValue.PIPELINE_ROLE_ARN: ROLE_ARN_PLACEHOLDER,
    DeployTimeValue.DATA_KEY_ARN: KMS_KEY_ARN_PLACEHOLDER,
    DeployTimeValue.ARTIFACTS_BUCKET: ARTIFACTS_BUCKET_PLACEHOLDER,
    DeployTimeValue.LANDING_BUCKET: LANDING_BUCKET_PLACEHOLDER,
}

PACKAGE_DIR = Path(__file__).resolve().parent
CACHE_DIR = PACKAGE_DIR.parent / ".cache" / "synth"
CACHE_FORMAT = 1
# Entries kept per kind: far more than the units and sandboxes a checkout switches between (each entry ~30 KB).
CACHE_ENTRIES_PER_KIND = 64
# Folders of pipeline_defs/ that never take part in building a definition.
_NOT_BUILD_INPUTS = ("local", "sample_data", "__pycache__")
_UNRESOLVED_TOKEN = re.compile(r"\$\{Token\[")
T = TypeVar("T")


def pipeline_settings(config: EnvironmentConfig, code_uris: Mapping[str, str]) -> PipelineSettings:
    from pipeline_defs.dsl import PipelineSettings, RetrySettings

    return PipelineSettings(
        region=config.region,
        role_arn=ROLE_ARN_PLACEHOLDER,
        kms_key_arn=KMS_KEY_ARN_PLACEHOLDER,
        artifacts_bucket=ARTIFACTS_BUCKET_PLACEHOLDER,
        landing_bucket=LANDING_BUCKET_PLACEHOLDER,
        evaluation_data_prefix=config.evaluation_data_prefix,
        model_package_group_name=config.model_package_group_name,
        processing_instance_type=config.processing_instance_type,
        preprocess_instance_count=config.preprocess_instance_count,
        transform_instance_type=config.transform_instance_type,
        transform_instance_count=config.transform_instance_count,
        scoring_data_prefix=config.scoring_data_prefix,
        scoring_top_n=config.scoring_top_n,
        training_instance_type=config.training_instance_type,
        training_engine=config.training_engine,
        training_instance_count=config.training_instance_count,
        cache_expire_after=config.cache_expire_after,
        minimum_score=config.minimum_score,
        max_regression=config.max_regression,
        confidence_level=config.confidence_level,
        default_approval_status=config.model_approval_status,
        code_uris=code_uris,
        tags=config.tags,
        model_quality_tolerance=config.model_quality_tolerance,
        model_quality_probability_threshold=config.model_quality_probability_threshold,
        retry=RetrySettings(
            max_attempts=config.step_retry_max_attempts,
            interval_seconds=config.step_retry_interval_seconds,
            backoff_rate=config.step_retry_backoff_rate,
        ),
    )


def build_definitions(
    config: EnvironmentConfig, code_uris: Mapping[str, str], scoring_model_package: str = "latest"
) -> dict[str, str]:
    """{pipeline name: definition JSON}, built now with the SDK; deterministic for the same inputs.

    `scoring_model_package`: the scoring pipeline's default model, the unit's pinned version (its package ARN) or
    `latest` (config.scoring_model decides which the caller passes: `scoring_model_default`)."""
    from pipeline_defs import sdk
    from pipeline_defs.evaluation import evaluation_pipeline
    from pipeline_defs.scoring import scoring_pipeline
    from pipeline_defs.training import training_pipeline

    settings = pipeline_settings(config, code_uris)
    with sdk.offline_build():
        return {
            config.training_pipeline_name: training_pipeline(config.training_pipeline_name, settings).definition(),
            config.evaluation_pipeline_name: evaluation_pipeline(
                config.evaluation_pipeline_name, settings
            ).definition(),
            config.scoring_pipeline_name: scoring_pipeline(
                config.scoring_pipeline_name, settings, scoring_model_package
            ).definition(),
        }


def scoring_model_default(config: EnvironmentConfig, pinned_package_arn: str | None) -> str:
    """The scoring pipeline's ModelPackageArn default: the pinned version when config.scoring_model is `pinned` and
    the unit pins one, else `latest` (the latest Approved version, resolved at run time)."""
    return pinned_package_arn if config.scoring_model == "pinned" and pinned_package_arn else "latest"


def definitions_for_synth(
    config: EnvironmentConfig,
    code_uris: Mapping[str, str],
    cache_dir: Path = CACHE_DIR,
    scoring_model_package: str = "latest",
) -> dict[str, str]:
    """`build_definitions`, served from the cache when every input is unchanged (see the module docstring)."""
    inputs = {
        "config": dataclasses.asdict(config),
        "code_uris": dict(code_uris),
        "scoring_model_package": scoring_model_package,
    }

    def build() -> dict[str, str]:
        return build_definitions(config, code_uris, scoring_model_package)

    built: dict[str, str] = cached("definitions", inputs, build, cache_dir)
    return built


def sklearn_image_uri(region: str, cache_dir: Path = CACHE_DIR) -> str:
    """The scikit-learn image URI (`sdk.sklearn_image_uri`); from the cache when region and SDK are unchanged."""
    return _image_uri("sklearn_image_uri", region, cache_dir)


def model_monitor_image_uri(region: str, cache_dir: Path = CACHE_DIR) -> str:
    """Model Monitor's analyzer image URI (`sdk.model_monitor_image_uri`), cached the same way."""
    return _image_uri("model_monitor_image_uri", region, cache_dir)


def _image_uri(function: str, region: str, cache_dir: Path) -> str:
    def build() -> str:
        from pipeline_defs import sdk

        built: str = getattr(sdk, function)(region)
        return built

    uri: str = cached(function.removesuffix("_uri").replace("_", "-") + "-uri", {"region": region}, build, cache_dir)
    return uri


def cached(kind: str, inputs: Mapping[str, Any], build: Callable[[], T], cache_dir: Path = CACHE_DIR) -> T:
    """`build()`'s JSON-serialisable value for `inputs`, read from `cache_dir` or built and stored there."""
    full_inputs = {"kind": kind, "inputs": inputs, "environment": build_environment()}
    text = json.dumps(full_inputs, sort_keys=True, separators=(",", ":"), default=str)
    if _UNRESOLVED_TOKEN.search(text):
        return build()
    entry_path = cache_dir / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()}.json"
    stored_inputs = json.loads(text)
    try:
        entry = json.loads(entry_path.read_text())
        if entry["inputs"] == stored_inputs:
            value: T = entry["value"]
            with contextlib.suppress(OSError):
                os.utime(entry_path)  # recently used: kept by the pruning below
            return value
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no entry yet, or an unreadable one: build and (re)write it
    value = build()
    _store(entry_path, json.dumps({"inputs": stored_inputs, "value": value}, sort_keys=True))
    _prune(cache_dir, kind)
    return value


def _prune(cache_dir: Path, kind: str) -> None:
    """Delete all but the CACHE_ENTRIES_PER_KIND most recently used entries of `kind` (each edit of an input adds
    one)."""
    entries = []
    for path in cache_dir.glob(f"{kind}-*.json"):
        with contextlib.suppress(OSError):  # another process may prune at the same time
            entries.append((path.stat().st_mtime, path))
    for _, path in sorted(entries, reverse=True)[CACHE_ENTRIES_PER_KIND:]:
        with contextlib.suppress(OSError):
            path.unlink()


@functools.cache
def build_environment() -> dict[str, Any]:
    """What shapes every definition besides the unit's inputs: the build code, the installed packages, Python."""
    sources = sorted(
        path
        for path in PACKAGE_DIR.rglob("*")
        if path.is_file()
        and not set(path.relative_to(PACKAGE_DIR).parts) & set(_NOT_BUILD_INPUTS)
        and path.suffix != ".pyc"
    )
    digest = hashlib.sha256()
    for path in sources:
        digest.update(f"{path.relative_to(PACKAGE_DIR).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {
        "format": CACHE_FORMAT,
        "sources": digest.hexdigest(),
        "distributions": hashlib.sha256("\n".join(installed_distributions()).encode()).hexdigest(),
        "python": sys.version,
    }


def installed_distributions() -> list[str]:
    """The metadata folders (`<name>-<version>.dist-info`, `.egg-info`) on sys.path, where importlib.metadata finds
    distributions: installing, removing or upgrading a package renames one. Listing folders takes ~1 ms; reading every
    distribution's METADATA took ~0.2 s of each synth. A set: the checkout's own egg-info can be found twice."""
    found: set[str] = set()
    for entry in sys.path:
        folder = Path(entry or ".")
        if folder.is_dir():
            found.update(path.name for path in folder.iterdir() if path.name.endswith((".dist-info", ".egg-info")))
    return sorted(found)


def _store(path: Path, text: str) -> None:
    # A read-only checkout still synthesizes: it only builds every time.
    with contextlib.suppress(OSError):
        write_atomically(path, text)
