"""Kalshi's exchange status and schedule answers, checked as hostile input."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kalshi_provider.exceptions import KalshiResponseError
from kalshi_provider.exchange_status import ExchangePause, parse_exchange_status, parse_maintenance_windows


def _schedule(*windows):
    return {"schedule": {"standard_hours": [], "maintenance_windows": list(windows)}}


def test_a_status_with_a_resume_time_and_unknown_fields():
    status = parse_exchange_status(
        {
            "exchange_active": False,
            "trading_active": False,
            "exchange_estimated_resume_time": "2026-12-10T05:00:00-05:00",
            "exchange_index_statuses": [{"exchange_index": 0}],
            "something_new": 1,
        }
    )
    assert not status.exchange_active and status.trading_active is False
    assert status.estimated_resume_time == datetime(2026, 12, 10, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"exchange_active": 0},
        {"exchange_active": "false"},
        {"exchange_active": False, "trading_active": "no"},
        {"exchange_active": False, "exchange_estimated_resume_time": 1700000000},
        {"exchange_active": False, "exchange_estimated_resume_time": "x" * 10_000},
        {"exchange_active": False, "exchange_estimated_resume_time": "2026-13-40T00:00:00Z"},
    ],
)
def test_a_status_not_in_kalshis_shape_is_refused(body):
    with pytest.raises(KalshiResponseError):
        parse_exchange_status(body)


@pytest.mark.parametrize(
    ("windows", "says"),
    [
        (
            [{"start_datetime": "2026-12-24T10:00:00Z", "end_datetime": "2026-12-24T08:00:00Z"}],
            "does not end after",
        ),
        (
            [{"start_datetime": "2026-12-24T00:00:00Z", "end_datetime": "2026-12-26T00:00:00Z"}],
            "within 24 hours",
        ),
        ([{"start_datetime": "2026-12-24 soon", "end_datetime": "2026-12-24T08:00:00Z"}], "not an RFC 3339"),
        ([{"start_datetime": "2026-12-24T08:00:00Z"}], "not a date-time"),
        (["2026-12-24"], "is not an object"),
        (
            [{"start_datetime": "2026-12-24T08:00:00Z", "end_datetime": "2026-12-24T09:00:00Z"}] * 2001,
            "at most 2000",
        ),
    ],
)
def test_a_schedule_with_one_unbelievable_window_is_refused_whole(windows, says):
    with pytest.raises(KalshiResponseError, match=says):
        parse_maintenance_windows(_schedule(*windows))


@pytest.mark.parametrize("body", [None, {"schedule": None}, {"schedule": {"maintenance_windows": {}}}])
def test_a_schedule_without_its_windows_is_refused(body):
    with pytest.raises(KalshiResponseError, match="no 'schedule.maintenance_windows' list"):
        parse_maintenance_windows(body)


def test_a_pause_survives_its_xcom_round_trip_and_checks_itself():
    pause = ExchangePause("paused", datetime(2026, 12, 10, 9, tzinfo=timezone.utc), None)
    assert ExchangePause.from_xcom(pause.to_xcom()) == pause
    assert pause.describe() == "paused (no resume time)"
    with pytest.raises(ValueError, match="timezone-aware"):
        ExchangePause("paused", datetime(2026, 12, 10, 9))
    with pytest.raises(ValueError, match="reason"):
        ExchangePause("x" * 501, datetime(2026, 12, 10, 9, tzinfo=timezone.utc))
