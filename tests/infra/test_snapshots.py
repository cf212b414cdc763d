"""Template snapshots: a changed snapshot is reviewed like a `cdk diff`. Refresh with `make snapshots`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.infra.conftest import ALL_UNITS, stack_templates

SNAPSHOT_DIR = Path(__file__).parent / "snapshots"
# Asset hashes change with CDK versions and bundled code; they are checked by their own tests, not here.
_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalise(template: dict) -> str:
    return _ASSET_HASH.sub("<asset-hash>", json.dumps(template, indent=1, sort_keys=True)) + "\n"


def snapshot_path(unit: str, stack_id: str) -> Path:
    return SNAPSHOT_DIR / unit.replace("/sandbox=", "-sandbox-") / f"{stack_id}.json"


@pytest.mark.parametrize("unit", sorted(ALL_UNITS))
def test_templates_match_their_snapshots(all_assemblies, unit):
    templates = stack_templates(all_assemblies[unit])
    for stack_id, template in templates.items():
        path = snapshot_path(unit, stack_id)
        actual = normalise(template)
        if os.environ.get("UPDATE_SNAPSHOTS") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual)
        assert path.exists(), f"no snapshot for {unit}/{stack_id}: run `make snapshots` and review the new file"
        assert actual == path.read_text(), f"{unit}/{stack_id} changed: review it, then run `make snapshots`"
    # A stack that disappeared leaves its snapshot behind: that is a change to review too.
    recorded = {p.stem for p in snapshot_path(unit, "x").parent.glob("*.json")}
    assert recorded == set(templates)


def test_normalise_hides_only_asset_hashes():
    template = {"Code": {"S3Key": "a" * 64 + ".zip"}, "Name": "b" * 63}
    assert json.loads(normalise(template)) == {"Code": {"S3Key": "<asset-hash>.zip"}, "Name": "b" * 63}
