"""The pull request's review comment: `make review` of every unit, posted once and then edited in place.

`body --base SHA` runs `make review BASE=<SHA> ENV=<unit>` for dev, staging and prod and prints one Markdown document
that starts with a hidden marker (exit 1 after printing it when a unit's review failed: the comment then says so).
`post FILE --repo OWNER/NAME --pr N` finds the comment that carries the marker and was written by the workflow's bot,
and edits it, or posts a new one: one comment per pull request, whatever the number of pushes. GitHub's REST API through
the `gh` CLI (on GitHub's runners; authenticated by GH_TOKEN). Standard library only: it runs before any install.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

UNITS = ("dev", "staging", "prod")
MARKER = "<!-- churn-ml-platform:review -->"
BOT_LOGIN = "github-actions[bot]"
MAX_BODY = 65_536  # GitHub refuses a longer comment body (characters)
ROOM_FOR_HEADINGS = 2_000  # the title, the notes and each unit's heading and fences


def fenced(text: str) -> str:
    """`text` in a code fence longer than any run of backticks inside it, so nothing in it can close the fence."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def shortened(text: str, limit: int, run_url: str) -> str:
    if len(text) <= limit:
        return text
    where = f"the job log ({run_url})" if run_url else "the job log"
    return f"{text[:limit]}\n[... {len(text) - limit} more characters: the whole review is in {where}]"


def unit_review(base: str, unit: str) -> tuple[str, bool]:
    """The output of `make review BASE=<base> ENV=<unit>` and whether it succeeded."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "review", f"BASE={base}", f"ENV={unit}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return done.stdout, True
    return f"{done.stdout}{done.stderr}\n(make review exited with {done.returncode})", False


def review_body(base: str, head: str, run_url: str) -> tuple[str, bool]:
    """The comment for every unit, each unit's part cut to an equal share of GitHub's limit (prod is never cut away)."""
    share = (MAX_BODY - ROOM_FOR_HEADINGS) // len(UNITS)
    revisions = f"`{base[:12]}` -> `{head[:12]}`" if head else f"`{base[:12]}` -> this pull request"
    parts = [
        MARKER,
        "## What this pull request changes in AWS",
        f"`make review` per unit, {revisions}: synthesized templates compared offline (the deployed stacks are not"
        " read). Edited in place on every push.",
    ]
    all_succeeded = True
    for unit in UNITS:
        output, succeeded = unit_review(base, unit)
        all_succeeded &= succeeded
        heading = f"### `{unit}`" if succeeded else f"### `{unit}`: **the review failed**"
        parts += [heading, fenced(shortened(output, share, run_url))]
    return "\n\n".join(parts) + "\n", all_succeeded


def gh_api(*arguments: str) -> str:
    done = subprocess.run(["gh", "api", *arguments], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"error: gh api {' '.join(arguments)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def earlier_comment(repo: str, pr: int) -> int | None:
    """The id of the review comment posted on this pull request before, if any (the oldest, should there be two)."""
    pages = json.loads(gh_api("--paginate", "--slurp", f"repos/{repo}/issues/{pr}/comments"))
    for comment in (comment for page in pages for comment in page):
        author = (comment.get("user") or {}).get("login")  # a deleted account's comments have no user
        if author == BOT_LOGIN and (comment.get("body") or "").startswith(MARKER):
            return int(comment["id"])
    return None


def post(body_file: Path, repo: str, pr: int) -> str:
    if not body_file.is_file():
        sys.exit(f"error: no review to post at {body_file}. Fix: write it first with `review_comment.py body`")
    if not body_file.read_text().startswith(MARKER):
        sys.exit(f"error: {body_file} lacks the marker {MARKER}, so its comment could never be edited in place")
    comment_id = earlier_comment(repo, pr)
    if comment_id is None:
        answer = gh_api("--method", "POST", f"repos/{repo}/issues/{pr}/comments", "-F", f"body=@{body_file}")
    else:
        answer = gh_api("--method", "PATCH", f"repos/{repo}/issues/comments/{comment_id}", "-F", f"body=@{body_file}")
    verb = "posted" if comment_id is None else "updated"
    return f"{verb} {json.loads(answer).get('html_url', 'the review comment')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    body = commands.add_parser("body", help="print the comment: `make review` of every unit against BASE")
    body.add_argument("--base", required=True, help="the base revision (the pull request's base commit)")
    body.add_argument("--head", default="", help="the head commit, named in the comment")
    body.add_argument("--run-url", default="", help="the workflow run, named where a review is cut short")
    send = commands.add_parser("post", help="post the comment, or edit the one posted before")
    send.add_argument("body_file", type=Path)
    send.add_argument("--repo", required=True, help="owner/name")
    send.add_argument("--pr", required=True, type=int, help="the pull request's number")
    args = parser.parse_args(argv)
    if args.command == "body":
        text, all_succeeded = review_body(args.base, args.head, args.run_url)
        sys.stdout.write(text)
        return 0 if all_succeeded else 1
    print(post(args.body_file, args.repo, args.pr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
