"""The repository stands alone: no tracked file sends its reader to a folder beside the checkout (a clone has none)."""

from __future__ import annotations

import re
import subprocess

from tests.helpers import REPO_ROOT

# A path into the parent folder's `shared/` (spelled as a pattern, so this file does not match itself).
OUTSIDE_REFERENCE = re.compile(rb"\.\./shared\b")


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    return [name for name in listing.decode().split("\0") if name]


def test_no_tracked_file_refers_to_a_folder_outside_the_repository() -> None:
    files = tracked_files()
    assert "README.md" in files  # the listing is the checkout's, not an empty one
    found = [
        f"{name}:{line_number}"
        for name in files
        if (REPO_ROOT / name).is_file()
        for line_number, line in enumerate((REPO_ROOT / name).read_bytes().splitlines(), start=1)
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert found == [], "these lines point outside the repository (a clone has nothing beside it): " + ", ".join(found)
