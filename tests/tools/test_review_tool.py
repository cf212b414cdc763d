"""`make review` works offline and shows a real change per stack, like `cdk diff --template`."""

from __future__ import annotations

import pytest

from tests.helpers import REPO_ROOT
from tools.review import export_revision, review

pytestmark = pytest.mark.heavy(seconds=25)  # scheduled first, longest first (tests/conftest.py)


def test_review_shows_a_changed_lifecycle_rule_and_a_changed_pipeline_step_against_head(tmp_path):
    # A copy of HEAD with two config changes: the checkout itself is never edited (other tests read it meanwhile).
    tree = tmp_path / "tree"
    tree.mkdir()
    export_revision("HEAD", tree)
    environments = tree / "config" / "environments.py"
    original = environments.read_text()
    dev = (
        '"processing_instance_type": "ml.m5.large",\n        "training_instance_type": "ml.m5.large",\n'
        '        "noncurrent_version_retention_days": 7,'
    )
    assert original.count(dev) == 1
    changed = dev.replace('training_instance_type": "ml.m5.large"', 'training_instance_type": "ml.m5.xlarge"')
    environments.write_text(original.replace(dev, changed.replace('retention_days": 7,', 'retention_days": 8,')))

    report = review("HEAD", ["env=dev"], tree=tree, work_dir=tmp_path / "review")

    assert "churn-dev/Storage" in report
    assert '[-]     "NoncurrentDays": 7' in report and '[+]     "NoncurrentDays": 8' in report
    # The pipeline's lines follow its header, indented, until the next pipeline or stack.
    training = report.split("Pipeline churn-dev-training:\n", 1)[1].split("\n\n", 1)[0].split("\nPipeline ", 1)[0]
    assert "  Train.ResourceConfig.InstanceType: ml.m5.large -> ml.m5.xlarge" in training.splitlines()
    assert "Pipeline churn-dev-evaluation:" in report
    assert (REPO_ROOT / "config" / "environments.py").read_text().count(dev) == 1  # the checkout is untouched
