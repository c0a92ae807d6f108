"""Which hour a reading stands for, kept out of the DAG file so the rule is testable and parse-cheap.

Kalshi only ever reports the value *now*. A run therefore labels its reading with the hour of
its ``run_after`` and refuses to label a reading taken long after that hour: a cleared old run or
a backfill must not write today's value under yesterday's hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def snapshot_hour(run_after: datetime) -> datetime:
    """The UTC hour a run stands for: its ``run_after`` truncated to the hour."""
    if run_after.tzinfo is None:
        raise ValueError(f"run_after must be timezone-aware, got {run_after!r}")
    return run_after.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def lateness_problem(run_after: datetime, moment: datetime, max_lateness: timedelta) -> str | None:
    """Why a reading taken at ``moment`` may not stand for ``run_after``'s hour, or None if it may."""
    late_by = moment - run_after
    if late_by <= max_lateness:
        return None
    return (
        f"This run is for the hour {snapshot_hour(run_after):%Y-%m-%d %H:00} UTC (run_after "
        f"{run_after.isoformat()}), but it is {_minutes(late_by)} later than that, beyond the "
        f"{_minutes(max_lateness)} allowed by 'max_lateness_minutes'. Kalshi only reports the current "
        "value, so writing it now would label today's value with an old hour. Nothing was written; "
        "trigger a new run to record the current hour."
    )


def skip_if_late(run_after: datetime, moment: datetime, max_lateness_minutes: int) -> None:
    """Raise Airflow's skip when the run is too late to record its hour."""
    problem = lateness_problem(run_after, moment, timedelta(minutes=max_lateness_minutes))
    if problem:
        from kalshi_provider.version_compat import AirflowSkipException

        raise AirflowSkipException(problem)


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} minute{'s' if round(minutes) != 1 else ''}"
