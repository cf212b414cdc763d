"""TEMPORARY stand-in (dataset pass-through only) until the capture merge lands from its branch."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    for option in ("--data-dir", "--ground-truth-dir", "--contract", "--output-dir"):
        parser.add_argument(option, type=Path)
    for option in ("--score-column", "--period-end", "--period-hours"):
        parser.add_argument(option)
    args = parser.parse_args(argv)
    files = sorted(path for path in args.data_dir.rglob("*.csv") if path.is_file())
    for path in files:
        target = args.output_dir / "data" / path.relative_to(args.data_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    report = args.output_dir / "report" / "merge_report.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"source": "dataset", "files": len(files)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
