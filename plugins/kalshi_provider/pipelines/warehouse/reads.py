"""Read the hourly tables and the history back: rows as dicts, values as the column types give them.

The rows of a time range (``since <= snapshot_hour < until``), of one account or all, ordered by
account and hour. A table that does not exist yet reads as no rows. These readers return every row
they find: the quality check and tests read bounded windows through them; the chart reads through
:mod:`~kalshi_provider.pipelines.warehouse.window`, which keeps to a points budget.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, inspect, select
from sqlalchemy.engine import Connection, Engine

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse.schema import warehouse_tables
from kalshi_provider.pipelines.warehouse.warehouse_errors import InvalidSnapshotError
from kalshi_provider.timestamps import aware_utc

#: The amount column of each per-shard table (the breakdowns).
_TOTAL_SHARD_AMOUNT = "shard_resting_order_value_dollars"
_BALANCE_SHARD_AMOUNT = "shard_balance_dollars"


def read_snapshots(
    engine: Engine,
    *,
    account: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    include_breakdown: bool = False,
) -> list[dict[str, Any]]:
    """
    Return stored totals with ``since <= snapshot_hour < until``, ordered by account and hour.

    Each dict has the table's columns (timestamps aware UTC). With ``include_breakdown`` also
    ``breakdown`` (a list of ``{"exchange_index", "shard_resting_order_value_dollars"}``) and
    ``breakdown_problem`` (why Kalshi's breakdown was left out of that hour, or None). No table yet
    means no rows. Every key is documented in ``docs/tables.md``.

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param account: Only this account's rows; None for every account.
    :param since: The first hour (aware); None for no lower bound.
    :param until: The hour after the last (aware); None for no upper bound.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    :param include_breakdown: Add each hour's ``breakdown`` and ``breakdown_problem``.
    """
    tables = warehouse_tables(table_name, schema)
    since, until = _bounds(since, until)
    existing = set(inspect(engine).get_table_names(schema=schema))
    if tables.totals.name not in existing:
        return []
    totals = tables.totals
    with engine.connect() as conn:
        rows = _hourly_rows(conn, totals, account, since, until)
        if include_breakdown:
            entries: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
            if tables.breakdown.name in existing:  # a table made by hand may come alone
                entries = _shards_by_key(conn, tables.breakdown, _TOTAL_SHARD_AMOUNT, account, since, until)
            problems: dict[tuple[str, datetime], str] = {}
            if tables.problems.name in existing:
                problems = _problems_by_key(conn, tables.problems, account, since, until)
            for row in rows:
                key = (row["account"], row["snapshot_hour"])
                row["breakdown"] = entries.get(key, [])
                row["breakdown_problem"] = problems.get(key)
    return rows


def read_balances(
    engine: Engine,
    *,
    account: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
) -> list[dict[str, Any]]:
    """
    Return stored balances with ``since <= snapshot_hour < until``, ordered by account and hour.

    Each dict has the balance table's columns (cents as ``int``, dollars as ``Decimal``,
    timestamps aware UTC), ``breakdown`` (the balance per shard: ``{"exchange_index",
    "shard_balance_dollars"}``) and ``balance_minus_resting`` (per shard: ``{"exchange_index",
    "shard_balance_dollars", "shard_resting_order_value_dollars", "shard_balance_minus_resting_dollars"}``,
    None where unknown). No table, no rows. Every key is documented in ``docs/tables.md``.

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param account: Only this account's rows; None for every account.
    :param since: The first hour (aware); None for no lower bound.
    :param until: The hour after the last (aware); None for no upper bound.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    """
    tables = warehouse_tables(table_name, schema)
    since, until = _bounds(since, until)
    existing = set(inspect(engine).get_table_names(schema=schema))
    if tables.balance.name not in existing:
        return []
    with engine.connect() as conn:
        rows = _hourly_rows(conn, tables.balance, account, since, until)
        shards = _shards_by_key(conn, tables.balance_shards, _BALANCE_SHARD_AMOUNT, account, since, until)
        differences = _differences_by_key(conn, tables.balance_minus_resting, account, since, until)
    for row in rows:
        key = (row["account"], row["snapshot_hour"])
        row["breakdown"] = shards.get(key, [])
        row["balance_minus_resting"] = differences.get(key, [])
    return rows


def read_history(
    engine: Engine,
    *,
    account: str | None = None,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
) -> list[dict[str, Any]]:
    """Every reading the pipeline took, oldest first: the history table's rows as dicts.

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param account: Only this account's readings; None for every account.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    """
    history = warehouse_tables(table_name, schema).history
    if history.name not in set(inspect(engine).get_table_names(schema=schema)):
        return []
    query = select(history)
    if account is not None:
        query = query.where(history.c.account == account)
    query = query.order_by(history.c.observed_at, history.c.endpoint, history.c.recorded_at)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def read_subaccounts(
    engine: Engine,
    *,
    account: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
) -> list[dict[str, Any]]:
    """Every subaccount's balance per shard with ``since <= snapshot_hour < until``, ordered by
    account, hour, subaccount and shard: the ``…_subacct`` table's rows as dicts. No table, no rows.

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param account: Only this account's rows; None for every account.
    :param since: The first hour (aware); None for no lower bound.
    :param until: The hour after the last (aware); None for no upper bound.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    """
    table = warehouse_tables(table_name, schema).subaccounts
    since, until = _bounds(since, until)
    if table.name not in set(inspect(engine).get_table_names(schema=schema)):
        return []
    query = _filtered(select(table), table, account, since, until).order_by(*table.primary_key.columns)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _bounds(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    return (
        None if since is None else aware_utc(since, "since", InvalidSnapshotError),
        None if until is None else aware_utc(until, "until", InvalidSnapshotError),
    )


def _filtered(
    query: Any, table: Table, account: str | None, since: datetime | None, until: datetime | None
) -> Any:
    if account is not None:
        query = query.where(table.c.account == account)
    if since is not None:
        query = query.where(table.c.snapshot_hour >= since)
    if until is not None:
        query = query.where(table.c.snapshot_hour < until)
    return query


def _hourly_rows(
    conn: Connection, table: Table, account: str | None, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    query = _filtered(select(table), table, account, since, until)
    return [
        dict(row._mapping) for row in conn.execute(query.order_by(table.c.account, table.c.snapshot_hour))
    ]


def _shards_by_key(
    conn: Connection,
    table: Table,
    amount: str,
    account: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[tuple[str, datetime], list[dict[str, Any]]]:
    query = _filtered(select(table), table, account, since, until)
    ordered = query.order_by(table.c.account, table.c.snapshot_hour, table.c.exchange_index)
    grouped: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
    for row in conn.execute(ordered):
        grouped.setdefault((row.account, row.snapshot_hour), []).append(
            {"exchange_index": row.exchange_index, amount: row._mapping[amount]}
        )
    return grouped


def _differences_by_key(
    conn: Connection, table: Table, account: str | None, since: datetime | None, until: datetime | None
) -> dict[tuple[str, datetime], list[dict[str, Any]]]:
    query = _filtered(select(table), table, account, since, until)
    ordered = query.order_by(table.c.account, table.c.snapshot_hour, table.c.exchange_index)
    grouped: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
    for row in conn.execute(ordered):
        entry = dict(row._mapping)
        key = (entry.pop("account"), entry.pop("snapshot_hour"))
        grouped.setdefault(key, []).append(entry)
    return grouped


def _problems_by_key(
    conn: Connection, table: Table, account: str | None, since: datetime | None, until: datetime | None
) -> dict[tuple[str, datetime], str]:
    query = _filtered(select(table), table, account, since, until)
    return {(row.account, row.snapshot_hour): row.breakdown_problem for row in conn.execute(query)}
