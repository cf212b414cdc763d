"""The review page's rules on fixtures: cdk diff's output read and cleaned, stateful risks found, the page's order."""

from __future__ import annotations

import json

from tools.review_report import (
    SEE_STEP_DIFF,
    WARNING,
    ResourceChange,
    StackReview,
    compare_stack,
    read_cdk_diff,
    render_report,
    stateful_warnings,
)

ESCAPED = '"{\\"Version\\": \\"2020-12-01\\", \\"Steps\\": []}"'
# cdk diff's output for a stack whose large pipeline definition goes through a BucketDeployment, whose inline one
# changed too, and whose bucket may be replaced (shapes copied from real cdk diff runs).
CDK_DIFF = f"""Stack churn-dev/Pipelines (churn-dev-Pipelines)
Resources
[~] Custom::CDKBucketDeployment Pipelines/TrainingPipeline/Definition/CustomResource TrainingDefinitionCR1A2B3C4D
 └─ [~] SourceMarkers
     └─ @@ -1,5 +1,5 @@
        [-]   {ESCAPED}
        [+]   {ESCAPED}
[~] AWS::SageMaker::Pipeline Pipelines/TrainingPipeline/Pipeline TrainingPipeline329DEAEC
 ├─ [~] PipelineDefinition
 │   └─ [~] .PipelineDefinitionBody:
 │       └─ [~] .Fn::Sub:
 │           └─ @@ -1,5 +1,5 @@
 │              [-]   {ESCAPED}
 │              [+]   {ESCAPED}
 └─ [~] PipelineDescription
     ├─ [-] old words
     └─ [+] new words
[~] AWS::S3::Bucket Pipelines/Scratch/Bucket ScratchBucket1A2B3C4D may be replaced
 └─ [~] ObjectLockEnabled (may cause replacement)
[+] AWS::IAM::Role Pipelines/NewRole NewRole1A2B3C4D
[-] AWS::SQS::Queue Pipelines/Old/Queue OldQueue1A2B3C4D destroy

Outputs
[+] Output Pipelines/NewRoleArn NewRoleArn: {{"Value":"x"}}


✨  Number of stacks with differences: 1
"""


def bucket(deletion: str | None = "Retain", replace: str | None = "Retain") -> dict:
    resource: dict = {"Type": "AWS::S3::Bucket", "Properties": {}}
    resource |= {"DeletionPolicy": deletion} if deletion else {}
    resource |= {"UpdateReplacePolicy": replace} if replace else {}
    return resource


def test_the_escaped_definitions_are_replaced_by_the_pointer_and_other_properties_stay():
    text, changes, sections = read_cdk_diff(CDK_DIFF)
    assert '\\"' not in text
    lines = text.splitlines()
    assert f" └─ [~] SourceMarkers {SEE_STEP_DIFF}" in lines
    assert f" ├─ [~] PipelineDescription {SEE_STEP_DIFF}" not in lines
    pipeline = lines.index(f" ├─ [~] PipelineDefinition {SEE_STEP_DIFF}")
    assert lines[pipeline + 1 : pipeline + 4] == [
        " └─ [~] PipelineDescription",
        "     ├─ [-] old words",
        "     └─ [+] new words",
    ]
    assert " └─ [~] ObjectLockEnabled (may cause replacement)" in lines
    assert not any(line.startswith("✨") for line in lines)
    assert sections == ["Resources", "Outputs"]
    assert changes == [
        ResourceChange("~", "Custom::CDKBucketDeployment", "TrainingDefinitionCR1A2B3C4D"),
        ResourceChange("~", "AWS::SageMaker::Pipeline", "TrainingPipeline329DEAEC"),
        ResourceChange("~", "AWS::S3::Bucket", "ScratchBucket1A2B3C4D", "may be replaced"),
        ResourceChange("+", "AWS::IAM::Role", "NewRole1A2B3C4D"),
        ResourceChange("-", "AWS::SQS::Queue", "OldQueue1A2B3C4D", "destroy"),
    ]


def test_the_stack_summary_counts_each_kind_of_change_and_names_other_sections():
    old = {"Resources": {"ScratchBucket1A2B3C4D": bucket(), "OldQueue1A2B3C4D": {"Type": "AWS::SQS::Queue"}}}
    new = {"Resources": {"ScratchBucket1A2B3C4D": bucket(), "NewRole1A2B3C4D": {"Type": "AWS::IAM::Role"}}}
    stack = compare_stack("churn-dev/Pipelines", old, new, CDK_DIFF)
    assert stack.summary == "1 added, 2 changed, 1 replaced, 1 removed (Outputs: see below)"
    assert compare_stack("churn-dev/Pipelines", old, old, "").summary == "no changes"


def test_a_bucket_that_may_be_replaced_is_a_warning_naming_what_happens_to_the_old_one():
    old = {"Resources": {"ScratchBucket1A2B3C4D": bucket()}}
    new = {"Resources": {"ScratchBucket1A2B3C4D": bucket(replace=None)}}
    _, changes, _ = read_cdk_diff(CDK_DIFF)
    assert stateful_warnings("churn-dev/Pipelines", old, new, changes) == [
        f"{WARNING} churn-dev/Pipelines: S3 bucket ScratchBucket1A2B3C4D MAY BE REPLACED by a new, empty one "
        "(UpdateReplacePolicy Delete: the old one is DELETED with its data)",
        f"{WARNING} churn-dev/Pipelines: S3 bucket ScratchBucket1A2B3C4D is no longer kept: UpdateReplacePolicy Retain "
        "-> Delete (a removal or replacement would delete it with its data)",
    ]


def test_removed_keys_and_groups_are_warnings_and_stateless_resources_are_not():
    old = {
        "Resources": {
            "DataKey17AFBB84": {"Type": "AWS::KMS::Key"},  # no DeletionPolicy: CloudFormation deletes
            "ModelRegistryGroupC87F7ECA": {"Type": "AWS::SageMaker::ModelPackageGroup", "DeletionPolicy": "Retain"},
            "Queue": {"Type": "AWS::SQS::Queue"},
        }
    }
    new = {"Resources": {"Key2": {"Type": "AWS::KMS::Key"}}}
    assert stateful_warnings("churn-dev/Storage", old, new, []) == [
        f"{WARNING} churn-dev/Storage: KMS key DataKey17AFBB84 is REMOVED (DeletionPolicy Delete: it is DELETED with "
        "its data); new KMS key Key2: a changed logical id (a renamed or moved construct?)",
        f"{WARNING} churn-dev/Storage: model package group ModelRegistryGroupC87F7ECA is REMOVED (DeletionPolicy "
        "Retain: it stays in the account, outside the stack)",
    ]


def test_a_removed_stack_counts_its_resources_and_warns_for_its_stateful_ones():
    old = {"Resources": {"Bucket": bucket(deletion=None), "Meta": {"Type": "AWS::CDK::Metadata"}}}
    stack = compare_stack("churn-dev/Storage", old, None, "")
    assert stack.summary == "1 removed"
    assert stack.warnings == [
        f"{WARNING} churn-dev/Storage: S3 bucket Bucket is REMOVED (DeletionPolicy Delete: it is DELETED with its data)"
    ]
    assert stack.diff.startswith("Stack churn-dev/Storage\n[-] stack removed")


def test_the_page_reads_summary_then_step_diff_then_resources():
    definition = {"Steps": [{"Name": "Train", "Type": "Training", "Arguments": {"InstanceType": "ml.m5.large"}}]}
    changed = json.loads(json.dumps(definition).replace("ml.m5.large", "ml.m5.xlarge"))
    stacks = [
        StackReview("churn-dev/Orchestration", "no changes", [], "", {}),
        StackReview(
            "churn-dev/Pipelines",
            "1 changed",
            [f"{WARNING} x"],
            "Stack churn-dev/Pipelines\nResources\n[~] ...",
            {"churn-dev-training": (definition, changed), "churn-dev-evaluation": (definition, definition)},
        ),
    ]
    assert render_report("Review", stacks).splitlines() == [
        "Review",
        "",
        "Summary",
        "  stack churn-dev/Orchestration: no changes",
        "  stack churn-dev/Pipelines: 1 changed",
        "  pipeline churn-dev-training: 1 step changed (Train)",
        "  pipeline churn-dev-evaluation: no changes",
        f"{WARNING} x",
        "",
        "Pipeline definitions, step by step",
        "Pipeline churn-dev-training:",
        "  Train.InstanceType: ml.m5.large -> ml.m5.xlarge",
        "",
        "Resource changes (cdk diff)",
        f"{WARNING} x",
        "Stack churn-dev/Pipelines",
        "Resources",
        "[~] ...",
    ]
    quiet = render_report("Review", [stacks[0]]).splitlines()
    assert "  no stateful resource (bucket, key, model package group) is removed or replaced" in quiet
    assert quiet[-4:] == ["  no definition changes", "", "Resource changes (cdk diff)", "  no changes"]


def test_a_pipeline_moved_to_another_stack_is_compared_with_itself():
    definition = {"Steps": [{"Name": "Train", "Type": "Training", "Arguments": {}}]}
    stacks = [
        StackReview("churn-dev/Old", "1 removed", [], "", {"churn-dev-training": (definition, None)}),
        StackReview("churn-dev/Pipelines", "1 added", [], "", {"churn-dev-training": (None, definition)}),
    ]
    page = render_report("Review", stacks)
    assert "  pipeline churn-dev-training: no changes" in page.splitlines()
    assert "(pipeline removed)" not in page and "(new pipeline)" not in page
