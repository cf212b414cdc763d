"""Reading a synthesized cloud assembly (`cdk synth` output): stack templates, pipeline definitions, file assets.

    assembly = load_assembly(Path("cdk.out"), region="eu-west-1")
    assembly.definitions["churn-dev-training"]   # the definition CloudFormation gets, with local stand-ins
    assembly.assets["s3://cdk-.../<hash>.py"]    # the staged file CDK publishes there

A definition is the `Fn::Sub` body of an `AWS::SageMaker::Pipeline` (inline, or in the `Custom::CDKBucketDeployment`
that writes it to S3). Read for a review (`pipeline_definitions(template)`, as `tools/pipeline_diff.py` does), its
CloudFormation values become stable references (`<GetAtt Role.Arn>`) and asset hashes `asset:<8 hex>`; read to run
it (`variables`: the local runner), each `Fn::Sub` variable takes its local stand-in (`local_values`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_defs.contract import DeployTimeValue
from pipeline_defs.local.errors import DefinitionError, LocalRunError

PIPELINE_TYPE = "AWS::SageMaker::Pipeline"
BUCKET_DEPLOYMENT_TYPE = "Custom::CDKBucketDeployment"
# CDK file assets are named by the SHA-256 of their content: a changed script is a new hash.
ASSET_HASH = re.compile(r"(?<![0-9a-f])([0-9a-f]{8})[0-9a-f]{56}(?![0-9a-f])")
# The account of every local ARN (role, key, jobs, model packages).
LOCAL_ACCOUNT = "000000000000"


def local_values(region: str) -> dict[DeployTimeValue, str]:
    """Local stand-ins for the Fn::Sub variables of deployed definitions (what the stack passes in AWS)."""
    return {
        DeployTimeValue.PIPELINE_ROLE_ARN: f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local-pipeline-execution-role",
        DeployTimeValue.DATA_KEY_ARN: f"arn:aws:kms:{region}:{LOCAL_ACCOUNT}:key/local-data-key",
        DeployTimeValue.ARTIFACTS_BUCKET: "local-artifacts",
        DeployTimeValue.LANDING_BUCKET: "local-landing",
    }


# The assembly ----------------------------------------------------------------------------------------------------
# What to do about a damaged or incomplete assembly (a synth that was interrupted, a file edited by hand).
RESYNTHESIZE = "re-synthesize it (`make synth`)"


@dataclass(frozen=True)
class Assembly:
    directory: Path
    definitions: dict[str, dict[str, Any]]  # {pipeline name: definition with local values}
    assets: dict[str, Path]  # {s3://bucket/key it is published to: the staged file}
    named_assets: dict[str, Path] = field(default_factory=dict)  # {asset display name (construct id): staged file}


def load_assembly(directory: Path, region: str) -> Assembly:
    """Every pipeline definition and file asset of a `cdk synth` output directory.

    LocalRunError (one line: which file, and to re-synthesize) for a truncated or malformed manifest, template or
    asset manifest, and for a staged file asset that is missing.
    """
    directory = Path(directory)
    if not (directory / "manifest.json").is_file():
        raise LocalRunError(f"{directory} is not a cloud assembly (no manifest.json): run `cdk synth` first")
    variables = {variable.value: value for variable, value in local_values(region).items()}
    definitions: dict[str, dict[str, Any]] = {}
    for template in stack_templates(directory).values():
        try:
            definitions |= pipeline_definitions(_read(template, "template"), variables)
        except DefinitionError as error:
            raise DefinitionError(f"{template.name}: {error}") from error
    assets: dict[str, Path] = {}
    named: dict[str, Path] = {}
    for manifest in sorted(directory.rglob("*.assets.json")):
        try:
            for asset in _read(manifest, "asset manifest").get("files", {}).values():
                source = _staged_file(manifest, asset)
                if source is None:
                    continue  # directories are zipped on upload (Lambda code): no pipeline reads them
                named[str(asset.get("displayName", source.name))] = source
                for destination in asset.get("destinations", {}).values():
                    assets[f"s3://{destination['bucketName']}/{destination['objectKey']}"] = source
        except (KeyError, TypeError, AttributeError) as error:
            raise LocalRunError(f"asset manifest {manifest} is malformed (at {error}): {RESYNTHESIZE}") from None
    return Assembly(directory, definitions, assets, named)


def _staged_file(manifest: Path, asset: Mapping[str, Any]) -> Path | None:
    """The staged file of a file asset (None for a directory asset); LocalRunError when it is missing."""
    if asset["source"].get("packaging", "file") != "file":
        return None
    source = (manifest.parent / str(asset["source"]["path"])).resolve()
    if source.is_dir():
        return None
    if not source.is_file():
        raise LocalRunError(f"asset {source.name}, named in {manifest.name}, is missing: {RESYNTHESIZE}")
    return source


def _read(path: Path, what: str) -> Any:
    """A JSON file of the assembly; LocalRunError naming it when it is missing, truncated or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalRunError(f"{what} {path} is missing: {RESYNTHESIZE}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise LocalRunError(f"{what} {path} is damaged ({error}): {RESYNTHESIZE}") from None


def stack_templates(assembly_dir: Path) -> dict[str, Path]:
    """{stack display name: template file} of an assembly, including the nested assemblies of Stages."""
    templates: dict[str, Path] = {}
    manifest = assembly_dir / "manifest.json"
    try:
        for artifact in _read(manifest, "cloud assembly manifest").get("artifacts", {}).values():
            if artifact["type"] == "cdk:cloud-assembly":  # a Stage: its stacks live in a nested assembly
                templates |= stack_templates(assembly_dir / artifact["properties"]["directoryName"])
            elif artifact["type"] == "aws:cloudformation:stack":
                templates[artifact["displayName"]] = assembly_dir / artifact["properties"]["templateFile"]
    except (KeyError, TypeError, AttributeError) as error:
        raise LocalRunError(f"cloud assembly manifest {manifest} is malformed (at {error}): {RESYNTHESIZE}") from None
    return templates


# Pipeline definitions in a template ------------------------------------------------------------------------------
def pipeline_definitions(
    template: Mapping[str, Any], variables: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """{pipeline name: definition} of every `AWS::SageMaker::Pipeline` in a synthesized template.

    CloudFormation values in the definition become readable references, asset hashes become `asset:<8 hex>`.
    An S3-located definition is read from the BucketDeployment that writes it; without one, the definition is
    its S3 location (so a changed key still shows).
    `variables` ({Fn::Sub variable: value}) is for running a definition rather than reviewing it (the local
    runner): each variable takes its value from there, an unknown one is an error, and asset hashes stay whole.
    """
    resources = template.get("Resources", {})
    definitions = {}
    for resource in resources.values():
        if resource.get("Type") != PIPELINE_TYPE:
            continue
        properties = resource.get("Properties", {})
        name = render(properties.get("PipelineName", "(unnamed)"))
        source = properties.get("PipelineDefinition", {})
        if "PipelineDefinitionBody" in source:
            definition = _decode(source["PipelineDefinitionBody"], name, variables)
        else:
            location = source.get("PipelineDefinitionS3Location", {})
            body = _deployed_body(resources, location)
            if body is None and variables is not None:
                raise DefinitionError(f"pipeline {name}: no definition body in the template, only {rendered(location)}")
            definition = (
                _decode(body, name, variables)
                if body is not None
                else {"PipelineDefinitionS3Location": rendered(location)}
            )
        definitions[name] = definition if variables is not None else _shorten_assets(definition)
    return definitions


def _escape(text: str) -> str:
    """Rendered references and values go into JSON strings: escaped, the body stays valid JSON."""
    return json.dumps(text)[1:-1]


def _decode(body: Any, name: str, variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    if variables is not None and isinstance(body, dict) and "Fn::Sub" in body:
        text, values = body["Fn::Sub"] if isinstance(body["Fn::Sub"], list) else (body["Fn::Sub"], {})
        unknown = sorted(set(values) - set(variables))
        if unknown:
            raise DefinitionError(f"pipeline {name}: no value for the Fn::Sub variable(s) {', '.join(unknown)}")
        body = {"Fn::Sub": [text, {variable: _escape(variables[variable]) for variable in values}]}
    decoded: dict[str, Any] = json.loads(render(body, escape=_escape))
    return decoded


def _deployed_body(resources: Mapping[str, Any], location: Any) -> Any:
    """The definition body that the BucketDeployment referenced by `location` writes, if there is one."""
    for logical_id in _referenced_resources(location):
        resource = resources.get(logical_id, {})
        if resource.get("Type") != BUCKET_DEPLOYMENT_TYPE:
            continue
        for markers in resource.get("Properties", {}).get("SourceMarkers", []):
            for value in markers.values():
                if isinstance(value, dict) and "Fn::Sub" in value:
                    return value
    return None


def _referenced_resources(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "Ref" in value:
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield target[0] if isinstance(target, list) else str(target).split(".")[0]
        for item in value.values():
            yield from _referenced_resources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _referenced_resources(item)


def _shorten_assets(value: Any) -> Any:
    if isinstance(value, str):
        return ASSET_HASH.sub(r"asset:\1", value)
    if isinstance(value, dict):
        return {key: _shorten_assets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten_assets(item) for item in value]
    return value


# Rendering CloudFormation values ---------------------------------------------------------------------------------
def render(value: Any, escape: Callable[[str], str] = lambda text: text) -> str:
    """A CloudFormation value as text: literal strings as they are, references as `<...>` (passed to `escape`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        return _render_sub(value["Fn::Sub"], escape)
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(render(part, escape) for part in parts)
    return escape(_reference(value))


def _render_sub(arguments: Any, escape: Callable[[str], str]) -> str:
    text, variables = (arguments[0], arguments[1]) if isinstance(arguments, list) else (arguments, {})

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # `${!Literal}` is the escaped text `${Literal}`
            return "${" + name[1:] + "}"
        if name in variables:
            return render(variables[name], escape)
        return escape(f"<GetAtt {name}>" if "." in name else f"<Ref {name}>")

    return re.sub(r"\$\{([^}]*)\}", substitute, text)


def _reference(value: Any) -> str:
    """`<Ref X>`, `<GetAtt X.Arn>`, `<import name>`, ... for a CloudFormation intrinsic (any JSON value)."""
    if not isinstance(value, dict) or len(value) != 1:
        return json.dumps(value)
    ((function, arguments),) = value.items()
    if function == "Ref":
        return f"<Ref {arguments}>"
    if function == "Fn::GetAtt":
        return f"<GetAtt {'.'.join(arguments) if isinstance(arguments, list) else arguments}>"
    if function == "Fn::ImportValue":
        return f"<import {render(arguments)}>"
    if function == "Fn::GetStackOutput":
        return f"<output {arguments.get('StackName')}.{arguments.get('OutputName')}>"
    if function in ("Fn::Sub", "Fn::Join"):
        return render(value)
    if function == "Fn::Select" and isinstance(arguments, list) and "Fn::Split" in _as_dict(arguments[-1]):
        # CDK's idiom for a part of an ARN: read left to right, e.g. <import x-arn | split ":" [5] | split "/" [0]>
        delimiter, source = arguments[1]["Fn::Split"]
        inner = render(source)
        inner = inner[:-1] if inner.startswith("<") and inner.endswith(">") else f"<{json.dumps(inner)}"
        return f"{inner} | split {json.dumps(delimiter)} [{arguments[0]}]>"
    shown = [render(item) for item in arguments] if isinstance(arguments, list) else render(arguments)
    return f"<{function.removeprefix('Fn::')} {json.dumps(shown)}>"


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def rendered(value: Any) -> Any:
    """A structure (e.g. an S3 location) with each CloudFormation value in it rendered."""
    if isinstance(value, dict) and not any(key == "Ref" or key.startswith("Fn::") for key in value):
        return {key: rendered(item) for key, item in value.items()}
    return render(value)
