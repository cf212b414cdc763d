"""`mlops diff --env E`: what the next deploy changes in AWS, and what was changed there outside CloudFormation.

Three versions of each SageMaker pipeline, endpoint, endpoint config and monitoring schedule of the unit (and,
template to template, of its models and model-quality job definitions):
  next      the template in cdk.out (`make synth ENV=E`): what the next `cdk deploy` sends;
  deployed  the stack's template as last deployed (CloudFormation GetTemplate);
  live      what SageMaker holds (DescribePipeline's definition, DescribeEndpoint, DescribeEndpointConfig of the
            endpoint's current config, DescribeMonitoringSchedule).
deployed -> next is what the next deploy changes; deployed -> live is what was changed in the console (or by any
call outside CloudFormation) since the last deploy. Both print with the review's path renderer
(`tools/pipeline_diff.py`): pipelines step by step, other resources property by property.

Values CloudFormation fills in at deploy time (bucket names, key and role ARNs, generated names) are compared as
placeholders, the way `make review` shows them (`<GetAtt ExecutionRole.Arn>`, `<output churn-dev-Storage.X>`):
where the deployed template has one, the live value in its place is read as that placeholder. A placeholder stands
for one value per resource, so a value edited in one place of a definition still shows. Fields the Describe calls do
not return (tags, for one) are compared template to template only. Read-only: nothing in AWS changes.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client
from mlops.common import UsageError, default_assembly, shown, synth_command
from mlops.local import read_assembly
from pipeline_defs.local.assembly import ASSET_HASH, PIPELINE_TYPE, pipeline_definitions, render, stack_templates
from tools.pipeline_diff import diff_definitions, diff_values, item_key

HELP = "what the next deploy changes in AWS (cdk.out vs the deployed stacks) and what was changed in the console"

# CloudFormation names the endpoint config; the live endpoint says which config it runs (read before the config).
ENDPOINT_CONFIG = "AWS::SageMaker::EndpointConfig"
# The resources compared: {type: (what it is, the property that names it; None: one per stack, named by CloudFormation)}
WATCHED_TYPES: dict[str, tuple[str, str | None]] = {
    PIPELINE_TYPE: ("pipeline", "PipelineName"),
    "AWS::SageMaker::Endpoint": ("endpoint", "EndpointName"),
    ENDPOINT_CONFIG: ("endpoint config", None),
    "AWS::SageMaker::Model": ("model", None),
    "AWS::SageMaker::MonitoringSchedule": ("monitoring schedule", "MonitoringScheduleName"),
    "AWS::SageMaker::ModelQualityJobDefinition": ("model-quality job definition", None),
}
# How each live resource is read: {type: (Describe call, its name parameter)}. Models and job definitions cannot be
# changed in SageMaker (a change is a new one, which the endpoint or schedule then names): template to template only.
DESCRIBE = {
    PIPELINE_TYPE: ("describe_pipeline", "PipelineName"),
    "AWS::SageMaker::Endpoint": ("describe_endpoint", "EndpointName"),
    ENDPOINT_CONFIG: ("describe_endpoint_config", "EndpointConfigName"),
    "AWS::SageMaker::MonitoringSchedule": ("describe_monitoring_schedule", "MonitoringScheduleName"),
}
LIVE_NAMES = {"DeploymentConfig": "LastDeploymentConfig"}  # template properties a Describe call names otherwise
# A CloudFormation value as the review renders it: `<GetAtt X.Arn>`, `<Ref X>`, `<output Stack.Name>`, `<import x>`.
PLACEHOLDER = re.compile(r"<[A-Za-z:]+ [^<>]*>")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assembly",
        type=Path,
        help="the next deploy: cdk synth output (default: cdk.out; a sandbox's: cdk.out.<sandbox>)",
    )


@dataclass(frozen=True)
class Resource:
    type: str
    name: str  # its physical name where the template gives one, else its logical id
    properties: dict[str, Any]  # CloudFormation values rendered as placeholders; a pipeline's without its definition
    definition: dict[str, Any] | None = None  # a pipeline's definition, decoded


@dataclass
class Comparison:
    stack: str
    resource: str  # e.g. "pipeline churn-dev-training", "endpoint config"
    state: str = "compared"  # or: created/deleted by the next deploy, missing in AWS
    next_deploy: list[str] = field(default_factory=list)  # deployed template -> cdk.out
    changed_in_console: list[str] = field(default_factory=list)  # deployed template -> AWS


def command_diff(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    stacks = unit_stacks(args.assembly, config)
    cloudformation, sagemaker = client("cloudformation", config), client("sagemaker", config)
    comparisons = []
    for stack, template in stacks.items():
        comparisons += compare_stack(stack, template, deployed_template(cloudformation, stack), sagemaker)
    if args.json:
        print(json.dumps({"unit": config.name_prefix, "resources": [asdict(c) for c in comparisons]}, indent=2))
    else:
        print(report(config, comparisons))
    return 0


def unit_stacks(assembly: Path, config: EnvironmentConfig) -> dict[str, dict[str, Any]]:
    """{stack name: template} of the unit's stacks in `assembly`; one UsageError line when there is no such unit, or
    its step code is older than the checkout's (as `mlops run` checks it)."""
    read_assembly(assembly, config)
    prefix = f"{config.name_prefix}/"
    found = stack_templates(assembly)
    ours = {display: path for display, path in found.items() if display.startswith(prefix)}
    if not ours:
        # It holds another unit: synthesizing this one there would replace that one, so it goes to its own folder.
        own = default_assembly(config)
        then = "" if own == assembly else f", then pass --assembly {shlex.quote(shown(own))}"
        held = ", ".join(sorted({display.split("/")[0] for display in found})) or "no stack"
        raise UsageError(
            f"{shown(assembly)} holds {held}, not {config.name_prefix}; synthesize the unit into its own folder "
            f"first: `{synth_command(config, own)}`{then}"
        )
    return {
        f"{config.name_prefix}-{display.removeprefix(prefix)}": json.loads(path.read_text())
        for display, path in ours.items()
    }


def deployed_template(cloudformation: Any, stack: str) -> dict[str, Any] | None:
    """The template the stack was last deployed with (None: the stack is not deployed)."""
    try:
        body = cloudformation.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise AwsCallFailed(f"reading the deployed template of {stack} failed: {error}") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"reading the deployed template of {stack} failed: {error}") from None
    # botocore decodes a JSON body itself; CDK deploys JSON, so a string here is a template that is no longer CDK's.
    try:
        return body if isinstance(body, dict) else dict(json.loads(body))
    except ValueError:
        raise AwsCallFailed(f"the deployed template of {stack} is not JSON: it was not deployed by CDK") from None


def watched(template: dict[str, Any] | None) -> dict[str, Resource]:
    """{label: resource} of the compared resources of a template, live reads in dependency order (endpoint first)."""
    if template is None:
        return {}
    definitions = pipeline_definitions(template)
    resources: dict[str, Resource] = {}
    order = list(WATCHED_TYPES)
    found = [item for item in template.get("Resources", {}).items() if item[1].get("Type") in WATCHED_TYPES]
    for logical_id, resource in sorted(found, key=lambda item: order.index(item[1]["Type"])):
        kind, name_property = WATCHED_TYPES[resource["Type"]]
        properties = rendered(resource.get("Properties", {}))
        name = properties.get(name_property) if name_property else None
        name = name if isinstance(name, str) and not PLACEHOLDER.search(name) else logical_id
        label = f"{kind} {name}" if name_property else kind
        label = label if label not in resources else f"{kind} {logical_id}"
        definition = definitions.get(name) if resource["Type"] == PIPELINE_TYPE else None
        if definition is not None:
            del properties["PipelineDefinition"]
        resources[label] = Resource(resource["Type"], name, properties, definition)
    return resources


def rendered(value: Any) -> Any:
    """A template value with each CloudFormation value as its placeholder; lists, numbers and booleans kept."""
    if isinstance(value, list):
        return [rendered(item) for item in value]
    if isinstance(value, dict) and not any(key == "Ref" or key.startswith("Fn::") for key in value):
        return {key: rendered(item) for key, item in value.items()}
    return render(value) if isinstance(value, dict | str) else value


def compare_stack(
    stack: str, template: dict[str, Any], deployed: dict[str, Any] | None, sagemaker: Any
) -> list[Comparison]:
    nexts, deployeds = watched(template), watched(deployed)
    live_names: dict[str, str] = {}  # {type: name} learnt from another live resource (the endpoint's config)
    comparisons = []
    for label in [*deployeds, *(label for label in nexts if label not in deployeds)]:
        comparison = Comparison(stack, label)
        before, after = deployeds.get(label), nexts.get(label)
        if before is None:
            comparison.state = "created by the next deploy"
        elif after is None:
            comparison.state = "deleted by the next deploy"
        else:
            comparison.next_deploy = changes(before.properties, after.properties, before.definition, after.definition)
        if before is not None and before.type == ENDPOINT_CONFIG and ENDPOINT_CONFIG not in live_names:
            comparison.state = "not compared with AWS: no live endpoint names its config"
        elif before is not None and before.type in DESCRIBE:
            live = read_live(sagemaker, before, live_names)
            if live is None:
                comparison.state = "missing in AWS: deleted outside CloudFormation"
            else:
                comparison.changed_in_console = console_changes(before, *live)
        comparisons.append(comparison)
    return comparisons


def changes(
    old: dict[str, Any], new: dict[str, Any], old_definition: Any = None, new_definition: Any = None
) -> list[str]:
    """Property paths old -> new, then a pipeline's definition step by step."""
    return diff_values("", old, new) + diff_definitions(old_definition, new_definition)


def read_live(sagemaker: Any, resource: Resource, live_names: dict[str, str]) -> tuple[dict[str, Any], Any] | None:
    """(properties in the template's shape, decoded definition) of the live resource; None when it does not exist."""
    call, parameter = DESCRIBE[resource.type]
    name = live_names.get(resource.type, resource.name)
    try:
        response = getattr(sagemaker, call)(**{parameter: name})
    except ClientError as error:
        message = str(error)
        if any(text in message for text in ("does not exist", "Could not find", "not found")):
            return None
        raise AwsCallFailed(f"{call.replace('_', '-')} {name} failed: {message}") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"{call.replace('_', '-')} {name} failed: {error}") from None
    if "EndpointConfigName" in response and resource.type == "AWS::SageMaker::Endpoint":
        live_names[ENDPOINT_CONFIG] = response["EndpointConfigName"]  # the config it runs, whatever its name
    properties = {
        key: response[LIVE_NAMES.get(key, key)] for key in resource.properties if LIVE_NAMES.get(key, key) in response
    }
    definition = None
    if "PipelineDefinition" in response:  # asset hashes as the review shows them, as in the templates
        definition = json.loads(ASSET_HASH.sub(r"asset:\1", response["PipelineDefinition"]))
    return properties, definition


def console_changes(deployed: Resource, live_properties: dict[str, Any], live_definition: Any) -> list[str]:
    """deployed -> live, with the live values in the template's placeholders' places read as those placeholders."""
    compared = {key: deployed.properties[key] for key in live_properties}
    live = unify(
        {"properties": compared, "definition": deployed.definition},
        {"properties": live_properties, "definition": live_definition},
    )
    return changes(compared, live["properties"], deployed.definition, live["definition"])


def unify(template: Any, live: Any) -> Any:
    """`live`, with each value that stands where `template` has a placeholder put back as that placeholder.

    Each placeholder stands for one value: the one most places hold. So a value edited in one place (a role
    changed on one step) still shows there, while the value CloudFormation filled in everywhere does not.
    """
    votes: dict[str, Counter[str]] = defaultdict(Counter)

    def vote(pattern: str, value: str) -> str:
        for placeholder, filled in _filled(pattern, value).items():
            votes[placeholder][filled] += 1
        return value

    _zip(template, live, vote)
    bindings = {placeholder: counts.most_common(1)[0][0] for placeholder, counts in votes.items()}

    def restore(pattern: str, value: str) -> str:
        filled = _filled(pattern, value)
        return pattern if filled and all(bindings[p] == v for p, v in filled.items()) else value

    return _zip(template, live, restore)


def _zip(template: Any, live: Any, leaf: Callable[[str, str], str]) -> Any:
    """`live` rebuilt, each string where `template` has a string with a placeholder replaced by `leaf(pattern, it)`.

    Dicts match by key, lists by their items' names (else by position when both are as long).
    """
    if isinstance(template, dict) and isinstance(live, dict):
        return {key: _zip(template[key], value, leaf) if key in template else value for key, value in live.items()}
    if isinstance(template, list) and isinstance(live, list):
        name_key = item_key(template, live)
        if name_key is not None:
            by_name = {item[name_key]: item for item in template}
            return [_zip(by_name.get(item[name_key]), item, leaf) for item in live]
        if len(template) == len(live):
            return [_zip(old, new, leaf) for old, new in zip(template, live, strict=True)]
    if isinstance(template, str) and isinstance(live, str) and PLACEHOLDER.search(template):
        return leaf(template, live)
    return live


def _filled(pattern: str, value: str) -> dict[str, str]:
    """{placeholder: what stands in its place} when `value` is `pattern` filled in consistently, else {}."""
    literals = PLACEHOLDER.split(pattern)
    match = re.fullmatch("(.+?)".join(re.escape(literal) for literal in literals), value, re.DOTALL)
    if match is None:
        return {}
    filled: dict[str, str] = {}
    for placeholder, text in zip(PLACEHOLDER.findall(pattern), match.groups(), strict=True):
        if filled.setdefault(placeholder, text) != text:
            return {}
    return filled


def report(config: EnvironmentConfig, comparisons: list[Comparison]) -> str:
    """A summary line, then per stack and resource what the next deploy changes and what the console changed."""
    deploying = sum(bool(c.next_deploy) or c.state.endswith("next deploy") for c in comparisons)
    edited = sum(bool(c.changed_in_console) or c.state.startswith("missing") for c in comparisons)
    lines = [
        f"{config.name_prefix} ({config.region}): cdk.out against the deployed templates and what SageMaker runs",
        f"the next deploy changes {_count(deploying)}; {_count(edited)} changed in the console since the last deploy",
    ]
    stack = ""
    for comparison in comparisons:
        if comparison.stack != stack:
            stack = comparison.stack
            lines += ["", stack]
        lines += [f"  {comparison.resource}: {_state(comparison)}"]
        if comparison.next_deploy:
            lines += ["    the next deploy changes (deployed template -> cdk.out):"]
            lines += [f"      {line}" for line in comparison.next_deploy]
        if comparison.changed_in_console:
            lines += ["    changed in the console (deployed template -> AWS):"]
            lines += [f"      {line}" for line in comparison.changed_in_console]
            lines += [
                "    the next deploy writes cdk.out's version over these"
                if comparison.next_deploy
                else "    the next deploy keeps these: CloudFormation sees no change to this resource"
            ]
    return "\n".join(lines)


def _state(comparison: Comparison) -> str:
    if comparison.state != "compared":
        return comparison.state
    return "changes" if comparison.next_deploy or comparison.changed_in_console else "no changes"


def _count(resources: int) -> str:
    return f"{resources} resource{'' if resources == 1 else 's'}"
