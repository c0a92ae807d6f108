"""Write and read hourly snapshots: one transaction per load, the later observation wins.

PostgreSQL and SQLite use their own ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``. With their
stock drivers (psycopg, sqlite3) the rows go to the driver as plain tuples (``exec_driver_sql``:
SQLAlchemy's events and error wrapping stay, its per-value type processing goes); other drivers
use SQLAlchemy's batched statement with ``RETURNING``. Other dialects, or ``force_generic=True``,
use select-then-update/insert in the same transaction, settling a concurrent insert of the same
hour through a savepoint.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse.errors import InvalidSnapshotError
from kalshi_provider.pipelines.warehouse.schema import ensure_tables, warehouse_tables
from kalshi_provider.pipelines.warehouse.snapshot import Snapshot, aware_utc

Key = tuple[str, datetime]

_NATIVE_UPSERT = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}
_UPDATED_COLUMNS = ("total_resting_order_value_cents", "observed_at", "dag_run_id", "loaded_at")
_ACCOUNT_CHUNK = 500  # keeps the generic path's IN lists well under every driver's parameter limit


def upsert_snapshots(
    engine: Engine,
    snapshots: Iterable[Snapshot],
    *,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    force_generic: bool = False,
) -> int:
    """
    Write ``snapshots`` and their breakdowns in one transaction; return how many hours we wrote.

    A stored row with a newer ``observed_at`` is kept (an equal one is replaced, so a re-run
    wins). Duplicates within ``snapshots`` collapse to their latest observation first.
    ``force_generic`` uses the portable select-then-write path even where a native upsert exists.
    """
    totals, breakdown = ensure_tables(engine, table_name=table_name, schema=schema)
    latest = _latest_per_key(snapshots)
    if not latest:
        return 0
    loaded_at = datetime.now(timezone.utc)
    rows = [_total_row(snapshot, loaded_at) for snapshot in latest]
    with _write_transaction(engine) as conn:
        if force_generic or not _has_native_upsert(conn):
            won = _upsert_totals_generic(conn, totals, rows)
        elif _driver_of(conn) is not None:
            won = _upsert_totals_driver(conn, totals, latest, loaded_at)
        else:
            won = _upsert_totals_native(conn, totals, rows)
        _replace_breakdown(conn, breakdown, [snapshot for snapshot in latest if snapshot.key in won])
    return len(won)


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

    Each dict has the table's columns (timestamps aware UTC); with ``include_breakdown`` also
    ``breakdown``: a list of ``{"exchange_index", "balance_dollars"}``. No table yet means no rows.
    """
    totals, breakdown = warehouse_tables(table_name, schema)
    since = None if since is None else aware_utc(since, "since")
    until = None if until is None else aware_utc(until, "until")
    if not inspect(engine).has_table(totals.name, schema=schema):
        return []
    with engine.connect() as conn:
        query = _filtered(select(totals), totals, account, since, until)
        rows = [
            dict(row._mapping)
            for row in conn.execute(query.order_by(totals.c.account, totals.c.snapshot_hour))
        ]
        if include_breakdown:
            entries = _breakdown_by_key(conn, _filtered(select(breakdown), breakdown, account, since, until))
            for row in rows:
                row["breakdown"] = entries.get((row["account"], row["snapshot_hour"]), [])
    return rows


def _latest_per_key(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """
    One snapshot per (account, hour), in key order.

    A single statement may not touch a row twice, and concurrent loads that lock rows in the same
    order cannot deadlock each other.
    """
    latest: dict[Key, Snapshot] = {}
    for snapshot in snapshots:
        if not isinstance(snapshot, Snapshot):
            raise InvalidSnapshotError(f"expected Snapshot objects, got {type(snapshot).__name__}")
        current = latest.get(snapshot.key)
        if current is None or snapshot.observed_at >= current.observed_at:
            latest[snapshot.key] = snapshot
    return [latest[key] for key in sorted(latest)]


def _total_row(snapshot: Snapshot, loaded_at: datetime) -> dict[str, Any]:
    return {
        "account": snapshot.account,
        "snapshot_hour": snapshot.snapshot_hour,
        "total_resting_order_value_cents": snapshot.total_resting_order_value_cents,
        "observed_at": snapshot.observed_at,
        "dag_run_id": snapshot.dag_run_id,
        "loaded_at": loaded_at,
    }


def _row_key(row: dict[str, Any]) -> Key:
    return row["account"], row["snapshot_hour"]


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


def _has_native_upsert(conn: Connection) -> bool:
    """ON CONFLICT with a batched RETURNING: PostgreSQL, and SQLite 3.35+."""
    dialect = conn.dialect
    return dialect.name in _NATIVE_UPSERT and bool(dialect.insert_executemany_returning)


def _upsert_totals_native(conn: Connection, totals: Table, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """One batched ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` returning the hours we won."""
    statement = _NATIVE_UPSERT[conn.dialect.name](totals)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[totals.c.account, totals.c.snapshot_hour],
        set_={name: excluded[name] for name in _UPDATED_COLUMNS},
        where=totals.c.observed_at <= excluded.observed_at,
    ).returning(totals.c.account, totals.c.snapshot_hour)
    return {(row.account, row.snapshot_hour) for row in conn.execute(statement, list(rows))}


def _upsert_totals_generic(conn: Connection, totals: Table, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """Portable upsert: bulk insert the new hours, conditionally update the known ones."""
    stored = _stored_observations(conn, totals, [_row_key(row) for row in rows])
    fresh = [row for row in rows if _row_key(row) not in stored]
    won = _insert_fresh(conn, totals, fresh) if fresh else set()
    for row in rows:
        key = _row_key(row)
        if key in stored and stored[key] <= row["observed_at"] and _update_if_not_newer(conn, totals, row):
            won.add(key)
    return won


def _stored_observations(conn: Connection, table: Table, keys: Collection[Key]) -> dict[Key, datetime]:
    """``observed_at`` of the stored rows for these keys (a range query, filtered here)."""
    wanted = set(keys)
    hours = [hour for _, hour in wanted]
    accounts = sorted({account for account, _ in wanted})
    stored: dict[Key, datetime] = {}
    for start in range(0, len(accounts), _ACCOUNT_CHUNK):
        query = select(table.c.account, table.c.snapshot_hour, table.c.observed_at).where(
            table.c.account.in_(accounts[start : start + _ACCOUNT_CHUNK]),
            table.c.snapshot_hour.between(min(hours), max(hours)),
        )
        for account, hour, observed_at in conn.execute(query):
            if (account, hour) in wanted:
                stored[(account, hour)] = observed_at
    return stored


def _insert_fresh(conn: Connection, totals: Table, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """Insert hours nobody had stored; if a concurrent load got there first, settle row by row."""
    try:
        with conn.begin_nested():
            conn.execute(insert(totals), list(rows))
    except IntegrityError:
        return {_row_key(row) for row in rows if _insert_or_update_one(conn, totals, row)}
    return {_row_key(row) for row in rows}


def _insert_or_update_one(conn: Connection, totals: Table, row: dict[str, Any]) -> bool:
    """Insert one row, or update it if another transaction inserted it meanwhile."""
    try:
        with conn.begin_nested():
            conn.execute(insert(totals), row)
        return True
    except IntegrityError:
        if _update_if_not_newer(conn, totals, row):
            return True
        if _exists(conn, totals, row):
            return False  # the stored observation is newer
        raise  # not a duplicate key: some other constraint refused the row


def _update_if_not_newer(conn: Connection, totals: Table, row: dict[str, Any]) -> bool:
    """Update the stored row unless it now holds a newer observation (checked atomically)."""
    statement = (
        update(totals)
        .where(
            totals.c.account == row["account"],
            totals.c.snapshot_hour == row["snapshot_hour"],
            totals.c.observed_at <= row["observed_at"],
        )
        .values({name: row[name] for name in _UPDATED_COLUMNS})
    )
    return conn.execute(statement).rowcount == 1


def _exists(conn: Connection, totals: Table, row: dict[str, Any]) -> bool:
    query = select(totals.c.account).where(
        totals.c.account == row["account"], totals.c.snapshot_hour == row["snapshot_hour"]
    )
    return conn.execute(query).first() is not None


def _replace_breakdown(conn: Connection, breakdown: Table, snapshots: Sequence[Snapshot]) -> None:
    """Replace the breakdown of every hour we won, so no rows of an older observation linger."""
    if not snapshots:
        return
    driver = _driver_of(conn)
    if driver is not None:
        _replace_breakdown_driver(conn, breakdown, snapshots, driver)
        return
    conn.execute(
        delete(breakdown).where(
            breakdown.c.account == bindparam("key_account"),
            breakdown.c.snapshot_hour == bindparam("key_hour"),
        ),
        [{"key_account": snapshot.account, "key_hour": snapshot.snapshot_hour} for snapshot in snapshots],
    )
    entries = [
        {
            "account": snapshot.account,
            "snapshot_hour": snapshot.snapshot_hour,
            "exchange_index": entry.exchange_index,
            "balance_dollars": entry.balance_dollars,
            "observed_at": snapshot.observed_at,
        }
        for snapshot in snapshots
        for entry in snapshot.breakdown
    ]
    if entries:
        conn.execute(insert(breakdown), entries)


# -- through the driver: PostgreSQL with psycopg, SQLite with sqlite3 ----------------------------


@dataclass(frozen=True)
class _Driver:
    """What one DBAPI driver takes without SQLAlchemy's help: its placeholder and value forms."""

    mark: str
    timestamp: Callable[[datetime], Any]
    balance: Callable[[Decimal], Any]


def _sqlite_timestamp(value: datetime) -> str:
    """UTC text in SQLAlchemy's SQLite format, so rows from every path store and compare alike."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _as_is(value: Any) -> Any:
    return value


_DRIVERS = {
    # Balances are already quantized to the column's scale by BreakdownEntry.
    ("sqlite", "pysqlite"): _Driver("?", _sqlite_timestamp, lambda balance: format(balance, "f")),
    ("postgresql", "psycopg"): _Driver("%s", _as_is, _as_is),
}


def _driver_of(conn: Connection) -> _Driver | None:
    return _DRIVERS.get((conn.dialect.name, conn.dialect.driver))


def _upsert_sql(conn: Connection, totals: Table, source: str) -> str:
    """The native upsert of ``source`` (a VALUES list or a SELECT) as driver SQL."""
    name = conn.dialect.identifier_preparer.format_table(totals)
    updates = ", ".join(f"{column} = excluded.{column}" for column in _UPDATED_COLUMNS)
    return (
        f"INSERT INTO {name} ({', '.join(totals.c.keys())}) {source} "
        f"ON CONFLICT (account, snapshot_hour) DO UPDATE SET {updates} "
        f"WHERE {name}.observed_at <= excluded.observed_at"
    )


def _upsert_totals_driver(
    conn: Connection, totals: Table, latest: Sequence[Snapshot], loaded_at: datetime
) -> set[Key]:
    """The native upsert with the driver doing the parameter work; returns the hours we won."""
    if conn.dialect.name == "postgresql":
        return _upsert_totals_postgresql(conn, totals, latest, loaded_at)
    return _upsert_totals_sqlite(conn, totals, latest, loaded_at)


def _upsert_totals_sqlite(
    conn: Connection, totals: Table, latest: Sequence[Snapshot], loaded_at: datetime
) -> set[Key]:
    """
    Read the stored observations first, then ``executemany`` the upsert of the hours we win.

    sqlite3's executemany returns no rows, so the winners are decided by that read. It is exact:
    ours holds the write lock from BEGIN IMMEDIATE (and SQLite transactions are serializable).
    """
    stored = _stored_observations(conn, totals, [snapshot.key for snapshot in latest])
    won = [s for s in latest if s.key not in stored or stored[s.key] <= s.observed_at]
    if won:
        loaded = _sqlite_timestamp(loaded_at)
        rows = [
            (
                s.account,
                _sqlite_timestamp(s.snapshot_hour),
                s.total_resting_order_value_cents,
                _sqlite_timestamp(s.observed_at),
                s.dag_run_id,
                loaded,
            )
            for s in won
        ]
        conn.exec_driver_sql(_upsert_sql(conn, totals, "VALUES (?, ?, ?, ?, ?, ?)"), rows)
    return {snapshot.key for snapshot in won}


_UNNEST_ROWS = (
    "SELECT a, h, c, o, d, %s::timestamptz FROM unnest("
    "%s::text[], %s::timestamptz[], %s::bigint[], %s::timestamptz[], %s::text[]"
    ") WITH ORDINALITY AS u(a, h, c, o, d, n) ORDER BY n"
)


def _upsert_totals_postgresql(
    conn: Connection, totals: Table, latest: Sequence[Snapshot], loaded_at: datetime
) -> set[Key]:
    """
    One upsert over column arrays, ``RETURNING`` the hours we won.

    One statement and one round trip, with psycopg adapting whole columns. ``ORDER BY n`` keeps
    the rows in key order, so concurrent loads lock rows in the same order (no deadlock).
    """
    columns = (
        [s.account for s in latest],
        [s.snapshot_hour for s in latest],
        [s.total_resting_order_value_cents for s in latest],
        [s.observed_at for s in latest],
        [s.dag_run_id for s in latest],
    )
    statement = _upsert_sql(conn, totals, _UNNEST_ROWS) + " RETURNING account, snapshot_hour"
    return {(account, hour) for account, hour in conn.exec_driver_sql(statement, (loaded_at, *columns))}


def _replace_breakdown_driver(
    conn: Connection, breakdown: Table, snapshots: Sequence[Snapshot], driver: _Driver
) -> None:
    """
    Delete breakdown rows only where some are stored, then ``executemany`` the new ones.

    The read is exact: we hold the totals row of every hour we won (SQLite: the write lock), and
    a breakdown is only written by whoever holds that row. A fresh hour thus costs no DELETE.
    """
    name = conn.dialect.identifier_preparer.format_table(breakdown)
    mark, timestamp = driver.mark, driver.timestamp
    stored = _stored_observations(conn, breakdown, [snapshot.key for snapshot in snapshots])
    if stored:
        conn.exec_driver_sql(
            f"DELETE FROM {name} WHERE account = {mark} AND snapshot_hour = {mark}",
            [(s.account, timestamp(s.snapshot_hour)) for s in snapshots if s.key in stored],
        )
    entries = [
        (
            s.account,
            timestamp(s.snapshot_hour),
            entry.exchange_index,
            driver.balance(entry.balance_dollars),
            timestamp(s.observed_at),
        )
        for s in snapshots
        for entry in s.breakdown
    ]
    if entries:
        columns = ", ".join(breakdown.c.keys())
        conn.exec_driver_sql(f"INSERT INTO {name} ({columns}) VALUES ({', '.join([mark] * 5)})", entries)


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


def _breakdown_by_key(conn: Connection, query: Any) -> dict[Key, list[dict[str, Any]]]:
    table = query.selected_columns
    ordered = query.order_by(table.account, table.snapshot_hour, table.exchange_index)
    grouped: dict[Key, list[dict[str, Any]]] = {}
    for row in conn.execute(ordered):
        grouped.setdefault((row.account, row.snapshot_hour), []).append(
            {"exchange_index": row.exchange_index, "balance_dollars": row.balance_dollars}
        )
    return grouped
