"""Step caching as SageMaker does it: a hit reuses the newest successful run of the same step with the same key.

The key is the SHA-256 of the step type's documented cache-key attributes (`contract.CACHE_KEY_ATTRIBUTES`) after
evaluating expressions: tags, instance types and output paths are not among them, a per-run value in any of them
defeats the cache. `CacheConfig.ExpireAfter` (`contract.parse_duration`) bounds how old a hit may be. The index of
one pipeline is `cache/<pipeline>.json` in the state dir: {step, key, execution_id, finished, properties} per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_defs.contract import CACHE_KEY_ATTRIBUTES, parse_duration
from pipeline_defs.local.errors import DefinitionError


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
    """Successful step runs of one pipeline: {step, key, execution_id, finished, properties}, in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Parallel steps of one run record from their own threads: one read-modify-write at a time.
        self._lock = threading.Lock()

    def lookup(self, step: str, key: str, not_before: datetime | None) -> dict[str, Any] | None:
        """The newest successful run of `step` with `key` that finished at or after `not_before`."""
        matching = [
            entry
            for entry in self._entries()
            if entry["step"] == step
            and entry["key"] == key
            and (not_before is None or datetime.fromisoformat(entry["finished"]) >= not_before)
        ]
        return max(matching, key=lambda entry: str(entry["finished"]), default=None)

    def record(self, step: str, key: str, execution_id: str, finished: datetime, properties: dict[str, Any]) -> None:
        entry = {
            "step": step,
            "key": key,
            "execution_id": execution_id,
            "finished": finished.isoformat(),
            "properties": properties,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"entries": [*self._entries(), entry]}, indent=1, sort_keys=True))
            os.replace(temporary, self.path)

    def _entries(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        entries: list[dict[str, Any]] = json.loads(self.path.read_text())["entries"]
        return entries
