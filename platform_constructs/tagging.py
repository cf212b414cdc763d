"""Cost-allocation tags, including on the raw resources CDK creates for its own custom-resource providers."""

from __future__ import annotations

from aws_cdk import CfnResource, TagManager, Tags
from constructs import Construct

# Types CDK's CustomResourceProvider emits as plain CfnResource, which `Tags.of` cannot reach.
_PROVIDER_TYPES_WITH_LIST_TAGS = {"AWS::IAM::Role", "AWS::Lambda::Function"}


def apply_tags(scope: Construct, tags: dict[str, str]) -> None:
    """Tag everything below `scope`; call after every resource of the scope exists."""
    for key, value in tags.items():
        Tags.of(scope).add(key, value)
    tag_list = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
    for node in scope.node.find_all():
        if (
            isinstance(node, CfnResource)
            and node.cfn_resource_type in _PROVIDER_TYPES_WITH_LIST_TAGS
            and not TagManager.is_taggable(node)
        ):
            node.add_property_override("Tags", tag_list)
