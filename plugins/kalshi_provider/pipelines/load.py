"""The hourly DAG's load task: one account's reading becomes the row for the run's hour."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from kalshi_provider.pipelines.hours import skip_if_late, snapshot_hour

log = logging.getLogger(__name__)


def load_reading(
    payload: dict[str, Any],
    *,
    run_after: datetime,
    dag_run_id: str,
    warehouse_conn_id: str,
    table: str,
    schema: str | None,
    max_lateness_minutes: int,
) -> dict[str, Any]:
    """Upsert one account's reading (the fetch task's XCom) as the row for the run's hour."""
    from kalshi_provider.pipelines.warehouse import (
        BreakdownEntry,
        Snapshot,
        upsert_snapshots,
        warehouse_engine,
    )
    from kalshi_provider.readings import AccountReading

    reading = AccountReading.from_xcom(payload)
    skip_if_late(run_after, reading.observed_at, max_lateness_minutes)
    value = reading.resting_order_value
    snapshot = Snapshot(
        account=reading.account,
        snapshot_hour=snapshot_hour(run_after),
        total_resting_order_value_cents=value.total_cents,
        observed_at=reading.observed_at,
        dag_run_id=dag_run_id,
        breakdown=tuple(BreakdownEntry(entry.exchange_index, entry.dollars) for entry in value.breakdown),
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
