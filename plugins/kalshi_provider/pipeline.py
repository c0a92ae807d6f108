"""The hourly pipeline's rules, kept out of the DAG file so they are testable and parse-cheap.

Kalshi only ever reports the value *now*. A run therefore labels its reading with the hour of
its ``run_after`` and refuses to label a reading taken long after that hour: a cleared old run or
a backfill must not write today's value under yesterday's hour.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TABLE = "kalshi_total_resting_order_value"
DEFAULT_WAREHOUSE_CONN_ID = "kalshi_warehouse"
DEFAULT_MAX_LATENESS_MINUTES = 30


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
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(problem)


def load_reading(
    reading: dict[str, Any],
    *,
    run_after: datetime,
    dag_run_id: str,
    warehouse_conn_id: str,
    table: str,
    schema: str | None,
    max_lateness_minutes: int,
) -> dict[str, Any]:
    """Upsert one account's reading (the fetch task's XCom) as the row for the run's hour."""
    from kalshi_provider.warehouse import BreakdownEntry, Snapshot, upsert_snapshots, warehouse_engine

    observed_at = datetime.fromisoformat(reading["observed_at"])
    skip_if_late(run_after, observed_at, max_lateness_minutes)
    snapshot = Snapshot(
        account=reading["account"],
        snapshot_hour=snapshot_hour(run_after),
        total_resting_order_value_cents=reading["total_resting_order_value_cents"],
        observed_at=observed_at,
        dag_run_id=dag_run_id,
        breakdown=tuple(
            BreakdownEntry(item["exchange_index"], Decimal(item["balance"]))
            for item in reading.get("breakdown") or ()
        ),
    )
    engine, description = warehouse_engine(warehouse_conn_id)
    log.info("Warehouse: %s", description)
    try:
        written = upsert_snapshots(engine, [snapshot], table_name=table, schema=schema)
    finally:
        engine.dispose()
    target = f"{schema}.{table}" if schema else table
    if written:
        log.info("Wrote %s for account %s, hour %s", target, snapshot.account, snapshot.snapshot_hour)
    else:
        log.info(
            "Kept the row already in %s for account %s, hour %s: it holds a later observation",
            target,
            snapshot.account,
            snapshot.snapshot_hour,
        )
    return {
        "account": snapshot.account,
        "snapshot_hour": snapshot.snapshot_hour.isoformat(),
        "total_resting_order_value_cents": snapshot.total_resting_order_value_cents,
        "written": bool(written),
    }


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} minute{'s' if round(minutes) != 1 else ''}"
