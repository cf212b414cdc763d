"""Whole-file writes that never leave half a file: the one implementation for config pins, price snapshots, the synth
cache, Cost Explorer answers and the local state files.

Standard library only, so config/, the definitions and the CLI can all use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """`text` as the whole content of `path`: a unique temporary file beside it, flushed, then renamed over it.

    Readers see the old file or the new one; an interrupted write leaves the old one and no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
