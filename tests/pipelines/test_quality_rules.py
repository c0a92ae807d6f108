"""Missing hours and jumps, found from rows as the warehouse returns them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kalshi_provider.pipelines.quality_rules import QualityRules, expected_hours, find_problems

NOW = datetime(2026, 11, 24, 12, 20, tzinfo=timezone.utc)  # 20 minutes past: the 12:00 row is due


def rows(account, values, last_hour=datetime(2026, 11, 24, 12, tzinfo=timezone.utc)):
    """Rows ending at ``last_hour``; a None value leaves that hour out."""
    hours = [last_hour - timedelta(hours=i) for i in reversed(range(len(values)))]
    return [
        {"account": account, "snapshot_hour": hour, "total_resting_order_value_cents": value}
        for hour, value in zip(hours, values, strict=True)
        if value is not None
    ]


def test_expected_hours_respect_the_grace_period():
    rules = QualityRules(window_hours=3, grace_minutes=15)
    assert expected_hours(NOW, rules)[-1] == datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    early = NOW.replace(minute=5)
    assert expected_hours(early, rules)[-1] == datetime(2026, 11, 24, 11, tzinfo=timezone.utc)
    assert len(expected_hours(NOW, rules)) == 3


def test_complete_and_steady_data_has_no_problems():
    assert find_problems(rows("a", [100, 110, 90, 100]), ["a"], NOW, QualityRules(window_hours=4)) == []


def test_missing_hours_are_reported_but_not_before_the_first_row():
    data = rows("a", [None, None, 100, None, 100, 100])  # a new account, one hole
    [problem] = find_problems(data, ["a"], NOW, QualityRules(window_hours=6))
    assert problem.kind == "missing_hours"
    assert problem.detail == "missing hours 2026-11-24 10:00 UTC"  # not 07:00 or 08:00


def test_an_account_without_rows_and_a_stopped_pipeline():
    data = rows("a", [100, 100], last_hour=datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    problems = find_problems(data, ["a", "b"], NOW, QualityRules(window_hours=5))
    assert [(p.account, p.kind) for p in problems] == [("a", "missing_hours"), ("b", "no_rows")]
    assert "11:00" in problems[0].detail and "12:00" in problems[0].detail


def test_a_jump_beyond_the_limit_is_reported_once():
    data = rows("a", [1000, 1100, 9000, 9100])
    [problem] = find_problems(data, ["a"], NOW, QualityRules(window_hours=4, max_change_percent=200))
    assert problem.kind == "jump"
    assert "from 1100 to 9000 cents" in problem.detail


def test_a_jump_from_zero_counts_against_one_cent():
    data = rows("a", [0, 50])
    [problem] = find_problems(data, ["a"], NOW, QualityRules(window_hours=2, max_change_percent=1000))
    assert "5000% change" in problem.detail


@pytest.mark.parametrize("kwargs", [{"window_hours": 0}, {"grace_minutes": 60}, {"max_change_percent": 0}])
def test_rules_are_validated(kwargs):
    with pytest.raises(ValueError):
        QualityRules(**kwargs)
