"""Store one account-hour in one transaction, so it is whole or absent: the total with its
breakdown, the balance with its shards and every subaccount's balance (each keeping the earliest
observation inside the hour, :mod:`.hour_rows`), the balance minus resting per shard
(:mod:`.balance_minus_resting`, a derived figure, not Kalshi's) and a history row per reading
(:mod:`.history`). A load whose first write finds the schema behind writes again after bringing
it to the head as ``[kalshi] warehouse_migrations`` allows; one a deadlock rolled back writes again,
once. Why: ``docs/adr/0003-keep-earliest.md``; ``reads.py`` reads the rows back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from kalshi_provider.endpoints import BALANCE_ENDPOINT, SUBACCOUNT_BALANCES_ENDPOINT, TOTAL_ENDPOINT
from kalshi_provider.pipelines.hours import inside_hour, on_the_hour
from kalshi_provider.pipelines.settings import DEFAULT_TABLE, MIGRATIONS_AUTO
from kalshi_provider.pipelines.warehouse import versioning
from kalshi_provider.pipelines.warehouse.balance_minus_resting import Breakdown, balance_minus_resting
from kalshi_provider.pipelines.warehouse.bounds import PROBLEM_LENGTH, refuse_unstorable
from kalshi_provider.pipelines.warehouse.history import (
    Load,
    insert_history,
    newly_not_permitted,
    previous_outcome,
    previous_total_outcome,
)
from kalshi_provider.pipelines.warehouse.hour_rows import (
    INSERTED,
    HourRow,
    StoredHour,
    replace_rows,
    stored_balance,
    stored_resting,
    write_hour_row,
)
from kalshi_provider.pipelines.warehouse.locks import sqlite_begin_immediate
from kalshi_provider.pipelines.warehouse.schema import WarehouseTables, warehouse_tables
from kalshi_provider.pipelines.warehouse.warehouse_errors import InvalidSnapshotError
from kalshi_provider.readings import AccountReading, Balance, RestingOrderValue

__all__ = ["StoredHour", "StoredReading", "store_reading"]
ENDPOINTS = (TOTAL_ENDPOINT, BALANCE_ENDPOINT, SUBACCOUNT_BALANCES_ENDPOINT)
#: Engines' codes for "this transaction was chosen as a deadlock victim and rolled back".
_POSTGRES_DEADLOCK, _MYSQL_DEADLOCK = "40P01", 1213
#: A load writes at most this often: again after catching the schema up, or after a deadlock.
_ATTEMPTS = 3


@dataclass(frozen=True)
class StoredReading:
    """What one load left in the warehouse for its account and hour.

    ``total`` and ``balance`` are None when the reading gave nothing to store for the hour (Kalshi
    refused the total, an answer was left out, not read, or observed outside the hour).
    ``newly_not_permitted`` is True when Kalshi refused this reading's total and the account's
    previous reading of it was permitted, or there was none: the load reports that once.
    ``newly_refused_subaccounts`` likewise for Kalshi's refusal of the subaccounts' list (a key
    restricted to one subaccount). ``held``, ``observed_at`` and ``dag_run_id`` are the total's, as
    before the balance existed.
    """

    account: str
    snapshot_hour: datetime
    total: StoredHour | None
    balance: StoredHour | None
    newly_not_permitted: bool = False
    newly_refused_subaccounts: bool = False

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
    :param portable: Insert the hour's rows in a savepoint whatever the engine (tests, and proof
        that the path of engines without a dialect construct keeps the same promises).
    :param try_number: The load task's try, for the history.
    :param not_in_hour: Endpoints (``readings.TOTAL_ENDPOINT``, ``BALANCE_ENDPOINT``) whose
        readings may not stand for the hour, with the reason: the history records them, nothing else.
    :param dag_id: The DAG writing the rows.
    :param migrations: What to do when the warehouse is behind the code: ``auto`` migrates it,
        ``manual`` raises ``WarehouseMigrationRequired`` (see ``versioning.py``).
    """
    if not isinstance(reading, AccountReading):
        raise InvalidSnapshotError(f"expected an AccountReading, got {type(reading).__name__}")
    hour = on_the_hour(snapshot_hour, "snapshot_hour", InvalidSnapshotError)
    for name, value in (("dag_run_id", dag_run_id), ("dag_id", dag_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidSnapshotError(f"{name} must be a string or None, got {type(value).__name__}")
    if try_number is not None and (type(try_number) is not int or try_number < 0):
        raise InvalidSnapshotError("try_number must be a whole number of 0 or more, or None")
    late = dict(not_in_hour or {})
    if set(late) - set(ENDPOINTS):
        raise InvalidSnapshotError(f"not_in_hour names endpoints other than {ENDPOINTS}: {sorted(late)}")
    refuse_unstorable(reading, dag_id=dag_id, try_number=try_number)
    tables = warehouse_tables(table_name, schema)  # refuses names that are not plain identifiers
    load = _Load(reading, hour, late, tables, versioning.version_table(table_name, schema), portable)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with _write_transaction(engine) as conn:
                return load.write(conn, Load(dag_run_id, dag_id, try_number, datetime.now(timezone.utc)))
        except (versioning.NotAtHead, DBAPIError) as err:
            if attempt == _ATTEMPTS:
                raise _final(err, table_name) from err
            if isinstance(err, DBAPIError) and _deadlock_victim(err):
                continue  # rolled back whole: write again
            behind = versioning.catch_up(engine, table_name=table_name, schema=schema, migrations=migrations)
            if not behind and isinstance(err, DBAPIError):
                raise  # at the head: the error is the database's own, not the schema's
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _final(err: Exception, table_name: str) -> Exception:
    if isinstance(err, versioning.NotAtHead):
        return versioning.WarehouseVersionError(
            f"the version table of {table_name} kept changing while a load wrote ({_ATTEMPTS} tries): "
            "is a migration running over and over? The task's next try writes again."
        )
    return err


class _Load:
    """One reading's rows for one hour, written in a transaction (:meth:`write`)."""

    def __init__(
        self,
        reading: AccountReading,
        hour: datetime,
        late: Mapping[str, str],
        tables: WarehouseTables,
        version: Any,
        portable: bool,
    ) -> None:
        self.reading, self.hour, self.late, self.tables = reading, hour, late, tables
        self.version, self.portable = version, portable
        self.total = None if TOTAL_ENDPOINT in late else reading.resting_order_value
        found = reading.balance
        self.balance = None if found is None or BALANCE_ENDPOINT in late else found.value
        listed = reading.subaccounts
        self.subaccounts = None if listed is None or SUBACCOUNT_BALANCES_ENDPOINT in late else listed.value
        for value, observed_at in (
            (self.total, reading.observed_at),
            (self.balance, found and found.observed_at),
            (self.subaccounts, listed and listed.observed_at),
        ):
            if value is not None and not inside_hour(hour, observed_at):
                raise InvalidSnapshotError(
                    f"a reading observed at {observed_at.isoformat()} cannot stand for the hour "
                    f"{hour.isoformat()} (hours.inside_hour); an answer that is not to be stored for "
                    "the hour goes in not_in_hour, which records it in the history only"
                )

    def write(self, conn: Connection, load: Load) -> StoredReading:
        reading, tables, hour = self.reading, self.tables, self.hour
        at_head = versioning.head_guard(self.version)
        newly = newly_refused = False
        listed = reading.subaccounts
        # Kalshi's refusal of the subaccounts is reported once: asked with the version where the
        # load asks it anyway (a query of its own otherwise, for restricted keys only).
        refused = None
        if listed is not None and listed.not_permitted is not None:
            refused = previous_outcome(
                tables.history, reading.account, SUBACCOUNT_BALANCES_ENDPOINT, listed.observed_at
            )
        if reading.not_permitted is not None or (self.total is None and self.balance is None):
            also = [previous_total_outcome(tables.history, reading)] if reading.not_permitted else []
            found = versioning.confirm_head(
                conn, self.version, *also, *([refused] if refused is not None else [])
            )
            newly = reading.not_permitted is not None and newly_not_permitted(found[1])
            if refused is not None:
                newly_refused = newly_not_permitted(found[-1])
                refused = None
            at_head = None
        stored_total = stored_balance_ = None
        if self.total is not None:
            stored_total = self._hour_row(conn, self._total_row(load), at_head)
            at_head = None
            if stored_total.changed:
                self._write_total_details(conn, fresh=stored_total.state == INSERTED)
        if self.balance is not None:
            stored_balance_ = self._hour_row(conn, self._balance_row(load), at_head)
            at_head = None
            if stored_balance_.changed:
                fresh = stored_balance_.state == INSERTED
                shards = self._shard_rows("shard_balance_dollars", self.balance, reading.balance.observed_at)
                replace_rows(conn, tables.balance_shards, reading.account, hour, shards, fresh=fresh)
                listed = self._subaccount_rows()
                replace_rows(conn, tables.subaccounts, reading.account, hour, listed, fresh=fresh)
        if any(stored is not None and stored.changed for stored in (stored_total, stored_balance_)):
            self._write_balance_minus_resting(conn, stored_total, stored_balance_)
        kept = {
            TOTAL_ENDPOINT: stored_total,
            BALANCE_ENDPOINT: stored_balance_,
            # The subaccounts hang on the hour's balance row: kept with it, or not at all.
            SUBACCOUNT_BALANCES_ENDPOINT: stored_balance_ if self._storable_subaccounts() else None,
        }
        if refused is not None:  # before this reading's own history row goes in
            newly_refused = newly_not_permitted(conn.execute(select(refused)).scalar())
        insert_history(conn, tables.history, reading, hour, kept, self.late, load)
        return StoredReading(reading.account, hour, stored_total, stored_balance_, newly, newly_refused)

    def _hour_row(self, conn: Connection, hour_row: HourRow, at_head: Any) -> StoredHour:
        """The first hourly write of a load is conditioned on the head (``at_head``); if it inserts
        nothing, the version is asked before anything else is read or written."""
        confirm = None if at_head is None else lambda: versioning.confirm_head(conn, self.version)
        return write_hour_row(conn, hour_row, at_head=at_head, confirm_head=confirm, portable=self.portable)

    def _total_row(self, load: Load) -> HourRow:
        assert self.total is not None
        row = {
            "account": self.reading.account,
            "snapshot_hour": self.hour,
            "total_resting_order_value_cents": self.total.total_cents,
            "observed_at": self.reading.observed_at,
            "dag_run_id": load.dag_run_id,
            "dag_id": load.dag_id,
            "loaded_at": load.recorded_at,
        }
        return HourRow(self.tables.totals, row, (self.tables.breakdown, self.tables.problems))

    def _balance_row(self, load: Load) -> HourRow:
        value, reading = self.balance, self.reading
        assert value is not None and reading.balance is not None
        row = {
            "account": reading.account,
            "snapshot_hour": self.hour,
            "balance_cents": value.balance_cents,
            "balance_dollars": value.balance_dollars,
            "portfolio_value_cents": value.portfolio_value_cents,
            "balance_updated_ts": value.updated_ts,
            "observed_at": reading.balance.observed_at,
            "dag_run_id": load.dag_run_id,
            "dag_id": load.dag_id,
            "loaded_at": load.recorded_at,
            "total_refusal_reason": _cut(reading.not_permitted),
            "breakdown_problem": _cut(value.breakdown_problem),
        }
        dependents = (self.tables.balance_shards, self.tables.balance_minus_resting, self.tables.subaccounts)
        return HourRow(self.tables.balance, row, dependents)

    def _storable_subaccounts(self) -> bool:
        """The subaccounts go with the balance of the same fetch, shard by shard: an answer without
        ``exchange_index`` (Kalshi's before 2026-07) is recorded in the history only."""
        return self.subaccounts is not None and all(
            row.exchange_index is not None for row in self.subaccounts.rows
        )

    def _subaccount_rows(self) -> list[dict[str, Any]]:
        if not self._storable_subaccounts():
            return []
        assert self.subaccounts is not None and self.reading.subaccounts is not None
        observed_at = self.reading.subaccounts.observed_at
        return [
            {
                "account": self.reading.account,
                "snapshot_hour": self.hour,
                "subaccount_number": row.subaccount_number,
                "exchange_index": row.exchange_index,
                "balance_dollars": row.balance_dollars,
                "balance_updated_ts": row.updated_ts,
                "observed_at": observed_at,
            }
            for row in self.subaccounts.rows
        ]

    def _shard_rows(self, amount: str, value: Any, observed_at: datetime) -> list[dict[str, Any]]:
        return [
            {
                "account": self.reading.account,
                "snapshot_hour": self.hour,
                "exchange_index": shard.exchange_index,
                amount: shard.dollars,
                "observed_at": observed_at,
            }
            for shard in value.breakdown
        ]

    def _write_total_details(self, conn: Connection, *, fresh: bool) -> None:
        """The hour's breakdown and left-out note become this reading's; none of an older one linger."""
        value, reading, tables = self.total, self.reading, self.tables
        assert value is not None
        shards = self._shard_rows("shard_resting_order_value_dollars", value, reading.observed_at)
        replace_rows(conn, tables.breakdown, reading.account, self.hour, shards, fresh=fresh)
        problems = []
        if value.breakdown_problem:
            problems.append(
                {
                    "account": reading.account,
                    "snapshot_hour": self.hour,
                    "observed_at": reading.observed_at,
                    "breakdown_problem": _cut(value.breakdown_problem),
                }
            )
        replace_rows(conn, tables.problems, reading.account, self.hour, problems, fresh=fresh)

    def _write_balance_minus_resting(
        self, conn: Connection, total: StoredHour | None, balance: StoredHour | None
    ) -> None:
        """Per shard, the hour's balance minus resting order value from what it holds now: the
        reading where the load holds the hour's row, the rows of the hour where it keeps an earlier
        observation (read only then)."""
        account, hour = self.reading.account, self.hour
        if balance is not None and balance.held:
            balance_side: Breakdown | None = _balance_breakdown(self.balance)
        else:
            balance_side = stored_balance(conn, self.tables, account, hour)
        if balance_side is None:
            return  # no balance in the hour: no rows (and none was there to take away)
        if total is not None and total.held:
            resting_side: Breakdown | None = _resting_breakdown(self.total)
        else:
            resting_side = stored_resting(conn, self.tables, account, hour)
        rows = [
            {"account": account, "snapshot_hour": hour, **asdict(shard)}
            for shard in balance_minus_resting(balance_side, resting_side)
        ]
        fresh = balance is not None and balance.state == INSERTED  # no rows of it before it
        replace_rows(conn, self.tables.balance_minus_resting, account, hour, rows, fresh=fresh)


def _balance_breakdown(value: Balance | None) -> Breakdown:
    assert value is not None
    shards = {shard.exchange_index: shard.dollars for shard in value.breakdown}
    return Breakdown(value.balance_dollars, shards, left_out=value.breakdown_problem is not None)


def _resting_breakdown(value: RestingOrderValue | None) -> Breakdown:
    assert value is not None
    shards = {shard.exchange_index: shard.dollars for shard in value.breakdown}
    return Breakdown(
        Decimal(value.total_cents).scaleb(-2), shards, left_out=value.breakdown_problem is not None
    )


def _deadlock_victim(err: BaseException) -> bool:
    """Whether the engine rolled the transaction back as a deadlock's victim; also when that error
    surfaced as another (MySQL: rolling back to a savepoint the deadlock already undid)."""
    seen: BaseException | None = err
    while seen is not None:
        orig = getattr(seen, "orig", None)
        if (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) == _POSTGRES_DEADLOCK:
            return True
        args = getattr(orig, "args", ())
        if args and args[0] == _MYSQL_DEADLOCK:
            return True
        seen = seen.__context__
    return False


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """Begin a transaction that really is one, also on SQLite; commit, or roll back on any error."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            sqlite_begin_immediate(conn)
        yield conn


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:PROBLEM_LENGTH]
