"""`--since` has one grammar and one error wording in `mlops monitor` and `mlops cost` (mlops.common.since_start)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops.cli import main
from mlops.common import UsageError, since_start

NOW = datetime(2026, 11, 29, 13, 30, tzinfo=UTC)
# Not a date, not hours or days back, no amount, a negative one, a time before the calendar's first day, and more
# days than a timedelta holds.
BAD = ("yesterday", "0h", "2w", "2026-13-01", "20261101", "-1d", "d", "740000d", "99999999999999999999d")


def test_a_utc_date_or_hours_or_days_back() -> None:
    assert since_start("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert since_start("36h", NOW) == datetime(2026, 11, 28, 1, 30, tzinfo=UTC)
    assert since_start("7d", NOW) == datetime(2026, 11, 22, 13, 30, tzinfo=UTC)
    assert since_start(None, NOW) is None
    for bad in BAD:
        with pytest.raises(UsageError, match=r"use a UTC date YYYY-MM-DD, or hours/days back"):
            since_start(bad, NOW)


@pytest.mark.parametrize("value", BAD)
def test_both_commands_refuse_a_bad_since_with_the_same_one_line(value, aws_env, tmp_path, capsys) -> None:
    """No traceback (99999999999999999999d overflowed a timedelta in both), exit 2, nothing called."""
    errors = []
    for argv in (
        ["monitor", "--local", "--state-dir", str(tmp_path), f"--since={value}"],
        ["cost", "summary", "--state-dir", str(tmp_path), f"--since={value}"],
    ):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        errors.append(err)
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"error: --since {value!r}: use a UTC date YYYY-MM-DD, or hours/days back")
