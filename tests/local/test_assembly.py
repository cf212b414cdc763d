"""The assembly reader: stack templates, pipeline definitions with local stand-ins, file assets; and the package's
promise to import neither the SageMaker SDK nor CDK nor tools/."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline_defs.local
from pipeline_defs.contract import DeployTimeValue
from pipeline_defs.local import DefinitionError, LocalRunError, load_assembly, local_values
from pipeline_defs.local.assembly import pipeline_definitions, stack_templates

PACKAGE_DIR = Path(pipeline_defs.local.__file__).parent
# What the engine must never load: the SDK (and the modules that build definitions with it), CDK, tools/.
FORBIDDEN = ("sagemaker", "aws_cdk", "constructs", "tools", "pipeline_defs.sdk", "pipeline_defs.dsl")
FORBIDDEN += ("pipeline_defs.definitions", "pipeline_defs.training", "pipeline_defs.evaluation")


def pipeline_template(definition: dict, variables: dict) -> dict:
    body = {"Fn::Sub": [json.dumps(definition), variables]}
    return {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {"PipelineName": "p", "PipelineDefinition": {"PipelineDefinitionBody": body}},
            }
        }
    }


DEFINITION = {"Steps": [{"Name": "S", "Arguments": {"Uri": "s3://${ArtifactsBucket}/x", "Role": "${PipelineRoleArn}"}}]}


def test_local_values_stand_in_for_every_variable_of_the_deployed_definitions() -> None:
    from pipeline_defs.definitions import PLACEHOLDERS  # loads the SageMaker SDK: only here

    assert set(local_values("eu-west-1")) == set(PLACEHOLDERS)


def test_local_values_are_keyed_by_the_contract_variables() -> None:
    values = local_values("eu-west-1")

    assert list(values) == list(DeployTimeValue)
    assert values[DeployTimeValue.ARTIFACTS_BUCKET] == "local-artifacts"
    assert values[DeployTimeValue.LANDING_BUCKET] == "local-landing"
    assert values[DeployTimeValue.DATA_KEY_ARN] == "arn:aws:kms:eu-west-1:000000000000:key/local-data-key"


def test_named_fn_sub_variables_take_their_values_to_run_and_stay_references_to_review() -> None:
    template = pipeline_template(DEFINITION, {"ArtifactsBucket": {"Ref": "Bucket"}, "PipelineRoleArn": {"Ref": "R"}})

    run = pipeline_definitions(template, {"ArtifactsBucket": "local-artifacts", "PipelineRoleArn": 'a"b'})
    review = pipeline_definitions(template)

    assert run["p"]["Steps"][0]["Arguments"] == {"Uri": "s3://local-artifacts/x", "Role": 'a"b'}
    assert review["p"]["Steps"][0]["Arguments"] == {"Uri": "s3://<Ref Bucket>/x", "Role": "<Ref R>"}


def test_a_variable_without_a_local_value_is_one_message() -> None:
    template = pipeline_template(DEFINITION, {"ArtifactsBucket": {"Ref": "Bucket"}, "PipelineRoleArn": {"Ref": "R"}})

    with pytest.raises(DefinitionError) as error:
        pipeline_definitions(template, {"ArtifactsBucket": "local-artifacts"})
    assert str(error.value) == "pipeline p: no value for the Fn::Sub variable(s) PipelineRoleArn"


def test_an_s3_located_definition_without_its_body_cannot_run() -> None:
    location = {"Bucket": {"Ref": "Bucket"}, "Key": "definitions/p.json"}
    template = {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {"PipelineName": "p", "PipelineDefinition": {"PipelineDefinitionS3Location": location}},
            }
        }
    }

    assert pipeline_definitions(template) == {
        "p": {"PipelineDefinitionS3Location": {**location, "Bucket": "<Ref Bucket>"}}
    }
    with pytest.raises(DefinitionError) as error:
        pipeline_definitions(template, {})
    assert str(error.value) == (
        "pipeline p: no definition body in the template, only {'Bucket': '<Ref Bucket>', 'Key': 'definitions/p.json'}"
    )


def test_a_folder_without_a_manifest_is_not_an_assembly(tmp_path: Path) -> None:
    with pytest.raises(LocalRunError) as error:
        load_assembly(tmp_path, "eu-west-1")
    assert str(error.value) == f"{tmp_path} is not a cloud assembly (no manifest.json): run `cdk synth` first"


def test_the_synthesized_definitions_use_the_local_stand_ins_and_staged_assets(assembly, dev_config) -> None:
    text = json.dumps(assembly.definitions[dev_config.training_pipeline_name])

    assert "s3://local-artifacts/" in text
    assert not [variable for variable in DeployTimeValue if f"${{{variable}}}" in text]
    code = [uri for uri in assembly.assets if uri in text]
    assert code and all(assembly.assets[uri].is_file() for uri in code)


def test_stack_templates_reads_nested_stage_assemblies(tmp_path):
    nested = tmp_path / "assembly-unit"
    nested.mkdir()
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "unit": {"type": "cdk:cloud-assembly", "properties": {"directoryName": "assembly-unit"}},
                    "Tree": {"type": "cdk:tree"},
                }
            }
        )
    )
    (nested / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "s": {
                        "type": "aws:cloudformation:stack",
                        "displayName": "unit/Storage",
                        "properties": {"templateFile": "s.json"},
                    },
                }
            }
        )
    )
    assert stack_templates(tmp_path) == {"unit/Storage": nested / "s.json"}


# The package's imports -------------------------------------------------------------------------------------------
def forbidden(modules: list[str]) -> list[str]:
    return [module for module in modules if any(module == f or module.startswith(f"{f}.") for f in FORBIDDEN)]


def test_importing_the_engine_loads_neither_the_sdk_nor_cdk_nor_tools() -> None:
    script = "import json, sys, pipeline_defs.local; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout)

    assert "pipeline_defs.local.runner" in loaded
    assert forbidden(loaded) == []


def test_no_module_of_the_engine_imports_them_even_inside_a_function() -> None:
    imported = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.append((path.name, node.module))

    assert len(imported) > 20
    assert [(name, module) for name, module in imported if forbidden([module])] == []
