"""`mlops steps [--assembly cdk.out] [--json]`: how long each pipeline step's code and each experiment has stood still.

The team's rule for what belongs in the pipeline: "if the step has been the same for a month and you'd be mad if it
ran differently next week, it belongs in the pipeline. Otherwise it lives in a notebook." For every step of the
unit's synthesized pipelines that runs code, and every experiment file (`notebooks/*.py`), this prints the code's
content hash (the CDK asset key the definition names: what runs), the last commit that changed any file it is built
from, how many days ago, and "stable" once that is at least `step_stable_after_days` (config, default 30). A file
with uncommitted changes is changed today. Outside a git checkout, or in a shallow clone (CI's default), the history
is unknown or incomplete and the table says so instead of guessing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from config import EnvironmentConfig
from mlops.local import CODE_ASSET_PREFIX, read_assembly
from pipeline_defs.graph import json_nodes, own_arguments, steps
from pipeline_defs.local import Assembly
from pipeline_defs.packaging import source_files

REPOSITORY = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = REPOSITORY / "notebooks"


@dataclass(frozen=True)
class Stability:
    pipeline: str  # or "experiment"
    step: str  # or the experiment file's name
    code: dict[str, str]  # {code object: its content hash, shortened}
    last_commit: str | None  # None: no history (not a git checkout, never committed)
    last_changed: str | None  # ISO date of that commit, or today for uncommitted changes
    unchanged_days: int | None
    stable: bool


def command_steps(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    now = datetime.now(UTC)
    history = GitHistory(REPOSITORY)
    rows = [
        history.stability(pipeline, step, code, files, now, config.step_stable_after_days)
        for pipeline, step, code, files in [*pipeline_steps(read_assembly(args.assembly, config)), *experiments()]
    ]
    if args.json:
        document = {"stable_after_days": config.step_stable_after_days, "history": history.caveat}
        print(json.dumps({**document, "steps": [asdict(row) for row in rows]}, indent=2))
        return 0
    print(table(rows, config.step_stable_after_days))
    if history.caveat:
        print(f"note: {history.caveat}")
    return 0


def pipeline_steps(assembly: Assembly) -> Iterable[tuple[str, str, dict[str, str], list[Path]]]:
    """(pipeline, step, {code object: hash}, the checkout files it is built from) of every step that runs code."""
    names = {path: name.removeprefix(CODE_ASSET_PREFIX) for name, path in assembly.named_assets.items()}
    for pipeline, definition in assembly.definitions.items():
        for step in steps(definition):
            uris = [node for node in json_nodes(own_arguments(step)) if isinstance(node, str)]
            staged = sorted({assembly.assets[uri] for uri in uris if uri in assembly.assets})
            code = dict(sorted((names[path], path.name.split(".")[1][:12]) for path in staged if path in names))
            if code:  # a condition, a fail step: no code of its own
                files = sorted({file for name in code for file in source_files(name)})
                yield pipeline, step["Name"], code, files


def experiments() -> Iterable[tuple[str, str, dict[str, str], list[Path]]]:
    for path in sorted(EXPERIMENTS_DIR.glob("*.py")):
        yield "experiment", path.name, {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]}, [path]


class GitHistory:
    """Last commits of files in one repository (`git log`); `caveat` says when the history cannot be trusted."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        shallow = self._git("rev-parse", "--is-shallow-repository")
        self.caveat: str | None = None
        if shallow is None:
            self.caveat = f"{repository} is not a git checkout (or git is missing): no history, nothing is stable"
        elif shallow.strip() == "true":
            self.caveat = "a shallow clone: history starts at the oldest fetched commit (git fetch --unshallow)"

    def stability(
        self, pipeline: str, step: str, code: Mapping[str, str], files: list[Path], now: datetime, stable_after: int
    ) -> Stability:
        paths = [str(file.relative_to(self.repository)) for file in files]
        last = self._git("log", "-1", "--format=%h %ct", "--", *paths)
        if self._git("status", "--porcelain", "--", *paths):  # edited or new: changed today
            return Stability(pipeline, step, dict(code), None, now.date().isoformat(), 0, False)
        if not last:
            return Stability(pipeline, step, dict(code), None, None, None, False)
        commit, seconds = last.split()
        changed = datetime.fromtimestamp(int(seconds), UTC)
        days = (now - changed).days
        stable = self.caveat is None and days >= stable_after
        return Stability(pipeline, step, dict(code), commit, changed.date().isoformat(), days, stable)

    def _git(self, *arguments: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repository), *arguments], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None


def table(rows: list[Stability], stable_after: int) -> str:
    header = ("pipeline", "step", "code", "last change", "unchanged", f"stable (>= {stable_after} d)")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        change = f"{row.last_commit or 'uncommitted'} {row.last_changed}" if row.last_changed else "no history"
        days = f"{row.unchanged_days} d" if row.unchanged_days is not None else "-"
        code = " ".join(f"{name}@{digest}" for name, digest in row.code.items())
        lines.append((row.pipeline, row.step, code, change, days, "stable" if row.stable else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    padded = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(line.rstrip() for line in padded)
