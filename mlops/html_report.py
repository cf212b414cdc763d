"""The self-contained HTML pages of `mlops cost --html` and `mlops report --html`: inline SVG charts, tables, the page.

No scripts and no external files (the page opens offline, from a mail attachment or an artifact store), and every
string that reaches the page goes through `esc` (feature names and step messages come from data and runs).
Standard library only: the commands that do not draw pay nothing to import it.
"""

from __future__ import annotations

import html
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.common import UsageError
from pipeline_defs.atomic_file import write_atomically

# Tableau 10: tells its first colours apart also for the common colour-vision deficiencies.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:2px 10px;text-align:left}"
    "ul{list-style:none;padding:0}.violation{color:#b00020;font-weight:bold}"
    ".violated{border-left:6px solid #b00020;padding-left:10px}.note{color:#555;font-style:italic}"
    "section.feature{display:inline-block;vertical-align:top;margin:0 1em 1.5em 0}"
)


def esc(value: object) -> str:
    return html.escape(str(value))


def number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def note(text: str) -> str:
    return f"<p class='note'>{esc(text)}</p>"


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]], marked: Sequence[bool] = ()) -> str:
    """A table of escaped cells (no header row when `header` is empty); rows whose `marked` flag is set carry class
    "violation"."""
    head = "<tr>" + "".join(f"<th>{esc(column)}</th>" for column in header) + "</tr>" if header else ""
    body = "".join(
        ("<tr class='violation'>" if index < len(marked) and marked[index] else "<tr>")
        + "".join(f"<td>{esc(cell)}</td>" for cell in row)
        + "</tr>"
        for index, row in enumerate(rows)
    )
    return f"<table>{head}{body}</table>"


def legend(names: Sequence[str], colours: Sequence[str] = PALETTE) -> str:
    return (
        "<ul>"
        + "".join(
            f'<li><span style="background:{colours[n % len(colours)]}">&nbsp;&nbsp;&nbsp;</span> {esc(name)}</li>'
            for n, name in enumerate(names)
        )
        + "</ul>"
    )


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def check_page_path(path: Path) -> Path:
    """The file an `--html PATH` page replaces: PATH, or the file a symbolic link at PATH points to (the link stays).

    One usage error, before any work (or AWS call) is done for the page, when the folder does not exist or PATH is
    something other than a regular file - a folder, a FIFO, a device, a socket - which the page would replace."""
    if not path.parent.is_dir():
        raise UsageError(f"--html {path}: folder {path.parent} does not exist")
    target = path.resolve()
    if not target.parent.is_dir():
        raise UsageError(f"--html {path}: it links to {target}, whose folder does not exist")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"--html {path}: cannot write it: it is a {_file_kind(mode)}, not a regular file; name a new file or a "
            "regular one"
        )
    return target


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "folder",
        stat.S_ISFIFO: "FIFO",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
        stat.S_ISSOCK: "socket",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "special file")


def write_page(path: Path, text: str) -> None:
    """The page as the whole of `path` (through a symbolic link: its target), atomically; one `--html` usage error
    when it cannot be written."""
    target = check_page_path(path)
    try:
        write_atomically(target, text)
    except OSError as error:
        raise UsageError(f"--html {path}: cannot write it ({error.strerror or error})") from None


@dataclass(frozen=True)
class Plot:
    """Where data goes on a chart: data ranges mapped to pixels of the plotting area (y grows upwards)."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int = 420
    height: int = 260
    left: int = 56
    right: int = 12
    top: int = 12
    bottom: int = 40

    def x(self, value: float) -> float:
        low, high = self.x_range
        return self.left + (value - low) / ((high - low) or 1.0) * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        low, high = self.y_range
        return (
            self.height - self.bottom - (value - low) / ((high - low) or 1.0) * (self.height - self.top - self.bottom)
        )


@dataclass
class Chart:
    """One SVG chart, drawn element by element in data coordinates; `svg()` is the finished element."""

    plot: Plot
    label: str  # what a screen reader says: the chart's subject
    parts: list[str] = field(default_factory=list)

    def axes(self, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[tuple[float, str]]) -> None:
        p = self.plot
        base, left = p.y(p.y_range[0]), p.x(p.x_range[0])
        self.parts.append(
            f'<line x1="{left:.1f}" y1="{base:.1f}" x2="{p.width - p.right}" y2="{base:.1f}" stroke="#333"/>'
        )
        self.parts.append(f'<line x1="{left:.1f}" y1="{p.top}" x2="{left:.1f}" y2="{base:.1f}" stroke="#333"/>')
        for value, text in x_ticks:
            self.text(p.x(value), base + 16, text, anchor="middle")
        for value, text in y_ticks:
            self.text(left - 6, p.y(value) + 4, text, anchor="end")

    def axis_titles(self, x_title: str, y_title: str) -> None:
        p = self.plot
        self.text((p.left + p.width - p.right) / 2, p.height - 6, x_title, anchor="middle")
        middle = (p.top + p.height - p.bottom) / 2
        self.parts.append(
            f'<text x="14" y="{middle:.1f}" text-anchor="middle" font-size="11" '
            f'transform="rotate(-90 14 {middle:.1f})">{esc(y_title)}</text>'
        )

    def text(self, x: float, y: float, text: str, *, anchor: str = "start") -> None:
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11">{esc(text)}</text>')

    def line(self, xs: Sequence[float], ys: Sequence[float], colour: str, name: str, *, dash: str = "") -> None:
        """A polyline through (xs[i], ys[i]) named by its <title> and `data-series`; `dash`: an SVG dash pattern."""
        points = " ".join(f"{self.plot.x(x):.1f},{self.plot.y(y):.1f}" for x, y in zip(xs, ys, strict=True))
        pattern = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline data-series="{esc(name)}" points="{points}" fill="none" stroke="{colour}" stroke-width="2"'
            f"{pattern}><title>{esc(name)}</title></polyline>"
        )

    def bar(
        self, x: tuple[float, float], y: tuple[float, float], colour: str, tip: str, *, outline: bool = False
    ) -> None:
        """A rectangle over data ranges x = (low, high), y = (low, high) with a tooltip; filled, or only outlined (so
        two overlaid series differ by more than colour)."""
        left, right = sorted((self.plot.x(x[0]), self.plot.x(x[1])))
        top, base = sorted((self.plot.y(y[1]), self.plot.y(y[0])))
        paint = f'fill="none" stroke="{colour}" stroke-width="2"' if outline else f'fill="{colour}"'
        self.parts.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{base - top:.1f}" '
            f"{paint}><title>{esc(tip)}</title></rect>"
        )

    def svg(self) -> str:
        p = self.plot
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{p.width}" height="{p.height}" role="img" '
            f'aria-label="{esc(self.label)}">' + "".join(self.parts) + "</svg>"
        )
