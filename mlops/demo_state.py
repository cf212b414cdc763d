"""The folder `mlops demo` works in: created fresh for each demo, and deleted only while it holds the demo's work alone.

The demo writes a marker (DEMO_MARKER) into each state dir it creates and, when it ends, records there the SHA-256 of
every file it wrote. The next demo deletes and re-creates such a folder only while it holds nothing else: a run, a label
file or a report added since (the README's walk-through adds them to .local/demo) is work the demo must not delete,
so it refuses with one line naming the files. Any other non-empty folder is refused too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from mlops.common import UsageError, shown
from pipeline_defs.atomic_file import write_atomically
from pipeline_defs.local import executions_in_use
from pipeline_defs.local.runner import check_state_dir

# Written into each state dir the demo creates, and rewritten when the demo ends with the SHA-256 of every file it
# wrote: the next demo re-creates such a folder only while it holds nothing else, and never deletes any other folder.
DEMO_MARKER = ".mlops-demo"
DEMO_MARKER_NOTE = (
    "Created by `mlops demo`: the next demo with this --state-dir deletes and re-creates this folder, unless it holds "
    "files the demo did not write (runs, labels, reports added since): then it refuses and deletes nothing."
)
# Files named in the refusal of a demo folder that holds other work.
SHOWN_FILES = 3


def fresh_state_dir(state_dir: Path) -> None:
    """An empty `state_dir` for the demo, marked as the demo's own (DEMO_MARKER).

    Only a folder that a demo created (it holds the marker) is deleted and re-created, and only while it holds nothing
    but what that demo wrote: a run, a label file or a report added since (the README's walk-through adds them) is
    work the demo must not delete, so it refuses, naming it. Any other non-empty folder, such as a state dir that runs
    have used, is refused too, however much it looks like local state.
    """
    if state_dir.exists() and not state_dir.is_dir():
        raise UsageError(f"--state-dir {shown(state_dir)} is a file: pick a folder, e.g. .local/demo")
    if state_dir.exists() and any(state_dir.iterdir()):
        delete_it = f"delete it yourself if nothing in it is needed (rm -r {shown(state_dir)})"
        if not (state_dir / DEMO_MARKER).is_file():
            raise UsageError(
                f"{shown(state_dir)} was not created by mlops demo, so the demo will not delete it: pick another "
                f"--state-dir, or {delete_it}"
            )
        added = files_not_by_the_demo(state_dir)
        if added:
            named = ", ".join(added[:SHOWN_FILES]) + (
                f" and {len(added) - SHOWN_FILES} more" if len(added) > SHOWN_FILES else ""
            )
            raise UsageError(
                f"{shown(state_dir)} holds work the last demo did not write ({named}), so the demo will not delete "
                f"it: pick another --state-dir to keep it, or {delete_it}"
            )
        with executions_in_use(state_dir, exclusive=True):  # refuses while a run uses it
            shutil.rmtree(state_dir)
    check_state_dir(state_dir)  # creates it; one line (exit 2) when it cannot be written
    (state_dir / DEMO_MARKER).write_text(json.dumps({"note": DEMO_MARKER_NOTE}, indent=2) + "\n")


def _file_digests(state_dir: Path) -> dict[str, str]:
    """{path below the state dir: SHA-256} of every file in it but the marker."""
    return {
        path.relative_to(state_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(state_dir.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name != DEMO_MARKER
    }


def record_demo_files(state_dir: Path) -> None:
    """The marker, rewritten with what the demo wrote: the next demo deletes the folder only while that is all."""
    marker = {"note": DEMO_MARKER_NOTE, "files": _file_digests(state_dir)}
    write_atomically(state_dir / DEMO_MARKER, json.dumps(marker, indent=1, sort_keys=True) + "\n")


def files_not_by_the_demo(state_dir: Path) -> list[str]:
    """The files of a demo folder that its demo did not write, or that changed since (sorted); [] for a demo that did
    not finish (its marker lists nothing: the folder holds its partial work)."""
    try:
        recorded = json.loads((state_dir / DEMO_MARKER).read_text()).get("files")
    except (ValueError, AttributeError):  # a marker of an older demo (plain text) or a damaged one: nothing recorded
        recorded = None
    if not isinstance(recorded, dict):
        return []
    return [path for path, digest in _file_digests(state_dir).items() if recorded.get(path) != digest]
