"""Generates the bundled, synthetic churn sample data, deterministically and offline.

Writes (next to this file, or under --output-dir):
  churn/part-0000.csv          ~2,000 customers with a learnable but noisy churn signal (ROC AUC ~0.8), plus the
                               dirt the preprocessing step must clean: exact duplicate rows, rows without a label,
                               missing and non-numeric values.
  churn-drifted/part-0000.csv  500 customers of the same schema with shifted distributions (higher monthly charges,
                               more month-to-month contracts, fiber and support calls): the data-drift check flags it.

The same seed always gives byte-identical files. `--check` regenerates in memory and exits 1 if the files on disk
differ, so a test can prove the committed sample data is what this script produces.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

COLUMNS = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract",
    "payment_method",
    "internet_service",
    "support_calls",
    "churned",
]
CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENT_METHODS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
INTERNET_SERVICES = ["dsl", "fiber-optic", "none"]


def customers(rng: np.random.Generator, rows: int, *, drifted: bool) -> list[list[str]]:
    """`rows` customers as CSV cells; `drifted` shifts the feature distributions (the churn mechanism is unchanged)."""
    contract = rng.choice(CONTRACTS, size=rows, p=[0.8, 0.12, 0.08] if drifted else [0.5, 0.25, 0.25])
    internet = rng.choice(INTERNET_SERVICES, size=rows, p=[0.2, 0.7, 0.1] if drifted else [0.4, 0.4, 0.2])
    payment = rng.choice(PAYMENT_METHODS, size=rows, p=[0.35, 0.2, 0.225, 0.225])
    tenure = np.minimum(rng.geometric(1 / (12 if drifted else 24), size=rows) - 1, 72)
    monthly = np.clip(rng.normal(95 if drifted else 65, 20, size=rows), 18, 140)
    monthly += np.where(internet == "fiber-optic", 15.0, 0.0)
    total = np.maximum(tenure, 1) * monthly * rng.normal(1.0, 0.05, size=rows)
    support_calls = rng.poisson(2.5 if drifted else 1.2, size=rows)

    logit = (
        -1.6
        + 1.7 * (contract == "month-to-month")
        - 1.2 * (contract == "two-year")
        - 0.05 * tenure
        + 0.026 * (monthly - 65)
        + 0.45 * support_calls
        + 0.65 * (internet == "fiber-optic")
        + 0.5 * (payment == "electronic-check")
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))

    return [
        [
            str(tenure[i]),
            f"{monthly[i]:.2f}",
            f"{total[i]:.2f}",
            contract[i],
            payment[i],
            internet[i],
            str(support_calls[i]),
            str(int(churned[i])),
        ]
        for i in range(rows)
    ]


def add_dirt(rng: np.random.Generator, rows: list[list[str]]) -> list[list[str]]:
    """Blanks some cells, corrupts a few numbers, drops some labels and appends exact duplicates, then shuffles."""
    for i in rng.choice(len(rows), size=30, replace=False):
        rows[i][2] = ""  # total_charges missing
    for i in rng.choice(len(rows), size=5, replace=False):
        rows[i][0] = "?"  # tenure_months not a number
    for i in rng.choice(len(rows), size=10, replace=False):
        rows[i][-1] = ""  # label missing
    duplicates = [list(rows[i]) for i in rng.choice(len(rows), size=20, replace=False)]
    dirty = rows + duplicates
    return [dirty[i] for i in rng.permutation(len(dirty))]


def to_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def datasets(seed: int) -> dict[str, bytes]:
    """Relative path -> file content."""
    rng = np.random.default_rng(seed)
    return {
        "churn/part-0000.csv": to_csv(add_dirt(rng, customers(rng, 2000, drifted=False))),
        "churn-drifted/part-0000.csv": to_csv(customers(rng, 500, drifted=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="verify the files on disk instead of writing them")
    args = parser.parse_args(argv)

    stale = []
    for relative_path, content in datasets(args.seed).items():
        path = args.output_dir / relative_path
        if args.check:
            if not path.is_file() or path.read_bytes() != content:
                stale.append(relative_path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(f"wrote {path} ({len(content.splitlines()) - 1} rows)")

    if stale:
        print(f"error: sample data is stale, rerun generate.py: {', '.join(stale)}", file=sys.stderr)
        return 1
    if args.check:
        print("sample data is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
