"""Write one account-hour (``reads.py`` reads it back). An hour keeps the earliest observation made inside it.

One load writes, in one transaction, so it is whole or absent:

- the hour's **total** (the totals table) with its breakdown and the note of a breakdown left out;
- the hour's **balance** (the balance table) with its split per shard, under the same keep-rule,
  each table keeping the earliest observation of its own endpoint inside the hour;
- the hour's **free margin** per shard, recomputed from what the hour then holds whenever the load
  changed its total or its balance (exact ``Decimal`` arithmetic here, not SQL: SQLite keeps the
  decimals as text and would subtract them as floats);
- one **history** row per reading it was given, stored for the hour or not. History rows are only
  ever inserted, never updated or deleted.

The hourly rows are written by one of two paths:

- **upsert**: SQLAlchemy's own dialect construct where there is one: PostgreSQL and SQLite
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE stored.observed_at > new.observed_at``; MySQL and
  MariaDB ``INSERT ... ON DUPLICATE KEY UPDATE``, which has no WHERE, so every assignment is
  conditional and ``observed_at`` is assigned last (MySQL evaluates SET left to right, later
  assignments seeing the new values of earlier ones).
- **portable**, for every other dialect: INSERT in a savepoint; on a duplicate key, an UPDATE
  whose WHERE holds the same keep-rule.

Either way the hour's row is then read back with a locking read, and the load *holds the hour*
when the row carries its observation: only then does it replace the hour's per-shard rows (and
the note of a breakdown left out). Concurrent loads of one hour thus settle to one row, the
earliest observation's, with its own shards. Values are converted only by the column types.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, case, delete, insert, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from kalshi_provider.pipelines.settings import DEFAULT_TABLE, MIGRATIONS_AUTO
from kalshi_provider.pipelines.warehouse.errors import InvalidSnapshotError
from kalshi_provider.pipelines.warehouse.locks import sqlite_begin_immediate
from kalshi_provider.pipelines.warehouse.schema import PROBLEM_LENGTH, WarehouseTables
from kalshi_provider.pipelines.warehouse.versioning import ensure_current
from kalshi_provider.readings import (
    BALANCE_ENDPOINT,
    DOLLAR_PRECISION,
    DOLLAR_SCALE,
    TOTAL_ENDPOINT,
    AccountReading,
    ShardAmount,
)

_HOUR = timedelta(hours=1)
#: Columns an earlier observation replaces, per hourly table; ``observed_at`` last (see the
#: module doc on MySQL).
_TOTAL_REPLACED = ("total_resting_order_value_cents", "dag_run_id", "dag_id", "loaded_at", "observed_at")
_BALANCE_REPLACED = (
    "balance_cents",
    "balance_dollars",
    "portfolio_value_cents",
    "balance_updated_ts",
    "dag_run_id",
    "dag_id",
    "loaded_at",
    "total_refusal_reason",
    "breakdown_problem",
    "observed_at",
)
#: The amount column of each per-shard table (the breakdowns), by the table's role.
_TOTAL_SHARD_AMOUNT = "shard_resting_order_value_dollars"
_BALANCE_SHARD_AMOUNT = "shard_balance_dollars"
_ON_CONFLICT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_ON_DUPLICATE_KEY = frozenset({"mysql", "mariadb"})
_ZERO = Decimal(0)
#: A free margin must fit the Numeric(24, 6) columns; beyond that it is unknown (NULL), not rounded.
_MAX_DOLLARS = Decimal(10) ** (DOLLAR_PRECISION - DOLLAR_SCALE)

#: What became of a reading, as its history row says.
HOUR_ROW = "hour_row"  # it is the hour's row (at the load's commit)
EARLIER_KEPT = "earlier_kept"  # the hour holds an earlier observation of the same endpoint
NOT_IN_HOUR = "not_in_hour"  # observed outside the run's hour, or too late: not stored for it
NOT_PERMITTED = "not_permitted"  # Kalshi refused the total: the key's account is no FCM member
LEFT_OUT = "left_out"  # Kalshi's answer was not its documented body: nothing to store
ENDPOINTS = (TOTAL_ENDPOINT, BALANCE_ENDPOINT)


@dataclass(frozen=True)
class StoredHour:
    """What one write left in an hourly table (totals or balance) for its account and hour.

    ``held`` is True when the row holds this load's observation (written now, or by an earlier
    try of the same load); False when an earlier observation of the hour was kept.
    """

    account: str
    snapshot_hour: datetime
    held: bool
    observed_at: datetime
    dag_run_id: str | None


@dataclass(frozen=True)
class StoredReading:
    """What one load left in the warehouse for its account and hour.

    ``total`` and ``balance`` are None when the reading gave nothing to store for the hour (Kalshi
    refused the total, an answer was left out, not read, or observed outside the hour).
    ``newly_not_permitted`` is True when Kalshi refused this reading's total and the account's
    previous reading of it was permitted, or there was none: the load reports that once.
    ``held``, ``observed_at`` and ``dag_run_id`` are the total's, as before the balance existed.
    """

    account: str
    snapshot_hour: datetime
    total: StoredHour | None
    balance: StoredHour | None
    newly_not_permitted: bool = False

    @property
    def held(self) -> bool:
        return self.total is not None and self.total.held

    @property
    def observed_at(self) -> datetime | None:
        return None if self.total is None else self.total.observed_at

    @property
    def dag_run_id(self) -> str | None:
        return None if self.total is None else self.total.dag_run_id


def store_reading(
    engine: Engine,
    reading: AccountReading,
    *,
    snapshot_hour: datetime,
    dag_run_id: str | None,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    portable: bool = False,
    try_number: int | None = None,
    not_in_hour: Mapping[str, str] | None = None,
    dag_id: str | None = None,
    migrations: str = MIGRATIONS_AUTO,
) -> StoredReading:
    """
    Store ``reading`` as its account's rows for ``snapshot_hour``, where no earlier ones are there.

    :param engine: The warehouse.
    :param reading: What the fetch task read; what is stored must have been observed inside the hour.
    :param snapshot_hour: The UTC hour the rows stand for (aware, on the hour).
    :param dag_run_id: The run writing the rows.
    :param table_name: The totals table; the others are named after it (see ``schema.py``).
    :param schema: The tables' schema (database on MySQL), or the connection's default.
    :param portable: Use the portable path even where the dialect has an upsert (tests, and
        proof that the fallback keeps the same promises).
    :param try_number: The load task's try, for the history.
    :param not_in_hour: Endpoints (``readings.TOTAL_ENDPOINT``, ``BALANCE_ENDPOINT``) whose
        readings may not stand for the hour, with the reason: the history records them, nothing else.
    :param dag_id: The DAG writing the rows.
    :param migrations: What to do when the warehouse is behind the code: ``auto`` migrates it,
        ``manual`` raises ``WarehouseMigrationRequired`` (see ``versioning.py``).
    """
    if not isinstance(reading, AccountReading):
        raise InvalidSnapshotError(f"expected an AccountReading, got {type(reading).__name__}")
    hour = _on_the_hour(snapshot_hour)
    for name, value in (("dag_run_id", dag_run_id), ("dag_id", dag_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidSnapshotError(f"{name} must be a string or None, got {type(value).__name__}")
    if try_number is not None and (type(try_number) is not int or try_number < 0):
        raise InvalidSnapshotError("try_number must be a whole number of 0 or more, or None")
    late = dict(not_in_hour or {})
    if set(late) - set(ENDPOINTS):
        raise InvalidSnapshotError(f"not_in_hour names endpoints other than {ENDPOINTS}: {sorted(late)}")
    total_value = None if TOTAL_ENDPOINT in late else reading.resting_order_value
    balance = reading.balance
    balance_value = None if balance is None or BALANCE_ENDPOINT in late else balance.value
    if total_value is not None:
        _check_inside(hour, reading.observed_at)
    if balance_value is not None:
        _check_inside(hour, balance.observed_at)
    tables = ensure_current(engine, table_name=table_name, schema=schema, migrations=migrations)
    now = datetime.now(timezone.utc)
    account = reading.account
    with _write_transaction(engine) as conn:
        newly_not_permitted = reading.not_permitted is not None and _newly_not_permitted(
            conn, tables, reading
        )
        stored_total = stored_balance = None
        if total_value is not None:
            row = {
                "account": account,
                "snapshot_hour": hour,
                "total_resting_order_value_cents": total_value.total_cents,
                "observed_at": reading.observed_at,
                "dag_run_id": dag_run_id,
                "dag_id": dag_id,
                "loaded_at": now,
            }
            stored_total = _keep_earliest(conn, tables.totals, row, _TOTAL_REPLACED, portable)
            if stored_total.held:
                _replace_total_details(conn, tables, reading, hour)
        if balance_value is not None:
            row = {
                "account": account,
                "snapshot_hour": hour,
                "balance_cents": balance_value.balance_cents,
                "balance_dollars": balance_value.balance_dollars,
                "portfolio_value_cents": balance_value.portfolio_value_cents,
                "balance_updated_ts": balance_value.updated_ts,
                "observed_at": balance.observed_at,
                "dag_run_id": dag_run_id,
                "dag_id": dag_id,
                "loaded_at": now,
                "total_refusal_reason": _cut(reading.not_permitted),
                "breakdown_problem": _cut(balance_value.breakdown_problem),
            }
            stored_balance = _keep_earliest(conn, tables.balance, row, _BALANCE_REPLACED, portable)
            if stored_balance.held:
                _replace_shards(
                    conn,
                    tables.balance_shards,
                    _BALANCE_SHARD_AMOUNT,
                    account,
                    hour,
                    balance_value.breakdown,
                    balance.observed_at,
                )
        if any(stored is not None and stored.held for stored in (stored_total, stored_balance)):
            _recompute_free_margin(conn, tables, account, hour)
        history = _history_rows(reading, hour, stored_total, stored_balance, late)
        conn.execute(
            insert(tables.history),
            [
                {**entry, "dag_run_id": dag_run_id, "dag_id": dag_id, "fetch_try_number": reading.try_number}
                | {"load_try_number": try_number, "recorded_at": now, "reading_id": str(uuid.uuid4())}
                for entry in history
            ],
        )
    return StoredReading(account, hour, stored_total, stored_balance, newly_not_permitted)


def aware_utc(value: object, what: str) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused because their zone is a guess."""
    if not isinstance(value, datetime):
        raise InvalidSnapshotError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise InvalidSnapshotError(
            f"{what} must be timezone-aware, got naive {value.isoformat()} (attach tzinfo, e.g. UTC)"
        )
    return value.astimezone(timezone.utc)


def _on_the_hour(snapshot_hour: datetime) -> datetime:
    hour = aware_utc(snapshot_hour, "snapshot_hour")
    if hour != hour.replace(minute=0, second=0, microsecond=0):
        raise InvalidSnapshotError(f"snapshot_hour must be exactly on a UTC hour, got {hour.isoformat()}")
    return hour


def _check_inside(hour: datetime, observed_at: datetime) -> None:
    if not hour <= observed_at < hour + _HOUR:
        raise InvalidSnapshotError(
            f"a reading observed at {observed_at.isoformat()} cannot stand for the hour {hour.isoformat()}"
        )


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:PROBLEM_LENGTH]


# -- writing ---------------------------------------------------------------------------------------


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """Begin a transaction that really is one, also on SQLite; commit, or roll back on any error."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            sqlite_begin_immediate(conn)
        yield conn


def _keep_earliest(
    conn: Connection, table: Table, row: dict[str, Any], replaced: tuple[str, ...], portable: bool
) -> StoredHour:
    """Write ``row`` as the hour's row of ``table`` unless an earlier observation is there."""
    if portable or not _has_upsert(conn):
        refused = _write_portably(conn, table, row, replaced)
    else:
        refused = _upsert(conn, table, row, replaced)
    stored = _locked_row(conn, table, row["account"], row["snapshot_hour"])
    if stored is None:  # the INSERT failed on something other than the key
        raise refused or InvalidSnapshotError(f"the database kept no row of {table.name} for the hour")
    held = stored.observed_at == row["observed_at"]
    return StoredHour(row["account"], row["snapshot_hour"], held, stored.observed_at, stored.dag_run_id)


def _has_upsert(conn: Connection) -> bool:
    return conn.dialect.name in _ON_CONFLICT or conn.dialect.name in _ON_DUPLICATE_KEY


def _upsert(conn: Connection, table: Table, row: dict[str, Any], replaced: tuple[str, ...]) -> None:
    """The dialect's own upsert; the stored row changes only for an earlier observation."""
    name = conn.dialect.name
    if name in _ON_DUPLICATE_KEY:
        statement = mysql.insert(table).values(row)
        new = statement.inserted
        earlier = new.observed_at < table.c.observed_at
        statement = statement.on_duplicate_key_update(
            [(column, case((earlier, new[column]), else_=table.c[column])) for column in replaced]
        )
    else:
        statement = _ON_CONFLICT[name](table).values(row)
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.account, table.c.snapshot_hour],
            set_={column: new[column] for column in replaced},
            where=new.observed_at < table.c.observed_at,
        )
    conn.execute(statement)


def _write_portably(
    conn: Connection, table: Table, row: dict[str, Any], replaced: tuple[str, ...]
) -> IntegrityError | None:
    """INSERT, or on a duplicate key UPDATE if ours is earlier; returns the INSERT's refusal."""
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(row))
        return None
    except IntegrityError as refused:
        conn.execute(
            update(table)
            .where(
                table.c.account == row["account"],
                table.c.snapshot_hour == row["snapshot_hour"],
                table.c.observed_at > row["observed_at"],
            )
            .values({column: row[column] for column in replaced})
        )
        return refused


def _locked_row(conn: Connection, table: Table, account: str, hour: datetime) -> Any:
    """The hour's row as it now stands, locked until commit (SQLite: the write lock already is)."""
    query = (
        select(table.c.observed_at, table.c.dag_run_id)
        .where(table.c.account == account, table.c.snapshot_hour == hour)
        .with_for_update()
    )
    return conn.execute(query).first()


def _replace_total_details(
    conn: Connection, tables: WarehouseTables, reading: AccountReading, hour: datetime
) -> None:
    """The hour's breakdown and left-out note become this reading's; none of an older one linger."""
    value = reading.resting_order_value
    assert value is not None
    account, observed_at = reading.account, reading.observed_at
    _replace_shards(conn, tables.breakdown, _TOTAL_SHARD_AMOUNT, account, hour, value.breakdown, observed_at)
    problems = tables.problems
    conn.execute(
        delete(problems).where(problems.c.account == reading.account, problems.c.snapshot_hour == hour)
    )
    if value.breakdown_problem:
        conn.execute(
            insert(problems).values(
                account=reading.account,
                snapshot_hour=hour,
                observed_at=reading.observed_at,
                breakdown_problem=value.breakdown_problem[:PROBLEM_LENGTH],
            )
        )


def _replace_shards(
    conn: Connection,
    table: Table,
    amount: str,
    account: str,
    hour: datetime,
    shards: tuple[ShardAmount, ...],
    observed_at: datetime,
) -> None:
    """The hour's per-shard rows of ``table`` become ``shards`` (their dollars in column ``amount``)."""
    conn.execute(delete(table).where(table.c.account == account, table.c.snapshot_hour == hour))
    if shards:
        conn.execute(
            insert(table),
            [
                {
                    "account": account,
                    "snapshot_hour": hour,
                    "exchange_index": shard.exchange_index,
                    amount: shard.dollars,
                    "observed_at": observed_at,
                }
                for shard in shards
            ],
        )


def _recompute_free_margin(conn: Connection, tables: WarehouseTables, account: str, hour: datetime) -> None:
    """The hour's free margin per shard, from the balance and the resting orders the hour holds now.

    A shard's free margin is its balance minus the value of its resting orders (this provider's
    figure: Kalshi's docs do not define one). A shard one breakdown lists and the other does not
    counts as 0 in the other only when that breakdown adds up exactly to its total (so it covers
    every shard); otherwise, and when the hour has no resting order value at all (a key without
    FCM access, a total not stored for the hour), the unknown part and the free margin are NULL,
    never a guess. An hour without a balance has no free margin rows.
    """
    margin = tables.free_margin
    conn.execute(delete(margin).where(margin.c.account == account, margin.c.snapshot_hour == hour))
    balance = _hour_row(conn, tables.balance, account, hour)
    if balance is None:
        return
    balances = _shards(conn, tables.balance_shards, _BALANCE_SHARD_AMOUNT, account, hour)
    balances_complete = (
        balance.breakdown_problem is None and sum(balances.values(), _ZERO) == balance.balance_dollars
    )
    total = _hour_row(conn, tables.totals, account, hour)
    resting: dict[int, Decimal] | None = None
    resting_complete = False
    if total is not None:
        resting = _shards(conn, tables.breakdown, _TOTAL_SHARD_AMOUNT, account, hour)
        left_out = _hour_row(conn, tables.problems, account, hour) is not None
        in_dollars = Decimal(total.total_resting_order_value_cents).scaleb(-2)
        resting_complete = not left_out and sum(resting.values(), _ZERO) == in_dollars
    rows = []
    for index in sorted(set(balances) | set(resting or {})):
        shard_balance = balances.get(index, _ZERO if balances_complete else None)
        shard_resting = None if resting is None else resting.get(index, _ZERO if resting_complete else None)
        free = None
        if shard_balance is not None and shard_resting is not None:
            free = shard_balance - shard_resting
            if abs(free) >= _MAX_DOLLARS:
                free = None  # beyond what the column holds exactly: unknown, never rounded
        rows.append(
            {
                "account": account,
                "snapshot_hour": hour,
                "exchange_index": index,
                "shard_balance_dollars": shard_balance,
                "shard_resting_order_value_dollars": shard_resting,
                "shard_free_margin_dollars": free,
            }
        )
    if rows:
        conn.execute(insert(margin), rows)


def _hour_row(conn: Connection, table: Table, account: str, hour: datetime) -> Any:
    return conn.execute(
        select(table).where(table.c.account == account, table.c.snapshot_hour == hour)
    ).first()


def _shards(conn: Connection, table: Table, amount: str, account: str, hour: datetime) -> dict[int, Decimal]:
    query = select(table.c.exchange_index, table.c[amount]).where(
        table.c.account == account, table.c.snapshot_hour == hour
    )
    return {index: dollars for index, dollars in conn.execute(query)}


def _newly_not_permitted(conn: Connection, tables: WarehouseTables, reading: AccountReading) -> bool:
    """Whether the account's previous reading of the total (before this one) was permitted, or
    there was none: the first refusal, or the first after the account had FCM access."""
    history = tables.history
    previous = conn.execute(
        select(history.c.outcome)
        .where(
            history.c.account == reading.account,
            history.c.endpoint == TOTAL_ENDPOINT,
            history.c.observed_at < reading.observed_at,
        )
        .order_by(history.c.observed_at.desc())
        .limit(1)
    ).first()
    return previous is None or previous.outcome != NOT_PERMITTED


def _history_rows(
    reading: AccountReading,
    hour: datetime,
    total: StoredHour | None,
    balance: StoredHour | None,
    late: Mapping[str, str],
) -> list[dict[str, Any]]:
    """One history row per reading the load was given: its values, and what became of it."""
    value = reading.resting_order_value
    if value is None:
        outcome, note, values = NOT_PERMITTED, reading.not_permitted, {"not_permitted": reading.not_permitted}
    else:
        outcome, note = _outcome(total, late.get(TOTAL_ENDPOINT))
        note = note or value.breakdown_problem
        values = {
            "total_cents": value.total_cents,
            "breakdown": [[entry.exchange_index, str(entry.dollars)] for entry in value.breakdown],
            "breakdown_problem": value.breakdown_problem,
        }
    rows = [
        _history_row(reading, TOTAL_ENDPOINT, reading.observed_at, hour, outcome, note, values)
        | {"total_resting_order_value_cents": None if value is None else value.total_cents}
    ]
    if reading.balance is not None:
        found = reading.balance.value
        if found is None:
            outcome, note, values = LEFT_OUT, reading.balance.problem, {"problem": reading.balance.problem}
        else:
            outcome, note = _outcome(balance, late.get(BALANCE_ENDPOINT))
            note = note or found.breakdown_problem
            values = found.to_xcom()
        rows.append(
            _history_row(reading, BALANCE_ENDPOINT, reading.balance.observed_at, hour, outcome, note, values)
            | {
                "balance_cents": None if found is None else found.balance_cents,
                "portfolio_value_cents": None if found is None else found.portfolio_value_cents,
            }
        )
    return rows


def _outcome(stored: StoredHour | None, late: str | None) -> tuple[str, str | None]:
    if late is not None or stored is None:
        return NOT_IN_HOUR, late
    if stored.held:
        return HOUR_ROW, None
    return EARLIER_KEPT, (
        f"the hour holds an earlier observation ({stored.observed_at.isoformat()}, run {stored.dag_run_id})"
    )


def _history_row(
    reading: AccountReading,
    endpoint: str,
    observed_at: datetime,
    hour: datetime,
    outcome: str,
    note: str | None,
    values: dict[str, Any],
) -> dict[str, Any]:
    return {
        "account": reading.account,
        "endpoint": endpoint,
        "source": reading.source,
        "observed_at": observed_at,
        "snapshot_hour": hour,
        "outcome": outcome,
        "became_hour_row": outcome == HOUR_ROW,
        "total_resting_order_value_cents": None,
        "balance_cents": None,
        "portfolio_value_cents": None,
        "reading_json": json.dumps(values, sort_keys=True, separators=(",", ":")),
        "note": _cut(note),
    }
