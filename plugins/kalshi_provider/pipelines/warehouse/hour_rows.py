"""An hour's rows under the keep-earliest rule: an hour keeps the earliest observation made inside it.

A new hour's row goes in with one ``INSERT ... SELECT ... WHERE`` per table; a present row is told
apart per engine (``ON CONFLICT DO NOTHING``, MySQL's duplicate-key error, or a savepoint when
``portable``), and only then is the hour read, locked and replaced by an earlier observation, with
every row that hangs on it (breakdowns, the balance minus resting, the subaccounts). Why this way:
``docs/adr/0003-keep-earliest.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, delete, exists, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from kalshi_provider.pipelines.warehouse.balance_minus_resting import Breakdown
from kalshi_provider.pipelines.warehouse.schema import WarehouseTables

#: What a load's write did to an hourly table's row.
INSERTED = "inserted"  # the hour had no row: this load's went in
REPLACED = "replaced"  # the hour held a later observation: this load's took its place
SAME = "same"  # the hour holds this very observation (an earlier try of the load wrote it)
KEPT = "kept"  # the hour holds an earlier observation: it stays

_KEY = ("account", "snapshot_hour")
_ON_CONFLICT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
#: Engines where a duplicate-key error undoes only the statement that raised it, not the transaction.
_STATEMENT_UNDONE = frozenset({"mysql", "mariadb"})


@dataclass(frozen=True)
class StoredHour:
    """What one write left in an hourly table (totals or balance) for its account and hour.

    ``held`` is True when the row holds this load's observation (written now, or by an earlier
    try of the same load); False when an earlier observation of the hour was kept. ``state`` says
    which (``inserted``, ``replaced``, ``same`` or ``kept``).
    """

    account: str
    snapshot_hour: datetime
    observed_at: datetime
    dag_run_id: str | None
    state: str

    @property
    def held(self) -> bool:
        return self.state != KEPT

    @property
    def changed(self) -> bool:
        """Whether this load wrote the row (so what derives from it must be derived again)."""
        return self.state in (INSERTED, REPLACED)


@dataclass(frozen=True)
class HourRow:
    """One hourly table's share of a load: its row for the hour, and the tables whose rows of the
    hour hang on it (replaced whenever it is)."""

    table: Table
    row: dict[str, Any]
    dependents: Sequence[Table]


def write_hour_row(
    conn: Connection,
    hour_row: HourRow,
    *,
    at_head: ColumnElement[bool] | None,
    confirm_head: Callable[[], None] | None,
    portable: bool,
) -> StoredHour:
    """Write ``hour_row`` unless the hour holds an earlier observation; say what the hour holds.

    :param at_head: The condition that the warehouse is at the schema's head, for a load's first
        write; None once the load has made sure.
    :param confirm_head: Makes sure of it when that first write inserted nothing (it raises if not).
    :param portable: The INSERT in a savepoint, whatever the engine.
    """
    table, row = hour_row.table, hour_row.row
    ours = row["observed_at"]
    key = and_(*(table.c[name] == row[name] for name in _KEY))
    conditions = [
        ~exists().where(*(other.c[name] == row[name] for name in _KEY)) for other in hour_row.dependents
    ]
    if at_head is not None:
        conditions.append(at_head)
    if _insert_unless_present(conn, table, row, and_(*conditions), portable):
        return _stored(row, ours, row["dag_run_id"], INSERTED)
    if confirm_head is not None:
        confirm_head()  # nothing is read or written until the tables are known to be the head's
    found = conn.execute(select(table.c.observed_at, table.c.dag_run_id).where(key).with_for_update()).first()
    if found is None:  # rows of the hour without their hour row (deleted by hand): replaced below
        conn.execute(insert(table).values(row))
        return _stored(row, ours, row["dag_run_id"], REPLACED)
    if found.observed_at > ours:
        replaced = {name: value for name, value in row.items() if name not in _KEY}
        conn.execute(update(table).where(key, table.c.observed_at > ours).values(replaced))
        return _stored(row, ours, row["dag_run_id"], REPLACED)
    return _stored(row, found.observed_at, found.dag_run_id, SAME if found.observed_at == ours else KEPT)


def _stored(row: dict[str, Any], observed_at: datetime, dag_run_id: str | None, state: str) -> StoredHour:
    return StoredHour(row["account"], row["snapshot_hour"], observed_at, dag_run_id, state)


def _insert_unless_present(
    conn: Connection, table: Table, row: dict[str, Any], where: ColumnElement[bool], portable: bool
) -> bool:
    """``INSERT INTO table SELECT <row> WHERE <where>``; whether the row went in (False when the
    hour already has one, or ``where`` did not hold)."""
    columns = [table.c[name] for name in row]
    source = select(*(literal(row[column.name], column.type) for column in columns)).where(where)
    dialect = conn.dialect.name
    if not portable and dialect in _ON_CONFLICT:
        keys = [table.c[name] for name in _KEY]
        statement = (
            _ON_CONFLICT[dialect](table)
            .from_select(columns, source)
            .on_conflict_do_nothing(index_elements=keys)
        )
        return _inserted(conn, statement)
    statement = insert(table).from_select(columns, source)
    try:
        if not portable and dialect in _STATEMENT_UNDONE:
            return _inserted(conn, statement)
        with conn.begin_nested():
            return _inserted(conn, statement)
    except IntegrityError:  # the hour's row is there (or the row is refused: the rest finds out)
        return False


def _inserted(conn: Connection, statement: Any) -> bool:
    return conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount == 1


def replace_rows(
    conn: Connection, table: Table, account: str, hour: datetime, rows: list[dict[str, Any]], *, fresh: bool
) -> None:
    """The hour's rows of ``table`` become ``rows``; with ``fresh`` there are none to take away
    (their hour row went in just now, on the condition that it had no such rows)."""
    if not fresh:
        conn.execute(delete(table).where(table.c.account == account, table.c.snapshot_hour == hour))
    insert_rows(conn, table, rows)


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``rows`` in one statement where the engine has multi-row VALUES (one round trip, and one
    statement on SQLite, where executemany runs one a row)."""
    if not rows:
        return
    if conn.dialect.supports_multivalues_insert:
        conn.execute(insert(table).values(rows))
    else:
        conn.execute(insert(table), rows)


def stored_resting(
    conn: Connection, tables: WarehouseTables, account: str, hour: datetime
) -> Breakdown | None:
    """The total resting order value the hour keeps, with its split per shard, or None: one query."""
    totals, problems, breakdown = tables.totals, tables.problems, tables.breakdown
    query = (
        select(
            totals.c.total_resting_order_value_cents,
            problems.c.breakdown_problem,
            breakdown.c.exchange_index,
            breakdown.c.shard_resting_order_value_dollars,
        )
        .select_from(
            totals.outerjoin(problems, _same_hour(problems, totals)).outerjoin(
                breakdown, _same_hour(breakdown, totals)
            )
        )
        .where(totals.c.account == account, totals.c.snapshot_hour == hour)
    )
    found = conn.execute(query).all()
    if not found:
        return None
    shards = {
        row.exchange_index: row.shard_resting_order_value_dollars
        for row in found
        if row.exchange_index is not None
    }
    cents, problem = found[0][0], found[0][1]
    return Breakdown(Decimal(cents).scaleb(-2), shards, left_out=problem is not None)


def stored_balance(
    conn: Connection, tables: WarehouseTables, account: str, hour: datetime
) -> Breakdown | None:
    """The balance the hour keeps, with its split per shard, or None: one query."""
    balance, shards_table = tables.balance, tables.balance_shards
    query = (
        select(
            balance.c.balance_dollars,
            balance.c.breakdown_problem,
            shards_table.c.exchange_index,
            shards_table.c.shard_balance_dollars,
        )
        .select_from(balance.outerjoin(shards_table, _same_hour(shards_table, balance)))
        .where(balance.c.account == account, balance.c.snapshot_hour == hour)
    )
    found = conn.execute(query).all()
    if not found:
        return None
    shards = {
        row.exchange_index: row.shard_balance_dollars for row in found if row.exchange_index is not None
    }
    return Breakdown(found[0][0], shards, left_out=found[0][1] is not None)


def _same_hour(rows: Table, of: Table) -> ColumnElement[bool]:
    return and_(rows.c.account == of.c.account, rows.c.snapshot_hour == of.c.snapshot_hour)
