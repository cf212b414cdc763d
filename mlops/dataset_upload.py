"""What `mlops dataset put` sends, to either landing bucket: the folder's files, which of them a resumed upload still
has to send, the refusal of an existing dataset, and the progress bar.

A dataset is immutable (changed files under an old id would be false cache hits), so an id whose marker exists is
refused. Objects under the id that are not in the folder belong to another upload: refused rather than mixed in.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlops.common import UsageError, shown

READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LocalFile:
    key: str  # below the dataset's prefix, with '/'
    path: Path
    size: int

    @functools.cached_property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()


def dataset_files(directory: Path, marker: str) -> list[LocalFile]:
    """Every file below `directory`, sorted by key; bad input (no folder, no files, a marker of its own) refused."""
    if not directory.is_dir():
        raise UsageError(f"{shown(directory)} is not a folder: pass the folder that holds the dataset's files")
    files = sorted(
        (
            LocalFile(path.relative_to(directory).as_posix(), path, path.stat().st_size)
            for path in directory.rglob("*")
            if path.is_file()
        ),
        key=lambda item: item.key,
    )
    if not files:
        raise UsageError(f"{shown(directory)} holds no files: nothing to put")
    if any(item.key == marker for item in files):
        raise UsageError(
            f"{shown(directory / marker)}: the marker is written by this command, after every file; remove it from "
            "the folder"
        )
    return files


# {key below the dataset prefix: () -> (size, SHA-256 or None)} of what is already there (asked only when needed)
Present = dict[str, Callable[[], tuple[int, str | None]]]


def files_to_upload(files: list[LocalFile], present: Present) -> list[LocalFile]:
    """The files a (resumed) upload still has to send: those not in `present` with the same size and SHA-256.

    An object under the id that is not one of `files` belongs to another upload: refused rather than mixed in.
    """
    strangers = sorted(set(present) - {item.key for item in files})
    if strangers:
        raise UsageError(
            f"the dataset id already holds {len(strangers)} object(s) that are not in the folder (e.g. {strangers[0]}):"
            " an unfinished upload of other files. Pick a new --id, or delete those objects first"
        )
    missing = []
    for item in files:
        if item.key in present:
            size, sha256 = present[item.key]()
            if size == item.size and sha256 == item.sha256:
                continue
        missing.append(item)
    return missing


class UploadInterrupted(Exception):
    """Ctrl-C while files were being sent: the marker was not written."""


class Progress(Protocol):
    def __call__(self, sent: int) -> None: ...


class ProgressBar:
    """Bytes sent of the total, as one redrawn line on stderr; silent when stderr is not a terminal.

    boto3 calls it from its transfer threads (the parts of a multipart upload go up at once): one update at a time.
    """

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.sent, self.enabled = max(total, 1), 0, enabled
        self._lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self._lock:
            self._advance(sent)

    def _advance(self, sent: int) -> None:
        self.sent += sent
        if self.enabled:
            done = min(self.sent / self.total, 1.0)
            bar = "#" * int(done * 30)
            mib = 1024 * 1024
            sys.stderr.write(f"\r[{bar:<30}] {done:4.0%} {self.sent / mib:.1f}/{self.total / mib:.1f} MiB")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def dataset_exists(marker_uri: str) -> UsageError:
    return UsageError(
        f"the dataset already exists with other files ({marker_uri}): datasets are immutable, because changed files "
        "under an old id would be false cache hits. Put the new data under a new --id"
    )


def send_files(upload: list[LocalFile], total_files: int, send: Callable[[LocalFile, Progress], None]) -> None:
    """Each file through `send`, with the progress bar (stderr, when it is a terminal) and a line per file."""
    if len(upload) < total_files:
        print(f"resuming: {total_files - len(upload)} of {total_files} file(s) are already there", file=sys.stderr)
    bar = ProgressBar(sum(item.size for item in upload), enabled=sys.stderr.isatty())
    try:
        for item in upload:
            send(item, bar)
    except KeyboardInterrupt:
        raise UploadInterrupted from None
    finally:
        bar.finish()


def already_put(files: list[LocalFile], present: Present, marker_name: str) -> bool:
    """Whether the id holds its marker and exactly these files, byte for byte: a repeated put, nothing to do. Any
    other content under a marked id is refused (`dataset_exists`)."""
    stored = {key: found for key, found in present.items() if key != marker_name}
    if marker_name not in present or set(stored) != {item.key for item in files}:
        return False  # other files: no need to read any content
    return not files_to_upload(files, stored)


def same_dataset(uri: str) -> str:
    return (
        f"{uri} already holds these files, byte for byte, and its marker: nothing to put (its training run started "
        "when it was first put)"
    )
