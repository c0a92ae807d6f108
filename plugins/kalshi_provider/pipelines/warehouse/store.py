"""Write one account-hour, read rows back. An hour keeps the earliest observation made inside it.

The totals row is written by one of two paths, both in the transaction that also writes the hour's
breakdown, so a load is whole or absent:

- **upsert**: SQLAlchemy's own dialect construct where there is one: PostgreSQL and SQLite
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE stored.observed_at > new.observed_at``; MySQL and
  MariaDB ``INSERT ... ON DUPLICATE KEY UPDATE``, which has no WHERE, so every assignment is
  conditional and ``observed_at`` is assigned last (MySQL evaluates SET left to right, later
  assignments seeing the new values of earlier ones).
- **portable**, for every other dialect: INSERT in a savepoint; on a duplicate key, an UPDATE
  whose WHERE holds the same keep-rule.

Either way the hour's row is then read back with a locking read, and the load *holds the hour*
when the row carries its observation: only then does it replace the hour's breakdown (and the
note of a breakdown left out). Concurrent loads of one hour thus settle to one row, the earliest
observation's, with its own breakdown. Values are converted only by the column types (schema.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Table, case, delete, insert, inspect, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse.errors import InvalidSnapshotError
from kalshi_provider.pipelines.warehouse.schema import PROBLEM_LENGTH, WarehouseTables, warehouse_tables
from kalshi_provider.pipelines.warehouse.shape import prepare_tables
from kalshi_provider.readings import AccountReading

_HOUR = timedelta(hours=1)
#: Columns an earlier observation replaces; ``observed_at`` last (see the module doc on MySQL).
_REPLACED = ("total_resting_order_value_cents", "dag_run_id", "loaded_at", "observed_at")
_ON_CONFLICT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_ON_DUPLICATE_KEY = frozenset({"mysql", "mariadb"})


@dataclass(frozen=True)
class StoredHour:
    """What one write left in the table for its account and hour.

    ``held`` is True when the row holds this load's observation (written now, or by an earlier
    try of the same load); False when an earlier observation of the hour was kept.
    """

    account: str
    snapshot_hour: datetime
    held: bool
    observed_at: datetime
    dag_run_id: str | None


def store_reading(
    engine: Engine,
    reading: AccountReading,
    *,
    snapshot_hour: datetime,
    dag_run_id: str | None,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    portable: bool = False,
) -> StoredHour:
    """
    Store ``reading`` as its account's row for ``snapshot_hour``, unless an earlier one is there.

    :param engine: The warehouse.
    :param reading: What the fetch task read; it must have been observed inside the hour.
    :param snapshot_hour: The UTC hour the row stands for (aware, on the hour).
    :param dag_run_id: The run writing the row.
    :param table_name: The totals table; the breakdown and problems tables are named after it.
    :param schema: The tables' schema (database on MySQL), or the connection's default.
    :param portable: Use the portable path even where the dialect has an upsert (tests, and
        proof that the fallback keeps the same promises).
    """
    if not isinstance(reading, AccountReading):
        raise InvalidSnapshotError(f"expected an AccountReading, got {type(reading).__name__}")
    hour = _checked_hour(snapshot_hour, reading.observed_at)
    if dag_run_id is not None and not isinstance(dag_run_id, str):
        raise InvalidSnapshotError(f"dag_run_id must be a string or None, got {type(dag_run_id).__name__}")
    tables = prepare_tables(engine, table_name=table_name, schema=schema)
    total = {
        "account": reading.account,
        "snapshot_hour": hour,
        "total_resting_order_value_cents": reading.resting_order_value.total_cents,
        "observed_at": reading.observed_at,
        "dag_run_id": dag_run_id,
        "loaded_at": datetime.now(timezone.utc),
    }
    with _write_transaction(engine) as conn:
        if portable or not _has_upsert(conn):
            refused = _write_portably(conn, tables.totals, total)
        else:
            refused = _upsert(conn, tables.totals, total)
        row = _locked_row(conn, tables.totals, reading.account, hour)
        if row is None:  # the INSERT failed on something other than the key
            raise refused or InvalidSnapshotError("the database kept no row for the hour")
        held = row.observed_at == reading.observed_at
        if held:
            _replace_details(conn, tables, reading, hour)
    return StoredHour(reading.account, hour, held, row.observed_at, row.dag_run_id)


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
    Return stored rows with ``since <= snapshot_hour < until``, ordered by account and hour.

    Each dict has the table's columns (timestamps aware UTC). With ``include_breakdown`` also
    ``breakdown`` (a list of ``{"exchange_index", "balance_dollars"}``) and ``breakdown_problem``
    (why Kalshi's breakdown was left out of that hour, or None). No table yet means no rows.
    """
    tables = warehouse_tables(table_name, schema)
    since = None if since is None else aware_utc(since, "since")
    until = None if until is None else aware_utc(until, "until")
    existing = set(inspect(engine).get_table_names(schema=schema))
    if tables.totals.name not in existing:
        return []
    totals = tables.totals
    with engine.connect() as conn:
        query = _filtered(select(totals), totals, account, since, until)
        rows = [
            dict(row._mapping)
            for row in conn.execute(query.order_by(totals.c.account, totals.c.snapshot_hour))
        ]
        if include_breakdown:
            entries: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
            if tables.breakdown.name in existing:  # a table made by hand may come alone
                entries = _breakdown_by_key(conn, tables.breakdown, account, since, until)
            problems: dict[tuple[str, datetime], str] = {}
            if tables.problems.name in existing:
                problems = _problems_by_key(conn, tables.problems, account, since, until)
            for row in rows:
                key = (row["account"], row["snapshot_hour"])
                row["breakdown"] = entries.get(key, [])
                row["breakdown_problem"] = problems.get(key)
    return rows


def aware_utc(value: object, what: str) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused because their zone is a guess."""
    if not isinstance(value, datetime):
        raise InvalidSnapshotError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise InvalidSnapshotError(
            f"{what} must be timezone-aware, got naive {value.isoformat()} (attach tzinfo, e.g. UTC)"
        )
    return value.astimezone(timezone.utc)


def _checked_hour(snapshot_hour: datetime, observed_at: datetime) -> datetime:
    hour = aware_utc(snapshot_hour, "snapshot_hour")
    if hour != hour.replace(minute=0, second=0, microsecond=0):
        raise InvalidSnapshotError(f"snapshot_hour must be exactly on a UTC hour, got {hour.isoformat()}")
    if not hour <= observed_at < hour + _HOUR:
        raise InvalidSnapshotError(
            f"a reading observed at {observed_at.isoformat()} cannot stand for the hour {hour.isoformat()}"
        )
    return hour


# -- writing ---------------------------------------------------------------------------------------


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """Begin a transaction that really is one, also on SQLite; commit, or roll back on any error."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            _sqlite_begin_immediate(conn)
        yield conn


def _sqlite_begin_immediate(conn: Connection) -> None:
    """
    Open the SQLite transaction ourselves, taking the write lock up front.

    pysqlite only begins a transaction at the first INSERT/UPDATE/DELETE, so a SAVEPOINT issued
    before that would open (and its RELEASE commit) a transaction of its own, and two writers that
    both read first would deadlock upgrading their locks.
    """
    dbapi_conn = conn.connection.driver_connection
    if getattr(dbapi_conn, "autocommit", None) is True or getattr(dbapi_conn, "in_transaction", True):
        return  # Python 3.12 autocommit mode, or a transaction an engine event already began
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _has_upsert(conn: Connection) -> bool:
    return conn.dialect.name in _ON_CONFLICT or conn.dialect.name in _ON_DUPLICATE_KEY


def _upsert(conn: Connection, totals: Table, total: dict[str, Any]) -> None:
    """The dialect's own upsert; the stored row changes only for an earlier observation."""
    name = conn.dialect.name
    if name in _ON_DUPLICATE_KEY:
        statement = mysql.insert(totals).values(total)
        new = statement.inserted
        earlier = new.observed_at < totals.c.observed_at
        statement = statement.on_duplicate_key_update(
            [(column, case((earlier, new[column]), else_=totals.c[column])) for column in _REPLACED]
        )
    else:
        statement = _ON_CONFLICT[name](totals).values(total)
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[totals.c.account, totals.c.snapshot_hour],
            set_={column: new[column] for column in _REPLACED},
            where=new.observed_at < totals.c.observed_at,
        )
    conn.execute(statement)


def _write_portably(conn: Connection, totals: Table, total: dict[str, Any]) -> IntegrityError | None:
    """INSERT, or on a duplicate key UPDATE if ours is earlier; returns the INSERT's refusal."""
    try:
        with conn.begin_nested():
            conn.execute(insert(totals).values(total))
        return None
    except IntegrityError as refused:
        conn.execute(
            update(totals)
            .where(
                totals.c.account == total["account"],
                totals.c.snapshot_hour == total["snapshot_hour"],
                totals.c.observed_at > total["observed_at"],
            )
            .values({column: total[column] for column in _REPLACED})
        )
        return refused


def _locked_row(conn: Connection, totals: Table, account: str, hour: datetime) -> Any:
    """The hour's row as it now stands, locked until commit (SQLite: the write lock already is)."""
    query = (
        select(totals.c.observed_at, totals.c.dag_run_id)
        .where(totals.c.account == account, totals.c.snapshot_hour == hour)
        .with_for_update()
    )
    return conn.execute(query).first()


def _replace_details(
    conn: Connection, tables: WarehouseTables, reading: AccountReading, hour: datetime
) -> None:
    """The hour's breakdown and left-out note become this reading's; none of an older one linger."""
    value = reading.resting_order_value
    for table in (tables.breakdown, tables.problems):
        conn.execute(delete(table).where(table.c.account == reading.account, table.c.snapshot_hour == hour))
    if value.breakdown:
        entries = [
            {
                "account": reading.account,
                "snapshot_hour": hour,
                "exchange_index": entry.exchange_index,
                "balance_dollars": entry.dollars,
                "observed_at": reading.observed_at,
            }
            for entry in value.breakdown
        ]
        conn.execute(insert(tables.breakdown), entries)
    if value.breakdown_problem:
        conn.execute(
            insert(tables.problems).values(
                account=reading.account,
                snapshot_hour=hour,
                observed_at=reading.observed_at,
                breakdown_problem=value.breakdown_problem[:PROBLEM_LENGTH],
            )
        )


# -- reading ---------------------------------------------------------------------------------------


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


def _breakdown_by_key(
    conn: Connection, table: Table, account: str | None, since: datetime | None, until: datetime | None
) -> dict[tuple[str, datetime], list[dict[str, Any]]]:
    query = _filtered(select(table), table, account, since, until)
    ordered = query.order_by(table.c.account, table.c.snapshot_hour, table.c.exchange_index)
    grouped: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
    for row in conn.execute(ordered):
        grouped.setdefault((row.account, row.snapshot_hour), []).append(
            {"exchange_index": row.exchange_index, "balance_dollars": row.balance_dollars}
        )
    return grouped


def _problems_by_key(
    conn: Connection, table: Table, account: str | None, since: datetime | None, until: datetime | None
) -> dict[tuple[str, datetime], str]:
    query = _filtered(select(table), table, account, since, until)
    return {(row.account, row.snapshot_hour): row.breakdown_problem for row in conn.execute(query)}
