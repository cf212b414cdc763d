"""Reasoned exceptions for the static checkers that read the synthesized templates (checkov, cfn-lint).

cdk-nag exceptions use `Validations.of(scope).acknowledge(...)` directly; these two checkers only see
CloudFormation, so their exceptions travel as resource metadata. Every exception carries its reason.
"""

from __future__ import annotations

from typing import TypeVar

from aws_cdk import CfnResource, Stack
from constructs import IConstruct

_Resource = TypeVar("_Resource", bound=CfnResource)


def cfn_resource(construct: IConstruct | None, resource_type: type[_Resource]) -> _Resource:
    """`construct` (e.g. an L2's `node.default_child`) as the CloudFormation resource it must be; TypeError if not."""
    if not isinstance(construct, resource_type):
        raise TypeError(f"expected a {resource_type.__name__}, got {type(construct).__name__}")
    return construct


def skip_checkov(resource: CfnResource, **reasons_by_check: str) -> None:
    """Skip checkov checks on one resource, e.g. `skip_checkov(bucket, CKV_AWS_18="why")`."""
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"] = metadata["skip"] + [
        {"id": check, "comment": reason} for check, reason in reasons_by_check.items()
    ]
    resource.add_metadata("checkov", metadata)


def ignore_cfn_lint(resource: CfnResource, rule: str, reason: str) -> None:
    """Ignore one cfn-lint rule on one resource; the reason is kept next to it for reviewers."""
    metadata = resource.get_metadata("cfn-lint") or {"config": {"ignore_checks": []}, "reasons": {}}
    metadata["config"]["ignore_checks"] = metadata["config"]["ignore_checks"] + [rule]
    metadata["reasons"] = {**metadata["reasons"], rule: reason}
    resource.add_metadata("cfn-lint", metadata)


AUTO_DELETE_PROVIDER_ID = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def annotate_auto_delete_provider(stack: Stack) -> None:
    """Explain the checker findings on CDK's own auto-delete-objects Lambda (only sandboxes have it)."""
    provider = stack.node.try_find_child(AUTO_DELETE_PROVIDER_ID)
    if provider is None:
        return
    handler = cfn_resource(provider.node.find_child("Handler"), CfnResource)
    explain_cdk_provider_function(
        handler, runs="once per stack deletion", calls="the S3 API of its own buckets", cost=" to disposable sandboxes"
    )


def explain_cdk_provider_function(handler: CfnResource, *, runs: str, calls: str, cost: str = "") -> None:
    """The checker findings on a Lambda function CDK provides for a custom resource: `runs` says when it runs,
    `calls` what it calls, `cost` whom a VPC would cost."""
    skip_checkov(
        handler,
        CKV_AWS_115=f"CDK-managed handler that runs {runs}; a concurrency limit adds nothing.",
        CKV_AWS_116="CloudFormation invokes it synchronously and reports its failure on the stack: no DLQ to read.",
        CKV_AWS_117=f"It only calls {calls}; a VPC would add NAT cost{cost}.",
    )
    ignore_cfn_lint(
        handler,
        "W3005",
        "CDK emits both DependsOn and GetAtt on the provider role; redundant, harmless, not ours to change.",
    )
