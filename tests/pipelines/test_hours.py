"""Which hour a reading may stand for: observed inside the run's hour, and not too late after run_after."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kalshi_provider.pipelines.hours import (
    backfill_problem,
    inside_hour,
    observation_problem,
    on_the_hour,
    snapshot_hour,
)

UTC = timezone.utc
LATENESS = timedelta(minutes=30)


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-01T{text}+00:00")


@pytest.mark.parametrize(
    ("run_after", "observed_at"),
    [
        ("10:00:00", "10:00:05"),  # the scheduled run, as it should go
        ("10:00:00", "10:30:00"),  # exactly at the lateness limit
        ("10:40:00", "10:59:59.999999"),  # a late trigger, still inside its hour
        ("10:59:58", "10:59:59"),
    ],
)
def test_a_reading_observed_inside_its_hour_and_in_time_stands_for_it(run_after, observed_at):
    assert observation_problem(at(run_after), at(observed_at), LATENESS) is None


@pytest.mark.parametrize(
    ("run_after", "observed_at", "says"),
    [
        # Triggered at 10:59:58, fetched at 11:00:03: within 30 minutes, but in the next hour.
        ("10:59:58", "11:00:03", "after that hour ended"),
        # A 10:40 run whose third try fetched at 11:09.
        ("10:40:00", "11:09:00", "after that hour ended"),
        ("10:00:00", "10:30:00.000001", "beyond the 30 minutes allowed by 'max_lateness_minutes'"),
        ("10:00:00", "13:00:00", "after that hour ended"),  # a cleared run, hours later
        ("10:00:00", "09:59:59", "before that hour began"),  # a worker clock that is behind
    ],
)
def test_a_reading_observed_outside_its_hour_or_too_late_does_not(run_after, observed_at, says):
    problem = observation_problem(at(run_after), at(observed_at), LATENESS)
    assert problem is not None and says in problem
    assert "2026-03-01 10:00 UTC" in problem and "Nothing was stored for it" in problem


def test_the_lateness_rule_and_the_hour_rule_both_apply():
    run_after = at("10:00:00")
    assert observation_problem(run_after, at("10:50:00"), timedelta(minutes=59)) is None
    assert "max_lateness_minutes" in observation_problem(run_after, at("10:50:00"), LATENESS)
    assert "after that hour ended" in observation_problem(run_after, at("11:10:00"), timedelta(hours=3))


def test_observations_in_another_zone_are_compared_in_utc():
    plus_two = timezone(timedelta(hours=2))
    run_after = at("10:59:58").astimezone(plus_two)
    assert snapshot_hour(run_after) == at("10:00:00")
    observed = at("11:00:03").astimezone(plus_two)
    assert "after that hour ended" in observation_problem(run_after, observed, LATENESS)


def test_only_a_backfills_run_is_judged_before_any_request():
    """The run types as the task sees them: the Task SDK's enum members, on every Airflow 3 line."""
    from airflow.sdk.api.datamodels._generated import DagRunType

    problem = backfill_problem(DagRunType.BACKFILL, at("07:00:00"))
    assert problem.startswith("This is a backfill run, for the hour 2026-03-01 07:00 UTC.")
    assert "before any request to Kalshi" in problem
    others = [run_type for run_type in DagRunType if run_type is not DagRunType.BACKFILL]
    assert others and [backfill_problem(run_type, at("07:00:00")) for run_type in others] == [None] * len(
        others
    )


def test_a_row_s_hour_is_an_aware_datetime_exactly_on_an_hour():
    """The one check of a snapshot hour and a window's bounds (the warehouse raises its own error)."""
    eastern = timezone(timedelta(hours=-5))
    assert on_the_hour(datetime(2026, 3, 1, 5, tzinfo=eastern), "since") == at("10:00:00")
    with pytest.raises(ValueError, match="since must be exactly on a UTC hour"):
        on_the_hour(at("10:00:00.000001"), "since")
    with pytest.raises(KeyError, match="must be timezone-aware, got naive"):
        on_the_hour(datetime(2026, 3, 1, 10), "since", KeyError)
    with pytest.raises(ValueError, match="run_after must be timezone-aware"):
        snapshot_hour(datetime(2026, 3, 1, 10))


def test_the_hour_rule_is_the_same_for_the_load_and_the_warehouse():
    """``inside_hour`` is what ``observation_problem`` applies before the lateness, and what the
    warehouse checks a reading it is asked to store against."""
    hour = at("10:00:00")
    for observed, inside in (("10:00:00", True), ("10:59:59.999999", True), ("11:00:00", False)):
        assert inside_hour(hour, at(observed)) is inside
        problem = observation_problem(hour, at(observed), timedelta(hours=2))
        assert (problem is None) is inside
    assert not inside_hour(hour, at("09:59:59.999999"))
