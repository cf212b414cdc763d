"""`make review` works offline and shows a real change per stack, like `cdk diff --template`."""

from __future__ import annotations

import subprocess

from tests.helpers import REPO_ROOT
from tools.review import review


def test_review_shows_a_changed_lifecycle_rule_against_head(tmp_path, monkeypatch):
    environments = REPO_ROOT / "config" / "environments.py"
    original = environments.read_text()
    assert '"noncurrent_version_retention_days": 90,' in original
    try:
        environments.write_text(
            original.replace('"noncurrent_version_retention_days": 90,', '"noncurrent_version_retention_days": 91,')
        )
        report = review("HEAD", ["env=prod"])
    finally:
        environments.write_text(original)
    assert "churn-prod/Storage" in report
    assert '[-]     "NoncurrentDays": 90' in report and '[+]     "NoncurrentDays": 91' in report
    assert subprocess.run(["git", "diff", "--quiet", "--", str(environments)], cwd=REPO_ROOT).returncode == 0


def test_review_shows_a_changed_pipeline_step_by_step_against_head():
    environments = REPO_ROOT / "config" / "environments.py"
    original = environments.read_text()
    dev = '"processing_instance_type": "ml.m5.large",\n        "training_instance_type": "ml.m5.large",'
    assert original.count(dev) == 1
    bigger = dev.replace('training_instance_type": "ml.m5.large"', 'training_instance_type": "ml.m5.xlarge"')
    try:
        environments.write_text(original.replace(dev, bigger))
        report = review("HEAD", ["env=dev"])
    finally:
        environments.write_text(original)
    assert environments.read_text() == original
    # The pipeline's lines follow its header, indented, until the next pipeline or stack.
    training = report.split("Pipeline churn-dev-training:\n", 1)[1].split("\n\n", 1)[0].split("\nPipeline ", 1)[0]
    assert "  Train.ResourceConfig.InstanceType: ml.m5.large -> ml.m5.xlarge" in training.splitlines()
    assert "Pipeline churn-dev-evaluation:" in report
