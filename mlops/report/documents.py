"""The JSON reports a page is drawn from, read so that a missing or damaged one is one line naming the file.

A report's shape is checked where it is used (`Document.number`, `.numbers`, ...): a field of the wrong type is the
same one line, naming the file and the field, never a traceback half way through drawing the page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from mlops.common import UsageError, dig, shown

Key = str | int


@dataclass(frozen=True)
class Document:
    """A parsed JSON report and the file it came from."""

    data: Any
    source: str  # the file or s3:// URI it was read from, for messages
    where: tuple[Key, ...] = ()  # the keys of `data` in it, for messages

    def fail(self, keys: Sequence[Key], expected: str) -> NoReturn:
        field = ".".join(map(str, (*self.where, *keys))) or "the document"
        raise UsageError(
            f"{self.source}: {field} is not {expected}: the report is damaged or was not written by this "
            "version of the step; re-run the step that wrote it"
        )

    def at(self, *keys: Key) -> Any:
        return dig(self.data, keys)

    def child(self, *keys: Key) -> Document:
        """The object at `keys` as a Document of the same file (error unless it is a JSON object)."""
        value = self.at(*keys)
        if not isinstance(value, dict):
            self.fail(keys, "an object")
        return Document(value, self.source, (*self.where, *keys))

    def children(self, *keys: Key) -> list[Document]:
        """Each object of the list at `keys`."""
        value = self.at(*keys)
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.fail(keys, "a list of objects")
        return [Document(item, self.source, (*self.where, *keys, index)) for index, item in enumerate(value)]

    def optional_child(self, *keys: Key) -> Document | None:
        return None if self.at(*keys) is None else self.child(*keys)

    def number(self, *keys: Key) -> float:
        value = self.at(*keys)
        if not _is_number(value):
            self.fail(keys, "a finite number")
        return float(value)

    def optional_number(self, *keys: Key) -> float | None:
        return None if self.at(*keys) is None else self.number(*keys)

    def numbers(self, *keys: Key) -> list[float]:
        value = self.at(*keys)
        if not isinstance(value, list) or not all(_is_number(item) for item in value):
            self.fail(keys, "a list of finite numbers")
        return [float(item) for item in value]

    def text(self, *keys: Key) -> str:
        value = self.at(*keys)
        if not isinstance(value, str):
            self.fail(keys, "text")
        return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_document(path: Path) -> Document | None:
    """The JSON report at `path`, None when there is no such file; a file that is not JSON is a UsageError."""
    try:
        return parse_document(path.read_bytes(), shown(path))
    except FileNotFoundError:
        return None


def parse_document(body: bytes, source: str) -> Document:
    """A JSON report's bytes, read from `source`; UsageError when they are not UTF-8 JSON."""
    try:
        return Document(json.loads(body.decode("utf-8")), source)
    except (UnicodeDecodeError, ValueError) as error:
        raise UsageError(
            f"{source} is not valid JSON ({error}): the report is damaged; re-run the step that wrote it"
        ) from None
