""".github/scripts/review_comment.py: the pull request's one review comment, built from `make review` of every unit and
edited in place. `make` and `gh` are stand-ins on PATH that log their arguments: nothing reaches GitHub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import ENVIRONMENT_NAMES

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / ".github" / "scripts" / "review_comment.py"
MARKER = "<!-- churn-ml-platform:review -->"
BOT = "github-actions[bot]"

# `make review BASE=b ENV=u` prints a line naming both, or fails for the unit in FAKE_MAKE_FAILS, or prints
# FAKE_MAKE_LINES lines; `gh api` answers a GET with FAKE_GH_COMMENTS (pages of comments) and a POST/PATCH with a URL.
FAKE_MAKE = """\
import json, os, sys
arguments = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["make", *sys.argv[1:]]) + "\\n")
if arguments["ENV"] == os.environ.get("FAKE_MAKE_FAILS"):
    print("cdk synth failed", file=sys.stderr)
    sys.exit(2)
lines = int(os.environ.get("FAKE_MAKE_LINES", "1"))
for number in range(lines):
    print(f"review of {arguments['ENV']} against {arguments['BASE']}, line {number} ```")
"""
FAKE_GH = """\
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["gh", *sys.argv[1:]]) + "\\n")
if "--method" not in sys.argv:
    print(os.environ["FAKE_GH_COMMENTS"])
elif os.environ.get("FAKE_GH_REFUSES"):
    print("HTTP 403: Resource not accessible by integration", file=sys.stderr)
    sys.exit(1)
else:
    print(json.dumps({"html_url": "https://github.example/pr/7#issuecomment-1"}))
"""


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of stand-ins first on PATH; returns the log file they append their arguments to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, source in (("make", FAKE_MAKE), ("gh", FAKE_GH)):
        executable = bin_dir / name
        executable.write_text(f"#!{sys.executable}\n{source}")
        executable.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, check=False)


def comment(comment_id: int, login: str, body: str) -> dict[str, object]:
    return {"id": comment_id, "user": {"login": login}, "body": body}


def test_body_is_the_review_of_every_unit_in_order_behind_the_marker(fakes: Path) -> None:
    result = run("body", "--base", "a" * 40, "--head", "b" * 40)
    assert result.returncode == 0, result.stderr
    body = result.stdout
    assert body.startswith(MARKER)
    assert [call[1:] for call in calls(fakes)] == [
        ["--no-print-directory", "-s", "review", f"BASE={'a' * 40}", f"ENV={unit}"] for unit in ENVIRONMENT_NAMES
    ]
    positions = [body.index(f"review of {unit} against {'a' * 40}") for unit in ENVIRONMENT_NAMES]
    assert positions == sorted(positions)
    # The output's own ``` cannot close the fence around it.
    assert "````text\nreview of dev" in body


def test_a_failed_unit_is_named_in_the_body_and_fails_the_step(fakes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MAKE_FAILS", "staging")
    result = run("body", "--base", "main")
    assert result.returncode == 1
    assert "### `staging`: **the review failed**" in result.stdout
    assert "cdk synth failed" in result.stdout
    assert "review of prod against main" in result.stdout  # the units after it are still reviewed


def test_a_long_review_is_cut_per_unit_so_the_body_fits_and_prod_stays(
    fakes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MAKE_LINES", "3000")  # ~150 kB per unit, GitHub takes 65,536 characters
    result = run("body", "--base", "main", "--run-url", "https://ci.example/run/1")
    assert result.returncode == 0
    assert len(result.stdout) <= 65_536
    assert "review of prod against main, line 0" in result.stdout
    assert result.stdout.count("the whole review is in the job log (https://ci.example/run/1)") == 3


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "review.md"
    path.write_text(f"{MARKER}\n## What this pull request changes in AWS\n")
    return path


def test_post_edits_the_bots_earlier_comment(fakes: Path, body_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [
        [comment(11, "alice", f"quoting {MARKER}"), comment(12, BOT, "another bot comment")],
        [{"id": 10, "user": None, "body": f"{MARKER} by a deleted account"}],
        [comment(13, "mallory", f"{MARKER} fake"), comment(14, BOT, f"{MARKER}\nold review")],
    ]
    monkeypatch.setenv("FAKE_GH_COMMENTS", json.dumps(pages))
    result = run("post", str(body_file), "--repo", "acme/churn", "--pr", "7")
    assert result.returncode == 0, result.stderr
    assert calls(fakes) == [
        ["gh", "api", "--paginate", "--slurp", "repos/acme/churn/issues/7/comments"],
        ["gh", "api", "--method", "PATCH", "repos/acme/churn/issues/comments/14", "-F", f"body=@{body_file}"],
    ]
    assert result.stdout.startswith("updated https://github.example/pr/7")


def test_post_creates_the_comment_when_there_is_none(
    fakes: Path, body_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GH_COMMENTS", json.dumps([[comment(11, "alice", "LGTM")], []]))
    result = run("post", str(body_file), "--repo", "acme/churn", "--pr", "7")
    assert result.returncode == 0, result.stderr
    assert calls(fakes)[-1] == [
        "gh",
        "api",
        "--method",
        "POST",
        "repos/acme/churn/issues/7/comments",
        "-F",
        f"body=@{body_file}",
    ]
    assert result.stdout.startswith("posted ")


def test_post_refused_by_github_is_one_error_line(
    fakes: Path, body_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GH_COMMENTS", "[[]]")
    monkeypatch.setenv("FAKE_GH_REFUSES", "1")
    result = run("post", str(body_file), "--repo", "acme/churn", "--pr", "7")
    assert result.returncode == 1
    assert result.stderr.startswith("error: gh api --method POST repos/acme/churn/issues/7/comments")
    assert "HTTP 403" in result.stderr
    assert "Traceback" not in result.stderr


def test_post_refuses_a_body_without_the_marker(fakes: Path, tmp_path: Path) -> None:
    unmarked = tmp_path / "unmarked.md"
    unmarked.write_text("## review\n")
    result = run("post", str(unmarked), "--repo", "acme/churn", "--pr", "7")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert calls(fakes) == []  # nothing posted that a later push could not find and edit
