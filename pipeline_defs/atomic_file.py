"""Whole-file writes that never leave half a file: the one implementation for config pins, price snapshots, the synth
cache, Cost Explorer answers and the local state files.

Standard library only, so config/, the definitions and the CLI can all use it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path


def make_writable_folder(folder: Path) -> None:
    """`folder`, created if missing, proven writable by creating (and removing) a file in it; OSError otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def write_atomically(path: Path, text: str) -> None:
    """`text` as the whole content of `path`: a unique temporary file beside it, flushed, then renamed over it.

    Readers see the old file or the new one; an interrupted write leaves the old one and no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _new_temporary(path)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _new_temporary(path: Path) -> tuple[int, str]:
    """A new, uniquely named empty file beside `path`, open for writing.

    Created with mode 0666 less the umask, as open() creates a file (tempfile.mkstemp's 0600 would make every file
    written this way private: a report, a pin, a price snapshot)."""
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(temporary)
        except FileExistsError:  # another writer's temporary name: draw again
            continue
