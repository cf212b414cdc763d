"""The review's page, from two templates per stack and cdk diff's output: summary, step diffs, resource changes.

No process is started here (`tools/review.py` synthesizes and runs `cdk diff`): every function reads text or
templates, so the page's rules are tested on fixtures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline_defs.local.assembly import pipeline_definitions
from tools.pipeline_diff import diff_definitions, summarize

# What a deploy must never lose quietly: data (buckets), the key that decrypts it, the registered model versions.
STATEFUL_KINDS = {
    "AWS::S3::Bucket": "S3 bucket",
    "AWS::KMS::Key": "KMS key",
    "AWS::SageMaker::ModelPackageGroup": "model package group",
}
# cdk diff shows these properties as one escaped JSON string holding a whole pipeline definition: the page shows the
# step diff instead (a large definition reaches S3 through the BucketDeployment's SourceMarkers).
DEFINITION_PROPERTIES = {
    "AWS::SageMaker::Pipeline": "PipelineDefinition",
    "Custom::CDKBucketDeployment": "SourceMarkers",
}
SEE_STEP_DIFF = "(pipeline definition: see the step diff above)"
WARNING = "!!! WARNING:"
CDK_METADATA = "AWS::CDK::Metadata"  # cdk diff never shows it: not counted either

# `[~] AWS::S3::Bucket Storage/Logs/Bucket LogsBucket1A2B3C4D replace`: operation, type, construct path, logical id,
# cdk's marker (replace, may be replaced, orphan, destroy).
RESOURCE_LINE = re.compile(
    r"\[(?P<operation>[-+~])\] (?P<type>\S+) (?:\S*/\S* )?(?P<logical_id>[A-Za-z0-9]+)(?: (?P<marker>.+))?"
)
PROPERTY_LINE = re.compile(r" [├└]─ \[.\] (?P<name>\S+)")  # a property of the resource above (depth 1 of cdk's tree)
SECTION_HEADER = re.compile(r"[A-Z][A-Za-z ]*")  # Resources, Outputs, IAM Statement Changes, ...
NOISE = re.compile(r"✨|There were no differences")


@dataclass(frozen=True)
class ResourceChange:
    """One line of cdk diff's Resources section."""

    operation: str  # "+" added, "-" removed, "~" changed
    type: str
    logical_id: str
    marker: str = ""

    @property
    def replaced(self) -> bool:
        return self.operation == "~" and "replace" in self.marker


@dataclass(frozen=True)
class StackReview:
    name: str
    summary: str  # resources added/changed/replaced/removed, on one line
    warnings: list[str]  # one loud line per stateful resource at risk
    diff: str  # cdk diff's output without the escaped definitions ("" for an unchanged stack)
    pipelines: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]  # {name: (base, head definition)}


def compare_stack(name: str, old: dict[str, Any] | None, new: dict[str, Any] | None, cdk_diff: str) -> StackReview:
    """One stack from its base template to its head template (None: no such stack there); `cdk_diff`: its output."""
    if new is None:
        changes = [
            ResourceChange("-", resource.get("Type", "?"), logical_id)
            for logical_id, resource in (old or {}).get("Resources", {}).items()
            if resource.get("Type") != CDK_METADATA
        ]
        diff = f"Stack {name}\n[-] stack removed: every resource in it is deleted or orphaned"
        sections: list[str] = []
    else:
        diff, changes, sections = read_cdk_diff(cdk_diff)
        if old is None:
            diff = diff.replace(f"Stack {name}", f"Stack {name} (new stack)", 1)
    before, after = pipeline_definitions(old or {}), pipeline_definitions(new or {})
    pipelines = {pipeline: (before.get(pipeline), after.get(pipeline)) for pipeline in [*after, *before]}
    return StackReview(
        name, count_changes(changes, sections), stateful_warnings(name, old or {}, new or {}, changes), diff, pipelines
    )


def read_cdk_diff(output: str) -> tuple[str, list[ResourceChange], list[str]]:
    """cdk diff's output without the escaped definitions and the stack count, its resource changes, its sections."""
    lines: list[str] = []
    changes: list[ResourceChange] = []
    sections: list[str] = []
    section = resource_type = ""
    hiding = False  # inside a definition property's subtree
    for line in output.splitlines():
        if NOISE.match(line):
            continue
        if hiding and line.startswith(" ") and not PROPERTY_LINE.match(line):
            continue
        hiding = False
        if SECTION_HEADER.fullmatch(line):
            section = line
            sections.append(section)
        elif section == "Resources" and (resource := RESOURCE_LINE.fullmatch(line)):
            changes.append(ResourceChange(**{key: value or "" for key, value in resource.groupdict().items()}))
            resource_type = resource["type"]
        elif section == "Resources" and (prop := PROPERTY_LINE.match(line)):
            hiding = prop["name"] == DEFINITION_PROPERTIES.get(resource_type)
            line = f"{line} {SEE_STEP_DIFF}" if hiding else line
        lines.append(line)
    return "\n".join(lines).strip(), changes, sections


def count_changes(changes: list[ResourceChange], sections: list[str]) -> str:
    counts = {
        "added": sum(change.operation == "+" for change in changes),
        "changed": sum(change.operation == "~" and not change.replaced for change in changes),
        "replaced": sum(change.replaced for change in changes),
        "removed": sum(change.operation == "-" for change in changes),
    }
    others = [section for section in sections if section != "Resources"]
    summary = ", ".join(f"{count} {what}" for what, count in counts.items() if count)
    if not others:
        return summary or "no changes"
    return f"{summary or 'no resource changes'} ({', '.join(others)}: see below)"


def stateful_warnings(stack: str, old: dict[str, Any], new: dict[str, Any], changes: list[ResourceChange]) -> list[str]:
    """A loud line for each stateful resource of `old` that the change removes, replaces or stops retaining."""
    old_resources, new_resources = old.get("Resources", {}), new.get("Resources", {})
    replaced = {change.logical_id: change.marker for change in changes if change.replaced}
    warnings = []
    for logical_id, resource in old_resources.items():
        kind = STATEFUL_KINDS.get(resource.get("Type", ""))
        if kind is None:
            continue
        what = f"{WARNING} {stack}: {kind} {logical_id}"
        if logical_id not in new_resources:
            warnings.append(f"{what} is REMOVED ({_removal(resource)}){_renamed(kind, resource, old, new)}")
            continue
        if logical_id in replaced:
            verb = "MAY BE REPLACED" if "may" in replaced[logical_id] else "is REPLACED"
            warnings.append(f"{what} {verb} by a new, empty one ({_replacement(new_resources[logical_id])})")
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            before, after = resource.get(policy, "Delete"), new_resources[logical_id].get(policy, "Delete")
            if before != "Delete" and after == "Delete":
                warnings.append(
                    f"{what} is no longer kept: {policy} {before} -> Delete (a removal or replacement "
                    "would delete it with its data)"
                )
    return warnings


def _removal(resource: dict[str, Any]) -> str:
    policy = resource.get("DeletionPolicy", "Delete")
    fate = "it is DELETED with its data" if policy == "Delete" else "it stays in the account, outside the stack"
    return f"DeletionPolicy {policy}: {fate}"


def _replacement(resource: dict[str, Any]) -> str:
    policy = resource.get("UpdateReplacePolicy", "Delete")
    fate = "is DELETED with its data" if policy == "Delete" else "stays in the account, outside the stack"
    return f"UpdateReplacePolicy {policy}: the old one {fate}"


def _renamed(kind: str, resource: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> str:
    """A hint when a resource of the same type appears: most often a renamed construct (a new logical id)."""
    successors = [
        logical_id
        for logical_id, candidate in new.get("Resources", {}).items()
        if candidate.get("Type") == resource.get("Type") and logical_id not in old.get("Resources", {})
    ]
    if not successors:
        return ""
    return f"; new {kind} {', '.join(successors)}: a changed logical id (a renamed or moved construct?)"


def render_report(title: str, stacks: list[StackReview]) -> str:
    """Summary, then the step diffs, then the resource changes: what a reviewer reads first comes first."""
    # By name across stacks: a pipeline moved to another stack is one pipeline, not one removed and one added.
    old = {name: before for stack in stacks for name, (before, _) in stack.pipelines.items() if before is not None}
    new = {name: after for stack in stacks for name, (_, after) in stack.pipelines.items() if after is not None}
    pipelines = {name: (old.get(name), new.get(name)) for stack in stacks for name in stack.pipelines}
    warnings = [warning for stack in stacks for warning in stack.warnings]
    lines = [title, "", "Summary"]
    lines += [f"  stack {stack.name}: {stack.summary}" for stack in stacks]
    lines += [f"  pipeline {name}: {summarize(old, new)}" for name, (old, new) in pipelines.items()]
    lines += warnings or ["  no stateful resource (bucket, key, model package group) is removed or replaced"]
    lines += ["", "Pipeline definitions, step by step"]
    changed = {name: diff_definitions(old, new) for name, (old, new) in pipelines.items()}
    for name, changes in changed.items():
        lines += [f"Pipeline {name}:", *(f"  {change}" for change in changes)] if changes else []
    lines += [] if any(changed.values()) else ["  no definition changes"]
    lines += ["", "Resource changes (cdk diff)"]
    for stack in stacks:
        if stack.diff:
            lines += [*stack.warnings, stack.diff, ""]
    lines += [] if any(stack.diff for stack in stacks) else ["  no changes"]
    return "\n".join(lines).rstrip() + "\n"
