"""Review a change without AWS access: what the next deploy changes, compared with a git revision, on one page.

Synthesizes the base revision (from `git archive`, so the working tree is untouched) and the working tree with the
same venv and CDK CLI, then reports, in this order:
1. a summary: per stack the resources added/changed/replaced/removed, per pipeline the steps changed, and a loud
   warning for every stateful resource (bucket, key, model package group) that is replaced or removed, or no longer
   retained (found by resource type in the templates, logical-id changes and cdk diff's replacement markers);
2. per SageMaker pipeline the changed paths, old -> new (`tools/pipeline_diff.py`);
3. the real `cdk diff --template <base template>` per changed stack (IAM, security groups, properties), with the
   pipeline definition - one escaped JSON string there - replaced by a pointer to the step diff.
Nothing calls AWS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from pipeline_defs.definitions import CACHE_DIR as SYNTH_CACHE
from pipeline_defs.local.assembly import stack_templates
from tools.review_report import compare_stack, render_report

REPO_ROOT = Path(__file__).resolve().parents[1]
WORK_DIR = REPO_ROOT / ".review"
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
OFFLINE_ENV = {
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "FORCE_COLOR": "0",  # plain text: the report is parsed, pasted and posted
}


def cdk(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | OFFLINE_ENV
    env["PATH"] = f"{CDK.parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [str(CDK), *args, "--no-notices"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def export_revision(revision: str, destination: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=REPO_ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        sys.exit(f"review: cannot read revision '{revision}': {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")


def synth(tree: Path, outdir: Path, context: list[str]) -> dict[str, Path]:
    """Synthesize `tree` into `outdir`; returns {stack display name: template path} ({} if there is no app)."""
    if not (tree / "app.py").exists():
        return {}
    if tree != REPO_ROOT and SYNTH_CACHE.is_dir():
        # The checkout's definitions cache is keyed by everything that shapes a definition, so another tree can only
        # hit entries built from the same inputs: it saves that tree the SDK import and the build.
        shutil.copytree(SYNTH_CACHE, tree / SYNTH_CACHE.relative_to(REPO_ROOT), dirs_exist_ok=True)
    args = ["synth", "--quiet", "--app", f"{sys.executable} app.py", "-o", str(outdir)]
    for item in context:
        args += ["-c", item]
    result = cdk(args, cwd=tree)
    if result.returncode != 0:
        sys.exit(f"review: synth of {tree} failed:\n{result.stderr}")
    return stack_templates(outdir)


def review(base: str, context: list[str], tree: Path = REPO_ROOT, work_dir: Path = WORK_DIR) -> str:
    """The report for `tree` (default: the working tree) against the revision `base`, built in `work_dir`."""
    shutil.rmtree(work_dir, ignore_errors=True)
    base_tree = work_dir / "base-tree"
    base_tree.mkdir(parents=True)
    export_revision(base, base_tree)
    base_stacks = synth(base_tree, work_dir / "base.out", context)
    head_assembly = work_dir / "head.out"
    head_stacks = synth(tree, head_assembly, context)
    empty = work_dir / "empty.template.json"
    empty.write_text("{}")
    stacks = []
    for name in sorted(base_stacks.keys() | head_stacks.keys()):
        base_template, head_template = base_stacks.get(name), head_stacks.get(name)
        old, new = (json.loads(path.read_text()) if path else None for path in (base_template, head_template))
        diff = ""
        if new is not None and old != new:
            # --exclusively: a fixed template compares one stack, without the stacks it references.
            args = [
                "diff",
                "--exclusively",
                "--app",
                str(head_assembly),
                "--template",
                str(base_template or empty),
                name,
            ]
            result = cdk(args, cwd=REPO_ROOT)
            if result.returncode != 0:
                sys.exit(f"review: cdk diff of {name} failed:\n{result.stderr}")
            diff = f"{result.stdout}{result.stderr}"
        stacks.append(compare_stack(name, old, new, diff))
    return render_report(f"Review of the working tree against {base} ({' '.join(context) or 'env=dev'})", stacks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare against (default: main)")
    parser.add_argument("--env", default="dev", help="environment to synthesize (default: dev)")
    parser.add_argument("--sandbox", help="review a sandbox unit instead")
    args = parser.parse_args(argv)
    context = [f"env={args.env}"] + ([f"sandbox={args.sandbox}"] if args.sandbox else [])
    print(review(args.base, context))


if __name__ == "__main__":
    main()
