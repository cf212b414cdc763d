"""Step caching as SageMaker does it: a hit reuses the newest successful run of the same step with the same key.

The key is the SHA-256 of the step type's documented cache-key attributes (`contract.CACHE_KEY_ATTRIBUTES`) after
evaluating expressions: tags, instance types and output paths are not among them, a per-run value in any of them
defeats the cache. `CacheConfig.ExpireAfter` (`contract.parse_duration`) bounds how old a hit may be. The index of
one pipeline is `cache/<pipeline>.json` in the state dir: {step, key, execution_id, finished, properties, inputs} per
run; `mlops cache clear` empties it.

Locally, where reading the data is cheap, the index also holds a content fingerprint of each input a run read. In
SageMaker a changed file under an already-used URI is a silent false hit (the key only has the URI); here that hit
is refused before the step reuses anything: the step fails naming the URI and the two ways out (a new dataset id,
or `--no-cache`, which re-runs every step and records fresh entries that later runs then hit).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.contract import CACHE_KEY_ATTRIBUTES, parse_duration
from pipeline_defs.local.errors import DefinitionError, LocalRunError, StepFailed
from pipeline_defs.local.files import locked, read_json


def cache_key(step_type: str, arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the step type's cache-key attributes (evaluated arguments)."""
    attributes = {name: arguments.get(name) for name in CACHE_KEY_ATTRIBUTES[step_type]}
    return hashlib.sha256(json.dumps(attributes, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def expire_after(cache_config: Mapping[str, Any]) -> timedelta | None:
    """A CacheConfig's ExpireAfter (None: never expires); DefinitionError when it is not an ISO 8601 duration."""
    value = cache_config.get("ExpireAfter")
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise DefinitionError(f"ExpireAfter {error}") from None


class CacheIndex:
    """Successful step runs of one pipeline: {step, key, execution_id, finished, properties, inputs}, in a JSON file.

    `inputs` holds the fingerprint of every S3 input the run read (`LocalS3.fingerprint`): a hit whose inputs have
    changed since is refused (`InputChanged`). Records are appended under the index's lock.
    """

    def __init__(self, path: Path, pipeline: str) -> None:
        self.path = path
        self.pipeline = pipeline
        # Parallel steps of one run record from their own threads; the file lock only excludes other processes.
        self._lock = threading.Lock()

    @classmethod
    def of(cls, state_dir: Path, pipeline: str) -> CacheIndex:
        """The index of `pipeline` in a state dir."""
        return cls(state_dir / "cache" / f"{pipeline}.json", pipeline)

    def lookup(self, step: str, key: str, not_before: datetime | None) -> dict[str, Any] | None:
        """The newest successful run of `step` with `key` that finished at or after `not_before`."""
        matching = [
            entry
            for entry in self.entries()
            if entry["step"] == step
            and entry["key"] == key
            and (not_before is None or datetime.fromisoformat(entry["finished"]) >= not_before)
        ]
        # Among equal times, the entry recorded last wins (max keeps the first maximum it meets).
        return max(reversed(matching), key=lambda entry: str(entry["finished"]), default=None)

    def record(
        self,
        step: str,
        key: str,
        execution_id: str,
        finished: datetime,
        properties: dict[str, Any],
        inputs: Mapping[str, str] | None = None,
    ) -> None:
        entry = {
            "step": step,
            "key": key,
            "execution_id": execution_id,
            "finished": finished.isoformat(),
            "properties": properties,
            "inputs": dict(inputs or {}),
        }
        with self._lock, locked(self.path):
            # An older entry of the same step and key can never be a hit again (the newest one wins): dropping it
            # keeps the index as small as the number of distinct step runs.
            kept = [old for old in self.entries() if (old["step"], old["key"]) != (step, key)]
            document = {"entries": [*kept, entry]}
            write_atomically(self.path, json.dumps(document, indent=1, sort_keys=True) + "\n")

    def clear(self) -> int | None:
        """Forget every entry (the outputs they point to stay); returns how many there were (None: it was damaged)."""
        with locked(self.path):
            try:
                count: int | None = len(self.entries())
            except LocalRunError:
                count = None
            self.path.unlink(missing_ok=True)
        return count

    def entries(self) -> list[dict[str, Any]]:
        """Every entry; LocalRunError with the fix when the index is damaged."""
        if not self.path.is_file():
            return []
        fix = f"run `mlops cache clear --pipeline {self.pipeline}` (the next run re-runs its steps)"
        try:
            document = read_json(self.path, "the cache index", fix)
        except LocalRunError as error:
            raise DamagedCacheIndex(str(error), self, fix) from None
        entries = document.get("entries") if isinstance(document, dict) else None
        fields = {"step", "key", "execution_id", "finished", "properties"}
        if not isinstance(entries, list) or not all(isinstance(e, dict) and fields <= e.keys() for e in entries):
            raise DamagedCacheIndex(f"the cache index {self.path} is corrupt (not a list of entries): {fix}", self, fix)
        return entries


class DamagedCacheIndex(LocalRunError):
    """A cache index that cannot be read. The message ends with `fix`, which a front end may word for its users (the
    CLI names its own `cache clear` options: this engine knows the pipeline's full name, not the command's)."""

    def __init__(self, message: str, index: CacheIndex, fix: str) -> None:
        super().__init__(message)
        self.index, self.fix = index, fix


class InputChanged(StepFailed):
    """A cache hit would reuse results computed from an input whose content has changed since."""


def check_inputs_unchanged(step: str, hit: Mapping[str, Any], inputs: Mapping[str, str]) -> None:
    """InputChanged when an input of the run that `hit` records has other content now than it had then."""
    changed = [uri for uri, fingerprint in hit.get("inputs", {}).items() if inputs.get(uri, fingerprint) != fingerprint]
    if changed:
        raise InputChanged(
            f"{changed[0]} changed since execution {hit['execution_id']} read it, so {step} would reuse results "
            "computed from the old content: data under one URI must never change - put the new data under a new "
            "dataset id (e.g. datasets/<id>-v2/), or re-run with --no-cache"
        )
