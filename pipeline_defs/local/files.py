"""State files that many processes share: exclusive locks, whole-file writes, JSON that says how to fix itself.

The registry, the cache index and the input fingerprints are read-modify-write files, and several `mlops` commands
(and the step processes they start) may use one state dir at once. Each change happens under an exclusive lock
(`fcntl.flock` on a sibling `.lock` file: released by the kernel when the holder dies, so a killed run never leaves
a stale lock) and lands by an atomic rename of a uniquely named temporary file: readers without the lock see the
old file or the new one, never half of one, and two writers never share a temporary file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline_defs.local.errors import LocalRunError


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False, wait: bool = True) -> Iterator[None]:
    """Hold the lock `<path>.lock` (exclusive, or shared) for the block; `wait=False`: LocalRunError if taken."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            message = f"{lock_path.parent} is in use by another mlops command: try again when it ends"
            raise LocalRunError(message) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: Path, what: str, fix: str) -> Any:
    """The JSON document in `path`; a LocalRunError naming the file and `fix` when it is damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise LocalRunError(f"{what} {path} is corrupt ({error}): {fix}") from None
