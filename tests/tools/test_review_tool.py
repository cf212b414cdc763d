"""`make review` works offline: summary first, then the step diff, then cdk diff's resource changes without the
escaped definition, and a loud warning for each stateful resource the change replaces or removes.

One review of one changed copy of HEAD (two synths) serves every test here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tools.review import export_revision, review
from tools.review_report import SEE_STEP_DIFF, WARNING

pytestmark = pytest.mark.heavy(seconds=30)  # scheduled first, longest first (tests/conftest.py)

DEV_SETTINGS = (
    '"processing_instance_type": "ml.m5.large",\n        "training_instance_type": "ml.m5.large",\n'
    '        "noncurrent_version_retention_days": 7,'
)
INSTANCE_TYPE_CHANGE = "  Train.ResourceConfig.InstanceType: ml.m5.large -> ml.m5.2xlarge"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: {old!r} is not there once"
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The review of a copy of HEAD with config changes (training instance type, retention) and two stateful risks:
    the model package group renamed (a replacement) and the access-log bucket's construct renamed (a removal)."""
    # A copy: the checkout itself is never edited (other tests read it meanwhile).
    tmp_path = tmp_path_factory.mktemp("review")
    tree = tmp_path / "tree"
    tree.mkdir()
    export_revision("HEAD", tree)
    changed = DEV_SETTINGS.replace('training_instance_type": "ml.m5.large"', 'training_instance_type": "ml.m5.2xlarge"')
    edit(
        tree / "config" / "environments.py", DEV_SETTINGS, changed.replace('retention_days": 7,', 'retention_days": 8,')
    )
    storage = tree / "stacks" / "storage_stack.py"
    edit(storage, "group_name=config.model_package_group_name,", 'group_name=f"{config.model_package_group_name}-v2",')
    edit(storage, '"AccessLogsBucket",', '"AccessLogBucket",')
    return review("HEAD", ["env=dev"], tree=tree, work_dir=tmp_path / "review")


def test_the_review_shows_no_escaped_json_and_leads_with_the_step_diff(report):
    assert '\\"' not in report
    lines = report.splitlines()
    first_change = lines.index(INSTANCE_TYPE_CHANGE)
    first_resource_section = next(i for i, line in enumerate(lines) if line.startswith("Stack churn-dev/"))
    assert first_change < first_resource_section
    assert lines[first_change - 1] == "Pipeline churn-dev-training:"
    # cdk diff's pipeline entry is kept, its definition replaced by the pointer.
    pipeline = next(i for i, line in enumerate(lines) if line.startswith("[~] AWS::SageMaker::Pipeline "))
    assert lines[pipeline + 1] == f" └─ [~] PipelineDefinition {SEE_STEP_DIFF}"
    assert "TrainingPipeline" in lines[pipeline]


def test_the_summary_counts_resources_per_stack_and_steps_per_pipeline(report):
    summary = report.split("\n\n")[1].splitlines()
    assert summary[0] == "Summary"
    assert "  stack churn-dev/Orchestration: no changes" in summary
    assert "  stack churn-dev/Pipelines: 1 changed" in summary
    (storage,) = [line for line in summary if line.startswith("  stack churn-dev/Storage: ")]
    # The renamed bucket: bucket + policy added and removed; the group replaced; both other buckets log elsewhere.
    assert storage.startswith("  stack churn-dev/Storage: 2 added, 2 changed, 1 replaced, 2 removed")
    assert "  pipeline churn-dev-training: 1 step changed (Train)" in summary
    assert "  pipeline churn-dev-evaluation: no changes" in summary


def test_replaced_and_removed_stateful_resources_are_loud_in_the_summary_and_above_their_stack(report):
    summary = report.split("\n\n")[1]
    warnings = [line for line in summary.splitlines() if line.startswith(WARNING)]
    assert len(warnings) == 2
    group, bucket = sorted(warnings, key=lambda line: "bucket" in line)
    assert group.startswith(f"{WARNING} churn-dev/Storage: model package group ModelRegistryGroup")
    assert "is REPLACED by a new, empty one (UpdateReplacePolicy Retain: the old one stays in the account" in group
    assert bucket.startswith(f"{WARNING} churn-dev/Storage: S3 bucket AccessLogsBucket")
    assert "is REMOVED (DeletionPolicy Retain" in bucket and "new S3 bucket AccessLogBucket" in bucket
    resources = report.split("Resource changes (cdk diff)\n", 1)[1]
    assert max(resources.index(group), resources.index(bucket)) < resources.index("Stack churn-dev/Storage")


def test_other_resource_changes_still_show_as_cdk_diff_prints_them(report):
    storage = report.split("Stack churn-dev/Storage", 1)[1]
    assert '[-]     "NoncurrentDays": 7' in storage and '[+]     "NoncurrentDays": 8' in storage
    assert "ModelRegistryGroup" in storage and "(requires replacement)" in storage
    assert "✨" not in report  # cdk's per-stack count: noise on a page of several stacks


def test_the_checkout_is_untouched(report):
    assert (REPO_ROOT / "config" / "environments.py").read_text().count(DEV_SETTINGS) == 1
    assert "group_name=config.model_package_group_name," in (REPO_ROOT / "stacks" / "storage_stack.py").read_text()
