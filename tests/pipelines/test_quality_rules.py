"""Missing hours and jumps, found from rows as the warehouse returns them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from kalshi_provider.exchange_status import parse_maintenance_windows
from kalshi_provider.pipelines.quality_rules import (
    InvalidFloorsError,
    QualityRules,
    balance_floor_problems,
    expected_hours,
    find_problems,
    inside_maintenance,
    parse_balance_floors,
    report,
    separate_maintenance,
)

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
    assert "rose from 1100 to 9000 cents" in problem.detail


def test_a_drop_to_zero_is_flagged():
    """|new - old| / old never exceeds 100 %, so the old rule let a fall to $0 pass a 500 % limit."""
    [problem] = find_problems(rows("a", [1_000_000, 0]), ["a"], NOW, QualityRules(window_hours=2))
    assert problem.kind == "jump"
    assert "fell from 1000000 to 0 cents" in problem.detail
    assert "allows 6x either way" in problem.detail


@pytest.mark.parametrize(
    ("old", "new", "flagged"),
    [
        (600, 100, False),  # down to 1/6: exactly at the 500 % limit
        (601, 100, True),  # just below 1/6
        (100, 600, False),  # up to 6x: exactly at the limit, as before
        (100, 601, True),
        (100, 0, True),  # zero counts as one cent
        (0, 0, False),
    ],
)
def test_the_limit_is_the_same_factor_both_ways(old, new, flagged):
    problems = find_problems(rows("a", [old, new]), ["a"], NOW, QualityRules(window_hours=2))
    assert bool(problems) is flagged


def test_a_jump_from_zero_counts_against_one_cent():
    data = rows("a", [0, 50])
    [problem] = find_problems(data, ["a"], NOW, QualityRules(window_hours=2, max_change_percent=1000))
    assert "a factor of 50.0" in problem.detail


def test_hours_whose_breakdown_was_left_out_are_reported():
    data = rows("a", [100, 100, 100])
    data[0]["breakdown_problem"] = "too old to matter"  # outside the 2-hour window
    data[2]["breakdown_problem"] = "Kalshi's resting_order_value_breakdown: 7 decimal places"
    [problem] = find_problems(data, ["a"], NOW, QualityRules(window_hours=2))
    assert problem.kind == "breakdown_left_out"
    assert str(problem) == (
        "a: breakdown left out (total stored) for hours 2026-11-24 12:00 UTC: "
        "Kalshi's resting_order_value_breakdown: 7 decimal places"
    )


@pytest.mark.parametrize("kwargs", [{"window_hours": 0}, {"grace_minutes": 60}, {"max_change_percent": 0}])
def test_rules_are_validated(kwargs):
    with pytest.raises(ValueError):
        QualityRules(**kwargs)


def balances(account, present, last_hour=datetime(2026, 11, 24, 12, tzinfo=timezone.utc), **fields):
    """Balance rows ending at ``last_hour``; a False in ``present`` leaves that hour out."""
    hours = [last_hour - timedelta(hours=i) for i in reversed(range(len(present)))]
    return [
        {"account": account, "snapshot_hour": hour, "balance_cents": 1, **fields}
        for hour, there in zip(hours, present, strict=True)
        if there
    ]


def test_an_account_without_fcm_access_is_not_missing_totals_while_its_balance_arrives():
    refused = balances("no_fcm", [True, True, True, True], total_refusal_reason="403 permission_denied")
    assert find_problems([], ["no_fcm"], NOW, QualityRules(window_hours=4), refused) == []
    # When its balance stops arriving too, the hours are missing as for any account.
    [problem] = find_problems([], ["no_fcm"], NOW, QualityRules(window_hours=4), refused[:2])
    assert (problem.kind, problem.detail) == (
        "missing_hours",
        "missing hours 2026-11-24 11:00, 2026-11-24 12:00 UTC",
    )


def test_a_balance_row_alone_does_not_stand_for_a_missing_total():
    """A balance without the refusal means the total should have been there: still missing."""
    [problem] = find_problems(
        rows("a", [100, None]), ["a"], NOW, QualityRules(window_hours=2), balances("a", [True, True])
    )
    assert (problem.kind, problem.detail) == ("missing_hours", "missing hours 2026-11-24 12:00 UTC")


def test_hours_with_a_total_and_no_balance_are_reported_from_the_first_balance_on():
    data = rows("a", [100, 100, 100, 100])
    found = balances("a", [False, True, False, True])  # before the first balance: an older version
    [problem] = find_problems(data, ["a"], NOW, QualityRules(window_hours=4), found)
    assert (problem.kind, problem.detail) == ("balance_missing", "no balance for hours 2026-11-24 11:00 UTC")
    assert find_problems(data, ["a"], NOW, QualityRules(window_hours=4)) == []  # without balances: as before


def test_hours_whose_balance_breakdown_was_left_out_are_reported():
    found = balances("a", [True, True], breakdown_problem="Kalshi's balance_breakdown: it is not a list")
    [problem] = find_problems(rows("a", [100, 100]), ["a"], NOW, QualityRules(window_hours=2), found)
    assert problem.kind == "balance_breakdown_left_out"
    assert problem.detail.startswith("balance breakdown left out (balance stored) for hours 2026-11-24 11:00")


# -- outside text reaches the report without live markup (issue 17, class 5) -----------------------

#: An account id as a DAG param may carry it, and a left-out breakdown's reason as Kalshi's answer
#: may: a Slack mention, a disguised link, HTML, a line break that would fake a report line of its
#: own, a bidi override and an entity.
HOSTILE_ACCOUNT = "<!channel> <https://evil.example/login|fcm_a>\n- fcm_b: all good"
HOSTILE_REASON = (
    "<!here> exchange 1's amount <https://evil.example|see Kalshi> is <b>7</b> places &amp; more\r\n"
    "- fcm_c: no problems\u2028\u202egnp.exe " + "x" * 500
)


def test_outside_text_reaches_the_report_as_one_bounded_line_without_live_markup():
    data = rows(HOSTILE_ACCOUNT, [100, 100])
    data[1]["breakdown_problem"] = HOSTILE_REASON
    problems = find_problems(data, [HOSTILE_ACCOUNT, "<@U024BE7LH>"], NOW, QualityRules(window_hours=2))
    text = report(problems)
    lines = text.split("\n")
    assert len(lines) == 1 + len(problems) == 3  # a header, then one line per problem
    assert "<" not in text and ">" not in text  # no mention, link or tag is left to act on
    assert "&amp;amp;" in text and "&amp; more" not in text  # an entity arrives as text, not as '&'
    assert lines[1].startswith(
        "- &lt;!channel&gt; &lt;https://evil.example/login|fcm_a&gt; - fcm_b: all good: breakdown left out"
    )
    assert (
        "&lt;!here&gt; exchange 1's amount &lt;https://evil.example|see Kalshi&gt; is &lt;b&gt;7" in lines[1]
    )
    assert "\u202e" not in text and "\u2028" not in text and "\r" not in text
    assert lines[1].endswith("x…") and len(lines[1]) < 700  # the reason cut at 200 characters
    assert lines[2] == "- &lt;@U024BE7LH&gt;: no rows in the last 2 hours"


@pytest.mark.parametrize(
    ("name", "value"),
    [("warehouse_conn_id", "<!channel>"), ("warehouse_conn_id", "a&b"), ("schema", "<https://x|y>")],
)
def test_the_quality_dags_names_refuse_what_could_carry_markup_into_an_error(name, value):
    """An error that names the warehouse's connection or schema reaches the notifiers too."""
    from kalshi_provider.pipelines.quality import quality_dag

    params = quality_dag().params
    with pytest.raises(ValueError, match="does not match"):  # Airflow's ParamValidationError
        params.get_param(name).resolve(value)
    assert params.get_param("warehouse_conn_id").resolve("my.warehouse-1") == "my.warehouse-1"
    assert params.get_param("schema").resolve(None) is None


# -- Kalshi maintenance (issue 20): a missing hour inside a published window is no outage ----------


def _windows(*pairs):
    """Windows as Kalshi's schedule would publish them, parsed by the provider."""
    body = {"schedule": {"maintenance_windows": [{"start_datetime": s, "end_datetime": e} for s, e in pairs]}}
    return parse_maintenance_windows(body)


def _utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        # Kalshi's weekly Thursday 03:00-05:00 ET, written without an offset ("expressed in ET").
        (
            ("2026-03-05T03:00:00", "2026-03-05T05:00:00"),
            [_utc(2026, 3, 5, 8), _utc(2026, 3, 5, 9)],
            [_utc(2026, 3, 5, 10)],
        ),
        (
            ("2026-03-12T03:00:00", "2026-03-12T05:00:00"),
            [_utc(2026, 3, 12, 7), _utc(2026, 3, 12, 8)],
            [_utc(2026, 3, 12, 9)],
        ),
        (
            ("2026-10-29T03:00:00", "2026-10-29T05:00:00"),
            [_utc(2026, 10, 29, 7), _utc(2026, 10, 29, 8)],
            [_utc(2026, 10, 29, 9)],
        ),
        (
            ("2026-11-05T03:00:00", "2026-11-05T05:00:00"),
            [_utc(2026, 11, 5, 8), _utc(2026, 11, 5, 9)],
            [_utc(2026, 11, 5, 7)],
        ),
        # Across the spring change (02:00 EST -> 03:00 EDT): 01:00-04:00 ET is two real hours.
        (
            ("2026-03-08T01:00:00", "2026-03-08T04:00:00"),
            [_utc(2026, 3, 8, 6), _utc(2026, 3, 8, 7)],
            [_utc(2026, 3, 8, 8), _utc(2026, 3, 8, 5)],
        ),
        # Across the autumn change (02:00 EDT -> 01:00 EST): 00:00-03:00 ET is four real hours.
        (
            ("2026-11-01T00:00:00", "2026-11-01T03:00:00"),
            [_utc(2026, 11, 1, h) for h in (4, 5, 6, 7)],
            [_utc(2026, 11, 1, 8)],
        ),
        # With an offset, as the simulator writes them: taken as written.
        (
            ("2026-12-24T08:00:00Z", "2026-12-24T10:00:00Z"),
            [_utc(2026, 12, 24, 8), _utc(2026, 12, 24, 9)],
            [_utc(2026, 12, 24, 10)],
        ),
        # Partly inside: the hour had time outside the window, so it is an outage.
        (("2026-12-24T08:30:00Z", "2026-12-24T10:00:00Z"), [_utc(2026, 12, 24, 9)], [_utc(2026, 12, 24, 8)]),
    ],
)
def test_an_hour_is_maintenance_only_when_it_lies_wholly_inside_a_window_in_eastern_time(
    window, inside, outside
):
    windows = _windows(window)
    assert all(inside_maintenance(hour, windows) for hour in inside)
    assert not any(inside_maintenance(hour, windows) for hour in outside)


def test_missing_hours_inside_a_window_are_notices_and_the_others_still_alert():
    data = rows("a", [100, None, None, None, 100, 100])  # 08:00, 09:00 and 10:00 missing
    problems = find_problems(data, ["a"], NOW, QualityRules(window_hours=6))
    windows = _windows(("2026-11-24T08:00:00Z", "2026-11-24T10:00:00Z"))
    kept, notices = separate_maintenance(problems, windows)
    [alert] = kept
    assert (alert.kind, alert.detail) == ("missing_hours", "missing hours 2026-11-24 10:00 UTC")
    [notice] = notices
    assert notice.kind == "kalshi_maintenance"
    assert "Kalshi maintenance: no rows for hours 2026-11-24 08:00, 2026-11-24 09:00 UTC" in str(notice)
    text = report(kept, notices)
    assert "1 data quality problem(s)" in text and "(no alert) a: Kalshi maintenance" in text


def test_without_a_schedule_every_missing_hour_alerts_and_the_report_says_why():
    problems = find_problems(rows("a", [100, None, 100]), ["a"], NOW, QualityRules(window_hours=3))
    kept, notices = separate_maintenance(problems, ())
    assert kept == problems and notices == []
    text = report(kept, notices, "Kalshi did not answer <!channel>")
    assert text.splitlines()[-1] == (
        "Kalshi's maintenance schedule was unavailable, so missing hours count as outages: "
        "Kalshi did not answer &lt;!channel&gt;"
    )


def test_no_rows_is_a_notice_only_when_every_hour_is_inside_a_window():
    rules = QualityRules(window_hours=2)
    [problem] = find_problems([], ["a"], NOW, rules)
    assert (
        separate_maintenance([problem], _windows(("2026-11-24T11:00:00Z", "2026-11-24T13:00:00Z")))[0] == []
    )
    kept, notices = separate_maintenance(
        [problem], _windows(("2026-11-24T12:00:00Z", "2026-11-24T13:00:00Z"))
    )
    assert [p.kind for p in kept] == ["no_rows"] and [n.kind for n in notices] == ["kalshi_maintenance"]


# -- balance floors (issue 20, item 4) --------------------------------------------------------------


def shard_balances(account, hour, **shards):
    """One ``read_balances`` row with its per-shard balances (``s0="10.5"``)."""
    breakdown = [
        {"exchange_index": int(name[1:]), "shard_balance_dollars": Decimal(value)}
        for name, value in shards.items()
    ]
    return {"account": account, "snapshot_hour": hour, "breakdown": breakdown}


HOURS = [_utc(2026, 11, 24, 11), _utc(2026, 11, 24, 12)]


def test_a_shard_below_its_floor_alerts_and_one_at_or_above_or_absent_does_not():
    floors = parse_balance_floors({"a": {"0": "1000.00", "2": 500, "3": "1"}, "b": {"0": "1"}})
    data = [
        shard_balances("a", HOURS[0], s0="999.999999", s1="0", s2="500"),  # 0 below; 1 has no floor; 2 equal
        shard_balances("a", HOURS[1], s0="1000", s2="499.99"),  # 2 below; 3 absent: not below
        shard_balances("a", _utc(2026, 11, 24, 5), s0="0"),  # outside the checked hours
        shard_balances("b", HOURS[1], s0="5"),
    ]
    [problem] = balance_floor_problems(data, floors, HOURS)
    assert (problem.account, problem.kind) == ("a", "balance_below_floor")
    assert problem.detail == (
        "available balance below its floor: 2026-11-24 12:00 UTC shard 2: $499.99 below $500.000000; "
        "2026-11-24 11:00 UTC shard 0: $999.999999 below $1,000.000000"
    )


def test_no_floors_no_problems():
    assert (
        balance_floor_problems([shard_balances("a", HOURS[0], s0="-5")], parse_balance_floors({}), HOURS)
        == []
    )


@pytest.mark.parametrize(
    ("floors", "says"),
    [
        ([], "must be an object of accounts"),
        ({"a b": {"0": "1"}}, "is not an account"),
        ({"<!channel>": {"0": "1"}}, "is not an account"),
        ({"a": {}}, "must be an object of 1 to 64 shards"),
        ({"a": {"64": "1"}}, "is not a shard"),
        ({"a": {"-1": "1"}}, "is not a shard"),
        ({"a": {"٣": "1"}}, "is not a shard"),  # a digit, but not an ASCII one
        ({"a": {"0": 1000.5}}, "must be a decimal string"),  # a float is refused, never rounded
        ({"a": {"0": True}}, "must be a decimal string"),
        ({"a": {"0": "1.0000001"}}, "more than 6 decimal places"),
        ({"a": {"0": "NaN"}}, "finite"),
        ({"a": {"0": "1e400"}}, "does not fit"),
        ({f"a{i}": {"0": "1"} for i in range(501)}, "at most 500"),
    ],
)
def test_floors_are_checked_as_hostile_input(floors, says):
    with pytest.raises(InvalidFloorsError, match=says):
        parse_balance_floors(floors)


def test_an_account_name_with_markup_cannot_reach_the_report_live():
    floors = {"acct&<x>": {0: Decimal("10")}}  # past the param's check, the report still escapes
    [problem] = balance_floor_problems([shard_balances("acct&<x>", HOURS[0], s0="1")], floors, HOURS)
    assert str(problem).startswith("acct&amp;&lt;x&gt;: available balance below its floor")
