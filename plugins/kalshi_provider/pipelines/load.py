"""The hourly DAG's load task: one account's reading becomes the rows for the run's hour.

What the load stores, and what it records only in the history, follows the hour rule
(:mod:`.hours`) for each of the reading's answers. A key whose account is not an FCM member (Kalshi
refused its total) is reported once, at WARNING, the first time the account is seen so (again, after
it had FCM access); every later hour logs it at INFO, and the hour's balance is stored as for any
account.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from kalshi_provider.pipelines.hours import observation_problem, snapshot_hour

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
    try_number: int | None = None,
    dag_id: str | None = None,
) -> dict[str, Any]:
    """Store one account's reading (the fetch task's XCom) as its rows for the run's hour.

    Every answer in the reading gets a history row. An answer not observed inside the run's hour
    (or too late) is stored for no hour; when nothing of the reading may stand for the hour, the
    task skips, after the history recorded why. An hour that already holds an earlier observation
    keeps it: a re-run leaves a finished hour as it was. A warehouse behind the code is migrated
    first, or with ``[kalshi] warehouse_migrations = manual`` the task fails naming the command.
    A reading of a paused exchange (maintenance) leaves one history row (``exchange_paused``) and
    skips the task.
    """
    from kalshi_provider.endpoints import BALANCE_ENDPOINT, SUBACCOUNT_BALANCES_ENDPOINT, TOTAL_ENDPOINT
    from kalshi_provider.pipelines.settings import warehouse_migrations
    from kalshi_provider.pipelines.warehouse import (
        WarehouseMigrationRequired,
        store_reading,
        warehouse_engine,
    )
    from kalshi_provider.pipelines.warehouse_cli import migrate_command
    from kalshi_provider.readings import AccountReading

    reading = AccountReading.from_xcom(payload)
    hour = snapshot_hour(run_after)
    label = f"account {reading.account}, hour {hour:%Y-%m-%d %H:00} UTC"
    lateness = timedelta(minutes=max_lateness_minutes)
    late: dict[str, str] = {}
    if reading.resting_order_value is not None:
        if problem := observation_problem(run_after, reading.observed_at, lateness):
            late[TOTAL_ENDPOINT] = problem
    if reading.balance is not None and reading.balance.value is not None:
        if problem := observation_problem(run_after, reading.balance.observed_at, lateness):
            late[BALANCE_ENDPOINT] = problem
    if reading.subaccounts is not None and reading.subaccounts.value is not None:
        if problem := observation_problem(run_after, reading.subaccounts.observed_at, lateness):
            late[SUBACCOUNT_BALANCES_ENDPOINT] = problem
    migrations = warehouse_migrations()
    engine, description = warehouse_engine(warehouse_conn_id)
    log.info("Warehouse: %s", description)
    try:
        stored = store_reading(
            engine,
            reading,
            snapshot_hour=hour,
            dag_run_id=dag_run_id,
            dag_id=dag_id,
            table_name=table,
            schema=schema,
            try_number=try_number,
            not_in_hour=late,
            migrations=migrations,
        )
        _report_lineage(engine, reading, stored, table, schema)
    except WarehouseMigrationRequired as err:
        command = migrate_command(warehouse_conn_id, table, schema)
        raise WarehouseMigrationRequired(f"{err} The command: {command}") from None
    finally:
        engine.dispose()
    target = f"{schema}.{table}" if schema else table
    _log_not_permitted(reading, stored.newly_not_permitted, label)
    _log_subaccounts_refused(reading, stored.newly_refused_subaccounts, label)
    for endpoint, what in ((TOTAL_ENDPOINT, "total"), (BALANCE_ENDPOINT, "balance")):
        if endpoint in late:
            log.warning("%s: the %s was not stored (it is in the history): %s", label, what, late[endpoint])
    _log_kept(stored.total, "total", target, label)
    _log_kept(stored.balance, "balance", target, label)
    _log_left_out(reading, label)
    if reading.exchange_paused is not None:
        from kalshi_provider.version_compat import AirflowSkipException

        pause = reading.exchange_paused.describe()
        log.warning(
            "%s: nothing to store, Kalshi's exchange is paused (it is in the history): %s", label, pause
        )
        raise AirflowSkipException(f"Kalshi's exchange is paused, nothing was read: {pause}")
    if stored.total is None and stored.balance is None and late:
        from kalshi_provider.version_compat import AirflowSkipException

        raise AirflowSkipException(
            late.get(TOTAL_ENDPOINT) or late.get(BALANCE_ENDPOINT) or next(iter(late.values()))
        )
    value = reading.resting_order_value
    balance = reading.balance.value if reading.balance is not None else None
    result = {
        "account": reading.account,
        "snapshot_hour": hour.isoformat(),
        "total_resting_order_value_cents": None if value is None else value.total_cents,
        "written": stored.held,
        "breakdown_left_out": bool(value is not None and value.breakdown_problem),
        "not_permitted": reading.not_permitted is not None,
        "balance_cents": None if balance is None else balance.balance_cents,
        "balance_written": stored.balance is not None and stored.balance.held,
    }
    # The task pushes each key as an XCom of its own, and Airflow 3.0 refuses a None value.
    return {key: item for key, item in result.items() if item is not None}


def _log_subaccounts_refused(reading: Any, newly: bool, label: str) -> None:
    if reading.subaccounts is None or reading.subaccounts.not_permitted is None:
        return
    (log.warning if newly else log.info)(
        "%s: Kalshi does not let this key list the subaccounts' balances (%s): a key restricted to one "
        "subaccount may not. The rest is recorded as usual. This is reported at WARNING once; later "
        "hours log it at INFO. To record every subaccount, use a key that is not restricted.",
        label,
        reading.subaccounts.not_permitted,
    )


def _log_not_permitted(reading: Any, newly: bool, label: str) -> None:
    if reading.not_permitted is None:
        return
    if newly:
        log.warning(
            "%s: Kalshi does not permit this key to read the total resting order value: its account is "
            "not an FCM member (%s). Its balance is recorded every hour as usual, its balance minus "
            "resting is unknown (NULL), and the quality check does not count the missing totals as "
            "missing hours while its balance arrives. This is reported at WARNING once: later hours log "
            "it at INFO until the account has FCM access. To record the total, ask Kalshi to enable FCM "
            "access for this account or use an FCM member's key; to stop reading it, remove the "
            "connection from "
            "'kalshi_conn_ids'.",
            label,
            reading.not_permitted,
        )
    else:
        log.info("%s: no FCM access (reported before); the balance is recorded without the total", label)


def _log_kept(stored: Any, what: str, target: str, label: str) -> None:
    if stored is None:
        return
    if stored.held:
        log.info("Wrote the %s to %s for %s", what, target, label)
    else:
        log.info(
            "Kept the %s already in %s for %s: it holds an earlier observation (%s, run %s), and the "
            "earliest reading inside an hour is the one an hour keeps",
            what,
            target,
            label,
            stored.observed_at.isoformat(),
            stored.dag_run_id,
        )


def _log_left_out(reading: Any, label: str) -> None:
    value = reading.resting_order_value
    if value is not None and value.breakdown_problem:
        log.warning(
            "%s: storing the total without its breakdown, which was left out: %s",
            label,
            value.breakdown_problem,
        )
    balance = reading.balance
    if balance is not None and balance.value is None:
        log.warning("%s: the balance was left out (it is in the history): %s", label, balance.problem)
    elif balance is not None and balance.value.breakdown_problem:
        log.warning(
            "%s: storing the balance without its breakdown, which was left out: %s",
            label,
            balance.value.breakdown_problem,
        )


def _report_lineage(engine: Any, reading: Any, stored: Any, table: str, schema: str | None) -> None:
    """Hook-level lineage of the load: the Kalshi endpoints its rows came from, the tables it wrote."""
    from kalshi_provider.endpoint_assets import kalshi_asset_uri
    from kalshi_provider.endpoints import BALANCE_ENDPOINT, SUBACCOUNT_BALANCES_ENDPOINT, TOTAL_ENDPOINT
    from kalshi_provider.hook_lineage import report_lineage
    from kalshi_provider.pipelines.warehouse import warehouse_tables
    from kalshi_provider.pipelines.warehouse.table_lineage_uris import warehouse_asset_uris

    try:
        tables = warehouse_tables(table, schema)
        written = [tables.history]  # every answer is recorded there
        if stored.total is not None and stored.total.held:
            written += [tables.totals, tables.breakdown, tables.problems]
        if stored.balance is not None and stored.balance.held:
            written += [tables.balance, tables.balance_shards, tables.subaccounts]
        if len(written) > 1:
            written.append(tables.balance_minus_resting)
        endpoints = [TOTAL_ENDPOINT] if reading.resting_order_value is not None else []
        if reading.balance is not None and reading.balance.value is not None:
            endpoints.append(BALANCE_ENDPOINT)
        if reading.subaccounts is not None and reading.subaccounts.value is not None:
            endpoints.append(SUBACCOUNT_BALANCES_ENDPOINT)
        inputs = [kalshi_asset_uri(reading.source, path) for path in endpoints] if reading.source else []
        report_lineage(engine, inputs=inputs, outputs=warehouse_asset_uris(engine, written, schema))
    except Exception as err:  # noqa: BLE001 - lineage must never cost the rows just committed
        log.warning("Could not report lineage (%s); the rows are stored", type(err).__name__)
