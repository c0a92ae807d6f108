"""Which hour a reading stands for: the hour rule, in one place the load and the warehouse import.

A run stands for the hour of its ``run_after``; an answer counts for it only when it arrived inside
that hour and within ``max_lateness_minutes``, judged at load time on ``observed_at``. A backfill's
hours are all past (:func:`backfill_problem`). Why: ``docs/adr/0002-hour-rule.md``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kalshi_provider.timestamps import aware_utc

HOUR = timedelta(hours=1)
#: The run type of a backfill's runs on every Airflow 3 line (``DagRunType.BACKFILL_JOB`` in the
#: core, ``DagRunType.BACKFILL`` in the Task SDK).
BACKFILL_RUN_TYPE = "backfill"


def snapshot_hour(run_after: datetime) -> datetime:
    """The UTC hour a run stands for: its ``run_after`` truncated to the hour."""
    return aware_utc(run_after, "run_after").replace(minute=0, second=0, microsecond=0)


def on_the_hour(value: object, what: str, error: type[Exception] = ValueError) -> datetime:
    """``value`` in UTC if it is an aware datetime exactly on an hour (a row's ``snapshot_hour``, a
    window's bounds); else ``error``."""
    hour = aware_utc(value, what, error)
    if hour != hour.replace(minute=0, second=0, microsecond=0):
        raise error(f"{what} must be exactly on a UTC hour, got {hour.isoformat()}")
    return hour


def inside_hour(hour: datetime, observed_at: datetime) -> bool:
    """Whether an observation made at ``observed_at`` lies inside ``hour``: the condition for it to
    stand for that hour (the whole rule adds the lateness, :func:`observation_problem`)."""
    return hour <= observed_at < hour + HOUR


def observation_problem(run_after: datetime, observed_at: datetime, max_lateness: timedelta) -> str | None:
    """Why a reading observed at ``observed_at`` may not stand for ``run_after``'s hour, or None."""
    hour = snapshot_hour(run_after)
    observed = aware_utc(observed_at, "observed_at")
    stands_for = f"This run stands for the hour {hour:%Y-%m-%d %H:00} UTC (run_after {run_after.isoformat()})"
    if not inside_hour(hour, observed) and observed < hour:
        return (
            f"{stands_for}, but Kalshi's answer is stamped {observed.isoformat()}, before that hour "
            "began: the worker's clock is off. Nothing was stored for it; fix the clock (NTP)."
        )
    if not inside_hour(hour, observed):
        return (
            f"{stands_for}, but Kalshi's answer arrived at {observed.isoformat()}, after that hour "
            "ended. Nothing was stored for it: a reading is stored only under the hour it was observed in "
            "(Kalshi reports the value now, not for a past hour), and the current hour's own run "
            "records the current value."
        )
    late_by = observed - run_after
    if late_by > max_lateness:
        return (
            f"{stands_for}, but Kalshi's answer arrived {_duration(late_by)} after run_after, beyond "
            f"the {_minutes(max_lateness)} allowed by 'max_lateness_minutes'. Nothing was stored for it; "
            "raise 'max_lateness_minutes' if such late readings should count for their hour."
        )
    return None


def backfill_problem(run_type: object, run_after: datetime) -> str | None:
    """Why a run of ``run_type`` can store nothing and should end before asking Kalshi, or None.

    A backfill stands for past hours, and Kalshi keeps no past readings: whatever it answers now
    would be stored under no hour (:func:`observation_problem`), at the cost of its requests.
    """
    if getattr(run_type, "value", run_type) != BACKFILL_RUN_TYPE:
        return None
    hour = snapshot_hour(run_after)
    return (
        f"This is a backfill run, for the hour {hour:%Y-%m-%d %H:00} UTC. Kalshi reports only the "
        "value now and keeps no past readings, so a backfilled hour cannot be filled: the run ends "
        "here, before any request to Kalshi, and stores nothing. An hour without a row stays empty; "
        "the scheduled runs record every hour from now on."
    )


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.0f} s" if seconds < 120 else _minutes(delta)


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} minute{'s' if round(minutes) != 1 else ''}"
