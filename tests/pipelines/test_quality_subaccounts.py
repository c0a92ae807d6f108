"""The quality check reports a subaccount that disappears from the list, or appears in it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kalshi_provider.pipelines.quality_rules import QualityRules, report, subaccount_changes

NOW = datetime(2026, 11, 24, 12, 20, tzinfo=timezone.utc)
LAST = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
RULES = QualityRules(window_hours=6)


def listed(account: str, hours: list[set[int] | None]) -> list[dict]:
    """Per hour ending at 12:00, the subaccounts listed (two shards each); None: no rows that hour."""
    start = LAST - timedelta(hours=len(hours) - 1)
    return [
        {
            "account": account,
            "snapshot_hour": start + timedelta(hours=i),
            "subaccount_number": n,
            "exchange_index": s,
        }
        for i, numbers in enumerate(hours)
        for n in sorted(numbers or ())
        for s in (0, 1)
    ]


def test_the_same_subaccounts_every_hour_and_hours_without_a_list_are_no_problem():
    rows = listed("a", [{0, 1}, {0, 1}, None, {0, 1}])  # 10:00: refused or left out, not "all gone"
    assert subaccount_changes(rows, ["a"], NOW, RULES) == []


def test_a_subaccount_that_disappears_or_appears_is_reported_with_its_hours():
    rows = listed("a", [{0, 1, 2}, {0, 2}, {0, 2, 7}]) + listed("b", [{0}, {0}, {0}])
    problems = subaccount_changes(rows, ["a", "b"], NOW, RULES)
    assert [(p.account, p.kind, p.detail) for p in problems] == [
        (
            "a",
            "subaccount_gone",
            "subaccount(s) 1 no longer listed at 2026-11-24 11:00 UTC (compared with 2026-11-24 10:00 UTC)",
        ),
        (
            "a",
            "subaccount_new",
            "subaccount(s) 7 newly listed at 2026-11-24 12:00 UTC (compared with 2026-11-24 11:00 UTC)",
        ),
    ]
    assert "- a: subaccount(s) 1 no longer listed" in report(problems)


def test_rows_outside_the_window_or_of_other_accounts_are_not_compared():
    old = listed("a", [{0, 5}] + [None] * 6 + [{0}])  # 5 was listed 7 hours ago, outside the window
    assert subaccount_changes(old + listed("z", [{0}, {1}]), ["a"], NOW, RULES) == []
