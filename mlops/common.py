"""What several commands share: the one error type for bad input, where things are, how paths are shown."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config import EnvironmentConfig

_PACKAGE_CHECKOUT = Path(__file__).resolve().parents[1]
# `--since` back from now: a whole number of hours or days, at least 1.
_SINCE_BACK = re.compile(r"([1-9]\d*)([hd])")
# A word of a printed command that the operator fills in, e.g. <folder>: printed as it is, never quoted.
_PLACEHOLDER = re.compile(r"<[a-z][a-z -]*>")
SINCE_HELP = "a UTC date YYYY-MM-DD, or Nh / Nd back from now"


class UsageError(Exception):
    """Bad input to the CLI: printed as one `error:` line, exit code 2."""


def project_root() -> Path:
    """The checkout the command runs in: the nearest folder at or above the working directory with a cdk.json.

    Outside any checkout it is the one this package is installed from (`make deps` installs it editable).
    """
    here = Path.cwd().resolve()
    return next((folder for folder in (here, *here.parents) if (folder / "cdk.json").is_file()), _PACKAGE_CHECKOUT)


def default_assembly(config: EnvironmentConfig) -> Path:
    """Where `cdk synth` puts the unit and `mlops` reads it: cdk.out (`make synth`), or cdk.out.<sandbox> for a
    sandbox, so that synthesizing a sandbox never writes over the dev unit's assembly."""
    return project_root() / (f"cdk.out.{config.sandbox}" if config.sandbox else "cdk.out")


def synth_command(config: EnvironmentConfig, output: Path) -> str:
    """The `cdk synth` command (node_modules/.bin on PATH, as the README exports it) writing the unit to `output`."""
    return f"cdk synth {unit_context(config)} --output {shlex.quote(shown(output))}"


def default_state_dir() -> Path:
    return project_root() / ".local"


def sample_data_dir() -> Path:
    return project_root() / "pipeline_defs" / "sample_data"


def shown(path: str | Path) -> str:
    """A path relative to the working directory when it is below it: shorter to read."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def stderr_progress(line: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {line}", file=sys.stderr, flush=True)


def pipeline_name(config: EnvironmentConfig, pipeline: str) -> str:
    return config.pipeline_names()[pipeline]


def unit_context(config: EnvironmentConfig) -> str:
    """The `-c` options that select this unit in `cdk` commands."""
    return f"-c env={config.env_name}" + (f" -c sandbox={config.sandbox}" if config.sandbox else "")


def unit_options(config: EnvironmentConfig) -> list[str]:
    """The `--env` / `--sandbox` options that select this unit in an `mlops` command (none for dev, the default)."""
    return (["--env", config.env_name] if config.env_name != "dev" else []) + (
        ["--sandbox", config.sandbox] if config.sandbox else []
    )


def command_line(*words: str) -> str:
    """`mlops <words>` as a fix to print, ready to paste: every word shell-quoted but a <placeholder> to fill in."""
    return " ".join(word if _PLACEHOLDER.fullmatch(word) else shlex.quote(word) for word in ("mlops", *words))


def parse_parameters(items: Sequence[str]) -> dict[str, str]:
    """`["K=V", ...]` -> {K: V}; values stay text and are typed by the pipeline's parameter declarations."""
    parameters = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise UsageError(f"--param {item!r}: expected NAME=VALUE, e.g. --param ExperimentId=exp-1")
        parameters[name.strip()] = value
    return parameters


def dig(document: Any, path: Sequence[str | int]) -> Any:
    """`document[path[0]][path[1]]...` through dicts (str keys) and lists (int indexes); None where one is missing."""
    value = document
    for key in path:
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and -len(value) <= key < len(value) else None
        else:
            value = value.get(key) if isinstance(value, Mapping) else None
    return value


def since_start(value: str | None, now: datetime) -> datetime | None:
    """The start of a `--since` window (`mlops monitor`, `mlops cost`): a UTC date YYYY-MM-DD (its midnight), or N hours
    or days before `now` (Nh, Nd); None when not given. Anything else, or a start before the calendar's first day, is
    one UsageError with the same wording for every command."""
    if value is None:
        return None
    back = _SINCE_BACK.fullmatch(value)
    try:
        if back is None:
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        amount = int(back[1])
        return now - (timedelta(hours=amount) if back[2] == "h" else timedelta(days=amount))
    except (ValueError, OverflowError):  # OverflowError: more days than a timedelta holds, or a start before year 1
        raise UsageError(
            f"--since {value!r}: use a UTC date YYYY-MM-DD, or hours/days back such as 24h or 7d "
            "(no earlier than 0001-01-01)"
        ) from None


def step_names(value: str) -> list[str]:
    """An argparse type: comma-separated step names."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{value!r} names no step (e.g. --steps Evaluate,Score)")
    return names


def positive(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number
