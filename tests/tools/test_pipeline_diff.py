"""The review's pipeline diff: definitions read from templates, changes shown step by step and field by field."""

from __future__ import annotations

import copy
import json

from pipeline_defs.local.assembly import pipeline_definitions
from tools.pipeline_diff import diff_definitions

PREPROCESS_HASH = "1234abcd" + "0" * 56
TRAIN_HASH = "5678ef01" + "1" * 56


def processing_step(name: str, code_hash: str, **extra) -> dict:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1}},
            "AppSpecification": {
                "ImageUri": "sklearn:1.4-2",
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{code_hash}.py"],
            },
            "RoleArn": "${Value0}",
            "ProcessingInputs": [
                {"InputName": "data", "S3Input": {"S3Uri": {"Get": "Parameters.InputDataUri"}}},
                {"InputName": "code", "S3Input": {"S3Uri": f"s3://cdk-assets/{code_hash}.py"}},
            ],
        },
        **extra,
    }


def definition() -> dict:
    """A small definition shaped like the synthesized ones (decoded: `${ValueN}` are still in it)."""
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputDataUri", "Type": "String"},
            {"Name": "MaxRegression", "Type": "Float", "DefaultValue": 0.01},
        ],
        "Steps": [
            processing_step("Preprocess", PREPROCESS_HASH, CacheConfig={"Enabled": True, "ExpireAfter": "P30D"}),
            {
                "Name": "Train",
                "Type": "Training",
                "Arguments": {
                    "HyperParameters": {"sagemaker_submit_directory": f"s3://cdk-assets/{TRAIN_HASH}.gz"},
                    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
                    "RoleArn": "${Value0}",
                },
                "CacheConfig": {"Enabled": True, "ExpireAfter": "P30D"},
            },
            processing_step("Evaluate", PREPROCESS_HASH, CacheConfig={"Enabled": True, "ExpireAfter": "P30D"}),
            {
                "Name": "CandidateNotWorse",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": 1, "RightValue": 0}],
                    "IfSteps": [
                        {
                            "Name": "RegisterModel",
                            "Type": "RegisterModel",
                            "Arguments": {"ModelPackageGroupName": "churn-dev-models"},
                        }
                    ],
                    "ElseSteps": [
                        {"Name": "RejectCandidate", "Type": "Fail", "Arguments": {"ErrorMessage": "worse"}},
                    ],
                },
            },
        ],
    }


def template(body: dict, variables: dict | None = None, name: str = "churn-dev-training") -> dict:
    """A template holding one inline pipeline, the way `SageMakerPipeline` writes it."""
    variables = variables or {"Value0": {"Fn::GetAtt": ["ExecutionRoleCDF74862", "Arn"]}}
    return {
        "Resources": {
            "TrainingPipeline329DEAEC": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineName": name,
                    "PipelineDefinition": {"PipelineDefinitionBody": {"Fn::Sub": [json.dumps(body), variables]}},
                    "RoleArn": {"Fn::GetAtt": ["ExecutionRoleCDF74862", "Arn"]},
                },
            },
            "ExecutionRoleCDF74862": {"Type": "AWS::IAM::Role", "Properties": {}},
        }
    }


def changes(old: dict, new: dict) -> list[str]:
    """The diff of two decoded definitions, read through templates like the review does."""
    (old_definition,) = pipeline_definitions(template(old)).values()
    (new_definition,) = pipeline_definitions(template(new)).values()
    return diff_definitions(old_definition, new_definition)


def step(body: dict, name: str) -> dict:
    steps = body["Steps"] + body["Steps"][-1]["Arguments"]["IfSteps"] + body["Steps"][-1]["Arguments"]["ElseSteps"]
    return next(s for s in steps if s["Name"] == name)


def test_an_unchanged_definition_has_no_changes():
    assert changes(definition(), definition()) == []
    assert diff_definitions(None, None) == []


def test_instance_type_change_is_one_line_with_the_step_path():
    new = definition()
    step(new, "Train")["Arguments"]["ResourceConfig"]["InstanceType"] = "ml.m5.xlarge"
    assert changes(definition(), new) == ["Train.ResourceConfig.InstanceType: ml.m5.large -> ml.m5.xlarge"]


def test_added_and_removed_steps_are_named_with_their_type_in_definition_order():
    new = definition()
    new["Steps"].insert(2, processing_step("Baseline", PREPROCESS_HASH))
    new["Steps"] = [s for s in new["Steps"] if s["Name"] != "Evaluate"]
    # Like a line diff: where one step replaced another, the removed one comes first.
    assert changes(definition(), new) == ["- step Evaluate (Processing)", "+ step Baseline (Processing)"]
    newer = copy.deepcopy(new)
    newer["Steps"].append(processing_step("Report", PREPROCESS_HASH))
    assert changes(new, newer) == ["+ step Report (Processing)"]


def test_cache_policy_changes():
    new = definition()
    del step(new, "Evaluate")["CacheConfig"]
    step(new, "Train")["CacheConfig"]["ExpireAfter"] = "P7D"
    step(new, "Train")["Arguments"]["ResourceConfig"]["InstanceCount"] = 2
    # Within a step, fields keep their definition order: Arguments first, then CacheConfig.
    assert changes(definition(), new) == [
        "Train.ResourceConfig.InstanceCount: 1 -> 2",
        "Train.CacheConfig.ExpireAfter: P30D -> P7D",
        'Evaluate.CacheConfig: {"Enabled": true, "ExpireAfter": "P30D"} -> (none)',
    ]


def test_a_changed_script_shows_as_a_code_change_of_exactly_the_steps_using_it():
    new = definition()
    changed = "9876fedc" + "2" * 56
    for name in ("Preprocess", "Evaluate"):
        raw = json.dumps(step(new, name)).replace(PREPROCESS_HASH, changed)
        step(new, name).update(json.loads(raw))
    # The code input's URI and the entrypoint differ only by the hash: the code line says it once.
    assert changes(definition(), new) == [
        "Preprocess code: asset:1234abcd -> asset:9876fedc",
        "Evaluate code: asset:1234abcd -> asset:9876fedc",
    ]


def test_a_changed_training_asset_and_a_changed_path_both_show():
    new = definition()
    step(new, "Train")["Arguments"]["HyperParameters"]["sagemaker_submit_directory"] = "s3://other/code.tar.gz"
    assert changes(definition(), new) == [
        "Train code: asset:5678ef01 -> (none)",
        "Train.HyperParameters.sagemaker_submit_directory: s3://cdk-assets/asset:5678ef01.gz -> s3://other/code.tar.gz",
    ]


def test_parameter_default_changed_added_and_removed():
    new = definition()
    new["Parameters"][1]["DefaultValue"] = 0.02
    new["Parameters"][0] = {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://landing/x/"}
    new["Parameters"].append({"Name": "ExperimentId", "Type": "String", "DefaultValue": "adhoc"})
    old = definition()
    old["Parameters"].append({"Name": "Obsolete", "Type": "Integer"})
    assert changes(old, new) == [
        "parameter InputDataUri.DefaultValue: (none) -> s3://landing/x/",
        "parameter MaxRegression.DefaultValue: 0.01 -> 0.02",
        "- parameter Obsolete",
        "+ parameter ExperimentId (String, default adhoc)",
    ]


def test_steps_inside_condition_branches_are_diffed_as_steps():
    new = definition()
    step(new, "RejectCandidate")["Arguments"]["ErrorMessage"] = "candidate is worse"
    step(new, "CandidateNotWorse")["Arguments"]["IfSteps"].append({"Name": "Notify", "Type": "Lambda", "Arguments": {}})
    step(new, "CandidateNotWorse")["Arguments"]["Conditions"][0]["RightValue"] = {"Get": "Parameters.MaxRegression"}
    assert changes(definition(), new) == [
        'CandidateNotWorse.Conditions[0].RightValue: 0 -> {"Get": "Parameters.MaxRegression"}',
        'CandidateNotWorse.IfSteps: ["RegisterModel"] -> ["RegisterModel", "Notify"]',
        "+ step Notify (Lambda)",
        "RejectCandidate.ErrorMessage: worse -> candidate is worse",
    ]


def test_named_list_items_are_matched_by_name_not_position():
    new = definition()
    inputs = step(new, "Preprocess")["Arguments"]["ProcessingInputs"]
    inputs.reverse()
    inputs[0]["S3Input"]["S3Uri"] = "s3://elsewhere/"  # the code input, now first
    inputs.append({"InputName": "extra", "S3Input": {"S3Uri": "s3://extra/"}})
    # The entrypoint still names the asset, so the step's code did not change: only the input's URI did.
    assert changes(definition(), new) == [
        "Preprocess.ProcessingInputs[code].S3Input.S3Uri: s3://cdk-assets/asset:1234abcd.py -> s3://elsewhere/",
        'Preprocess.ProcessingInputs[extra]: (none) -> {"InputName": "extra", "S3Input": {"S3Uri": "s3://extra/"}}',
    ]


def test_unnamed_lists_are_compared_by_index_and_strings_keep_their_type_visible():
    new = definition()
    entrypoint = step(new, "Preprocess")["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    entrypoint[0] = "python3.11"
    step(new, "Train")["Arguments"]["ResourceConfig"]["InstanceCount"] = "1"
    assert changes(definition(), new) == [
        "Preprocess.AppSpecification.ContainerEntrypoint[0]: python3 -> python3.11",
        'Train.ResourceConfig.InstanceCount: 1 -> "1"',
    ]


def test_new_and_removed_pipelines_list_their_parameters_and_steps():
    (body,) = pipeline_definitions(template(definition())).values()
    added = diff_definitions(None, body)
    assert added[:3] == [
        "(new pipeline)",
        "+ parameter InputDataUri (String)",
        "+ parameter MaxRegression (Float, default 0.01)",
    ]
    assert added[3:] == [
        "+ step Preprocess (Processing)",
        "+ step Train (Training)",
        "+ step Evaluate (Processing)",
        "+ step CandidateNotWorse (Condition)",
        "+ step RegisterModel (RegisterModel)",
        "+ step RejectCandidate (Fail)",
    ]
    assert diff_definitions(body, None)[:2] == ["(pipeline removed)", "- parameter InputDataUri"]


def test_tokens_render_as_stable_references():
    body = {
        "Parameters": [],
        "Steps": [
            {
                "Name": "A",
                "Type": "Processing",
                "Arguments": {
                    "RoleArn": "${Value0}",
                    "Bucket": "s3://${Value1}/x",
                    "Key": "${Value2}",
                    "Output": "${Value3}",
                    "Joined": "${Value4}",
                    "Name": "${Value5}",
                    "Pseudo": "${AWS::Region}",
                },
            }
        ],
    }
    arn = {"Fn::ImportValue": "churn-dev-artifacts-bucket-arn"}
    variables = {
        "Value0": {"Fn::GetAtt": ["ExecutionRoleCDF74862", "Arn"]},
        "Value1": {"Ref": "ArtifactsBucket454C14F5"},
        "Value2": arn,
        "Value3": {"Fn::GetStackOutput": {"StackName": "churn-dev-Storage", "OutputName": "PublishOutputRefX"}},
        "Value4": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b"]]},
        "Value5": {"Fn::Select": [0, {"Fn::Split": ["/", {"Fn::Select": [5, {"Fn::Split": [":", arn]}]}]}]},
    }
    (parsed,) = pipeline_definitions(template(body, variables)).values()
    assert parsed["Steps"][0]["Arguments"] == {
        "RoleArn": "<GetAtt ExecutionRoleCDF74862.Arn>",
        "Bucket": "s3://<Ref ArtifactsBucket454C14F5>/x",
        "Key": "<import churn-dev-artifacts-bucket-arn>",
        "Output": "<output churn-dev-Storage.PublishOutputRefX>",
        "Joined": "arn:<Ref AWS::Partition>:s3:::b",
        "Name": '<import churn-dev-artifacts-bucket-arn | split ":" [5] | split "/" [0]>',
        "Pseudo": "<Ref AWS::Region>",
    }


def test_s3_located_definition_is_read_from_the_bucket_deployment_that_writes_it():
    """The shape `SageMakerPipeline` synthesizes above the inline limit (copied from a real synth)."""
    variables = {"Value0": {"Fn::GetAtt": ["ExecutionRoleCDF74862", "Arn"]}}
    deployed_bucket = {"Fn::GetAtt": ["TrainingDefinitionCustomResource1A2B3C4D", "DestinationBucketArn"]}
    s3_template = {
        "Resources": {
            "TrainingDefinitionCustomResource1A2B3C4D": {
                "Type": "Custom::CDKBucketDeployment",
                "Properties": {
                    "SourceObjectKeys": ["310687f5cb90cc700fd306499a9f5b59c074af943857e394aec9055f7f88de17.zip"],
                    "SourceMarkers": [{"<<marker:0xbaba:0>>": {"Fn::Sub": [json.dumps(definition()), variables]}}],
                },
            },
            "TrainingPipeline329DEAEC": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineName": "churn-dev-training",
                    "PipelineDefinition": {
                        "PipelineDefinitionS3Location": {
                            "Bucket": {
                                "Fn::Select": [
                                    0,
                                    {"Fn::Split": ["/", {"Fn::Select": [5, {"Fn::Split": [":", deployed_bucket]}]}]},
                                ]
                            },
                            "Key": f"pipeline-definitions/churn-dev-training/{'ab' * 32}.json",
                        }
                    },
                },
            },
        }
    }
    assert pipeline_definitions(s3_template) == pipeline_definitions(template(definition()))
    # Without its deployment, the S3 location is all there is: a changed key still shows.
    del s3_template["Resources"]["TrainingDefinitionCustomResource1A2B3C4D"]
    (location,) = pipeline_definitions(s3_template).values()
    assert (
        location["PipelineDefinitionS3Location"]["Key"] == "pipeline-definitions/churn-dev-training/asset:abababab.json"
    )


def test_definitions_are_keyed_by_pipeline_name_and_other_resources_are_ignored():
    two = template(definition())
    two["Resources"]["EvaluationPipeline"] = copy.deepcopy(two["Resources"]["TrainingPipeline329DEAEC"])
    two["Resources"]["EvaluationPipeline"]["Properties"]["PipelineName"] = "churn-dev-evaluation"
    assert list(pipeline_definitions(two)) == ["churn-dev-training", "churn-dev-evaluation"]
    assert pipeline_definitions({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}) == {}
