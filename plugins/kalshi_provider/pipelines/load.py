"""The hourly DAG's load task: one account's reading becomes the row for the run's hour."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from kalshi_provider.pipelines.hours import skip_unless_observed_in_hour, snapshot_hour

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
    """Store one account's reading (the fetch task's XCom) as the row for the run's hour.

    Skips when the reading was not observed inside that hour (see :mod:`..hours`). An hour that
    already holds an earlier observation keeps it: a re-run leaves a finished hour as it was.
    """
    from kalshi_provider.pipelines.warehouse import store_reading, warehouse_engine
    from kalshi_provider.readings import AccountReading

    reading = AccountReading.from_xcom(payload)
    skip_unless_observed_in_hour(run_after, reading.observed_at, max_lateness_minutes)
    hour = snapshot_hour(run_after)
    problem = reading.resting_order_value.breakdown_problem
    if problem:
        log.warning(
            "Account %s, hour %s: storing the total without its breakdown, which was left out: %s",
            reading.account,
            f"{hour:%Y-%m-%d %H:00} UTC",
            problem,
        )
    engine, description = warehouse_engine(warehouse_conn_id)
    log.info("Warehouse: %s", description)
    try:
        stored = store_reading(
            engine, reading, snapshot_hour=hour, dag_run_id=dag_run_id, table_name=table, schema=schema
        )
    finally:
        engine.dispose()
    target = f"{schema}.{table}" if schema else table
    if stored.held:
        log.info("Wrote %s for account %s, hour %s", target, reading.account, f"{hour:%Y-%m-%d %H:00} UTC")
    else:
        log.info(
            "Kept the row already in %s for account %s, hour %s: it holds an earlier observation "
            "(%s, run %s), and the earliest reading inside an hour is the one an hour keeps",
            target,
            reading.account,
            f"{hour:%Y-%m-%d %H:00} UTC",
            stored.observed_at.isoformat(),
            stored.dag_run_id,
        )
    return {
        "account": reading.account,
        "snapshot_hour": hour.isoformat(),
        "total_resting_order_value_cents": reading.resting_order_value.total_cents,
        "written": stored.held,
        "breakdown_left_out": bool(problem),
    }
