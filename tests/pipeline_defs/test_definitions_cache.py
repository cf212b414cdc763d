"""The synth-time definitions cache: byte-identical to a fresh build, never served for other inputs, no SDK on a hit."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config import load_config
from pipeline_defs import definitions
from pipeline_defs.definitions import build_definitions, cached, definitions_for_synth
from pipeline_defs.packaging import content_addressed_uris

pytestmark = pytest.mark.heavy(seconds=5)  # imports the app and the SDK in fresh processes (tests/conftest.py)

ASSETS_BUCKET = "cdk-hnb659fds-assets-111111111111-eu-west-1"
REPO_ROOT = Path(__file__).resolve().parents[2]


class CountingBuild:
    """A build function that records how often the cache had to call it."""

    def __init__(self, value: object) -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def test_a_cached_definition_is_byte_identical_to_a_fresh_build(tmp_path) -> None:
    config, uris = load_config("staging"), content_addressed_uris(ASSETS_BUCKET)
    fresh = build_definitions(config, uris)

    first = definitions_for_synth(config, uris, cache_dir=tmp_path)  # a miss: built and stored
    [entry] = tmp_path.glob("definitions-*.json")
    second = definitions_for_synth(config, uris, cache_dir=tmp_path)  # a hit: read back

    assert first == fresh
    assert second == fresh
    assert json.loads(entry.read_text())["value"] == fresh


def test_the_same_inputs_hit_and_every_changed_input_misses(tmp_path) -> None:
    build = CountingBuild({"pipeline": "{}"})
    inputs = {"config": {"minimum_score": 0.7}, "code_uris": {"train.py": "s3://assets/aaa.py"}}

    cached("definitions", inputs, build, tmp_path)
    cached("definitions", inputs, build, tmp_path)
    assert build.calls == 1

    for changed in (
        {**inputs, "config": {"minimum_score": 0.71}},
        {**inputs, "code_uris": {"train.py": "s3://assets/bbb.py"}},
        {**inputs, "config": {"minimum_score": 0.7, "region": "eu-west-2"}},
    ):
        calls = build.calls
        cached("definitions", changed, build, tmp_path)
        assert build.calls == calls + 1, changed
    assert cached("sklearn-image-uri", inputs, CountingBuild("other kind"), tmp_path) == "other kind"


@pytest.mark.parametrize("what", ["sources", "distributions", "python", "format"])
def test_a_changed_build_environment_misses(tmp_path, monkeypatch, what) -> None:
    """Pipeline code, the SDK or any installed package, the Python version: each is part of the key."""
    build = CountingBuild("value")
    cached("kind", {"a": 1}, build, tmp_path)
    environment = dict(definitions.build_environment())
    monkeypatch.setattr(definitions, "build_environment", lambda: {**environment, what: "something else"})

    cached("kind", {"a": 1}, build, tmp_path)

    assert build.calls == 2


def test_the_build_environment_follows_the_pipeline_code(tmp_path, monkeypatch) -> None:
    package = tmp_path / "pipeline_defs"
    (package / "local").mkdir(parents=True)
    (package / "dsl.py").write_text("STEP = 1\n")
    (package / "local" / "runner.py").write_text("RUNNER = 1\n")
    monkeypatch.setattr(definitions, "PACKAGE_DIR", package)

    def fingerprint() -> str:
        definitions.build_environment.cache_clear()
        return str(definitions.build_environment()["sources"])

    try:
        original = fingerprint()
        (package / "local" / "runner.py").write_text("RUNNER = 2\n")  # the local engine builds nothing
        assert fingerprint() == original
        (package / "dsl.py").write_text("STEP = 2\n")
        assert fingerprint() != original
    finally:
        definitions.build_environment.cache_clear()


def test_an_entry_for_other_inputs_is_never_served_even_under_the_same_name(tmp_path) -> None:
    cached("kind", {"a": 1}, CountingBuild("for a=1"), tmp_path)
    [entry] = tmp_path.glob("kind-*.json")
    stored = json.loads(entry.read_text())
    stored["inputs"]["inputs"] = {"a": 2}  # as if another input set had hashed to this name
    entry.write_text(json.dumps(stored))

    assert cached("kind", {"a": 1}, CountingBuild("rebuilt"), tmp_path) == "rebuilt"


def test_an_unreadable_entry_is_rebuilt_and_replaced(tmp_path) -> None:
    cached("kind", {"a": 1}, CountingBuild("value"), tmp_path)
    [entry] = tmp_path.glob("kind-*.json")
    entry.write_text('{"inputs": ')  # truncated

    assert cached("kind", {"a": 1}, CountingBuild("value again"), tmp_path) == "value again"
    assert json.loads(entry.read_text())["value"] == "value again"


def test_only_the_most_recently_used_entries_of_a_kind_are_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(definitions, "CACHE_ENTRIES_PER_KIND", 3)
    for number in range(3):
        cached("kind", {"a": number}, CountingBuild(number), tmp_path)
        cached("other", {"a": number}, CountingBuild(number), tmp_path)
    for path in tmp_path.glob("kind-*.json"):  # used long ago, a=0 first
        number = json.loads(path.read_text())["inputs"]["inputs"]["a"]
        os.utime(path, (1_000 + number, 1_000 + number))
    hit = CountingBuild("a hit never builds")
    assert cached("kind", {"a": 0}, hit, tmp_path) == 0 and hit.calls == 0  # a=0 is now the most recently used

    cached("kind", {"a": 3}, CountingBuild(3), tmp_path)  # a 4th entry: the least recently used one goes

    kept = {json.loads(path.read_text())["inputs"]["inputs"]["a"] for path in tmp_path.glob("kind-*.json")}
    assert kept == {0, 2, 3}
    assert len(list(tmp_path.glob("other-*.json"))) == 3  # another kind is pruned on its own


def test_inputs_with_an_unresolved_cdk_token_are_never_cached(tmp_path) -> None:
    build = CountingBuild("value")
    inputs = {"code_uris": {"train.py": "s3://${Token[AWS.AccountId.5]}/x.py"}}

    cached("kind", inputs, build, tmp_path)
    cached("kind", inputs, build, tmp_path)

    assert build.calls == 2
    assert not list(tmp_path.iterdir())


def test_a_cache_hit_never_imports_the_sagemaker_sdk(tmp_path) -> None:
    """The point of the cache: with unchanged inputs, synth skips the SDK import (about 2 s) and the build."""
    config, uris = load_config("dev"), content_addressed_uris(ASSETS_BUCKET)
    definitions_for_synth(config, uris, cache_dir=tmp_path)
    definitions.sklearn_image_uri(config.region, cache_dir=tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from config import load_config
        from pipeline_defs import definitions
        from pipeline_defs.packaging import content_addressed_uris
        config, cache = load_config("dev"), Path({str(tmp_path)!r})
        built = definitions.definitions_for_synth(config, content_addressed_uris({ASSETS_BUCKET!r}), cache)
        definitions.sklearn_image_uri(config.region, cache)
        print(sorted(name for name in sys.modules if name.startswith("sagemaker")), sorted(built))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)

    assert done.stdout.strip() == f"[] {sorted(config.pipeline_names().values())}"


def test_every_config_field_is_part_of_the_key(tmp_path) -> None:
    """definitions_for_synth keys on the whole config, so a field added later cannot be forgotten."""
    config, uris = load_config("dev"), content_addressed_uris(ASSETS_BUCKET)
    definitions_for_synth(config, uris, cache_dir=tmp_path)
    [entry] = tmp_path.glob("definitions-*.json")
    stored = json.loads(entry.read_text())["inputs"]["inputs"]

    assert stored["config"] == json.loads(json.dumps(dataclasses.asdict(config), default=str))
    assert stored["code_uris"] == uris


def test_importing_the_app_loads_no_sagemaker_sdk() -> None:
    """A stack that imported `pipeline_defs.sdk` at module level would put the SDK back on every synth's path: use
    `definitions.sklearn_image_uri` / `definitions_for_synth`, which load it only on a cache miss."""
    script = "import sys, stacks.stage; print(sorted(name for name in sys.modules if name.startswith('sagemaker')))"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "[]"
