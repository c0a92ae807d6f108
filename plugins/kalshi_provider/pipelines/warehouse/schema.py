"""Table definitions: the warehouse schema the code writes, at the migrations' head.

The column types (``UTCDateTime``, ``ExactDecimal``) live in ``types.py``. A change here is a
schema change: it needs a migration (``migrations/versions/``), and the migration tests fail until
the warehouse a migration reaches equals these definitions.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

from kalshi_provider.pipelines.settings import DEFAULT_TABLE, IDENTIFIER, IDENTIFIER_RULE
from kalshi_provider.pipelines.warehouse.bounds import (
    ID_LENGTH,
    PROBLEM_LENGTH,
    READING_JSON_LENGTH,
    SOURCE_LENGTH,
)
from kalshi_provider.pipelines.warehouse.types import EXACT_KEY, ExactDecimal, UTCDateTime
from kalshi_provider.pipelines.warehouse.warehouse_errors import InvalidIdentifierError

BREAKDOWN_SUFFIX = "_breakdown"
#: The side table naming hours whose breakdown was left out. It and the tables below have
#: suffixes no longer than BREAKDOWN_SUFFIX, so every table name accepted before they existed is
#: still accepted (a name plus its longest suffix must stay a 63-character identifier).
PROBLEMS_SUFFIX = "_problems"
#: The hour's balance (GET /portfolio/balance), one row per account and hour like the totals.
BALANCE_SUFFIX = "_balance"
#: The hour's balance per exchange shard (Kalshi's balance_breakdown).
BALANCE_SHARD_SUFFIX = "_bal_shard"
#: Per hour and exchange shard: the shard's balance minus the value of its resting orders, a figure
#: this provider derives (``balance_minus_resting.py``). Kalshi publishes no such figure and
#: defines no "free margin": its ``balance`` is already the "available balance", which may exclude
#: what resting orders hold (docs/tables.md). Named for what it computes, not for what it may mean.
BALANCE_MINUS_RESTING_SUFFIX = "_bal_rest"
#: Every subaccount's balance per shard (GET /portfolio/subaccounts/balances), per account and hour.
SUBACCOUNTS_SUFFIX = "_subacct"
#: Every reading the pipeline took, append-only.
HISTORY_SUFFIX = "_history"

#: Prefixes of the indexes leading on ``snapshot_hour`` of the tables the chart reads by time range:
#: at most 10 characters before a totals table's name (at most 53, see BREAKDOWN_SUFFIX), so each
#: name is a 63-character identifier, unique in its schema and never cut.
HOUR_INDEX_PREFIXES = {"totals": "ixh_total_", "balance": "ixh_bal_", "balance_minus_resting": "ixh_brest_"}


def validate_identifier(value: object, what: str) -> str:
    """Return ``value`` if it is a plain identifier; names are never quoted from untrusted text.

    :param value: The name to check (a table or schema name, from a param or a setting).
    :param what: What the name is, for the error message (e.g. ``"table"``).
    """
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise InvalidIdentifierError(
            f"{what} {value!r} is not a plain SQL identifier: it must match {IDENTIFIER_RULE} "
            "(a letter or underscore, then at most 62 letters, digits or underscores)"
        )
    return value


def _key_text() -> TypeEngine[Any]:
    """Text in a primary key: MySQL/MariaDB cannot index TEXT, and compare case-insensitively
    unless told otherwise, so there it is a binary-collated VARCHAR."""
    varchar = mysql.VARCHAR(ID_LENGTH, charset="utf8mb4", collation="utf8mb4_bin")
    return Text().with_variant(varchar, "mysql").with_variant(varchar, "mariadb")  # one name a call: 1.4


def _key(name: str) -> Column:
    """A key column (see ``EXACT_KEY``)."""
    return Column(name, _key_text(), nullable=False, info={EXACT_KEY: True})


def key_columns(table: Table) -> list[str]:
    """The names of ``table``'s key columns, which must compare byte for byte."""
    return [column.name for column in table.columns if column.info.get(EXACT_KEY)]


#: Every table's defaults on MySQL/MariaDB: utf8mb4 (all of Unicode; a server's default may be
#: latin1) compared byte for byte (servers default to case-insensitive collations), so no text
#: column of ours depends on the server's or the database's defaults.
_MYSQL_TABLE_OPTIONS = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}


def _long_text(length: int) -> TypeEngine[Any]:
    """Text of up to ``length`` characters: MEDIUMTEXT on MySQL/MariaDB beyond TEXT's 64 KiB."""
    if length <= 65535 // 4:  # TEXT holds 65535 bytes, 4 bytes a character in utf8mb4
        return Text()
    medium = mysql.MEDIUMTEXT()
    return Text().with_variant(medium, "mysql").with_variant(medium, "mariadb")


def _text(name: str, length: int, **kwargs: Any) -> Column:
    """A text column whose longest value the existing-table check knows (``info["max_length"]``)."""
    return Column(name, _long_text(length), info={"max_length": length}, **kwargs)


class WarehouseTables(NamedTuple):
    """The tables of one deployment, all named after its totals table.

    ``totals``, ``breakdown`` and ``problems``: the hourly total resting order value, its split per
    shard, and the hours whose split was left out. ``balance`` and ``balance_shards``: the hourly
    balance and its split per shard. ``balance_minus_resting``: per hour and shard, the balance
    minus the value of the resting orders (derived, not Kalshi's), written at load time.
    ``history``: every reading taken. ``subaccounts``: every subaccount's balance per shard,
    hanging on the hour's balance row.
    """

    totals: Table
    breakdown: Table
    problems: Table
    balance: Table
    balance_shards: Table
    balance_minus_resting: Table
    history: Table
    subaccounts: Table


def _per_shard_table(name: str, metadata: MetaData, amount: str) -> Table:
    """One exact dollar amount, the column ``amount``, per (account, hour, exchange shard): the
    shape Kalshi's two breakdowns (of the resting order value and of the balance) share."""
    return Table(
        name,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("exchange_index", Integer, nullable=False, autoincrement=False),
        Column(amount, ExactDecimal, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour", "exchange_index"),
        **_MYSQL_TABLE_OPTIONS,
    )


def _hour_index(kind: str, table_name: str) -> Index:
    """The index a time-range read of all accounts (the chart's) searches: the primary keys lead on
    the account, so without it such a read scans the whole table, however old."""
    return Index(HOUR_INDEX_PREFIXES[kind] + table_name, "snapshot_hour")


@lru_cache(maxsize=64)
def warehouse_tables(table_name: str = DEFAULT_TABLE, schema: str | None = None) -> WarehouseTables:
    """Return the tables for ``table_name``, refusing names that are not plain identifiers."""
    validate_identifier(table_name, "table name")
    breakdown_name = validate_identifier(
        table_name + BREAKDOWN_SUFFIX, f"breakdown table name (table name + {BREAKDOWN_SUFFIX!r})"
    )
    if schema is not None:
        validate_identifier(schema, "schema")
    metadata = MetaData(schema=schema)
    totals = Table(
        table_name,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("total_resting_order_value_cents", BigInteger, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        Column("dag_run_id", Text, nullable=True),
        # The DAG that wrote the row; NULL in rows written by 0.2.0, which did not record it.
        Column("dag_id", _key_text(), nullable=True, info={EXACT_KEY: True}),
        Column("loaded_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour"),
        _hour_index("totals", table_name),
        **_MYSQL_TABLE_OPTIONS,
    )
    breakdown = _per_shard_table(breakdown_name, metadata, "shard_resting_order_value_dollars")
    problems = Table(
        table_name + PROBLEMS_SUFFIX,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        _text("breakdown_problem", PROBLEM_LENGTH, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour"),
        **_MYSQL_TABLE_OPTIONS,
    )
    balance = Table(
        table_name + BALANCE_SUFFIX,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("balance_cents", BigInteger, nullable=False),
        Column("balance_dollars", ExactDecimal, nullable=False),
        Column("portfolio_value_cents", BigInteger, nullable=False),
        # Kalshi's updated_ts: when Kalshi last changed the balance (Unix seconds).
        Column("balance_updated_ts", BigInteger, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        Column("dag_run_id", Text, nullable=True),
        Column("dag_id", _key_text(), nullable=True, info={EXACT_KEY: True}),
        Column("loaded_at", UTCDateTime, nullable=False),
        # Kalshi's refusal of the total in the same fetch (the key's account is no FCM member).
        _text("total_refusal_reason", PROBLEM_LENGTH, nullable=True),
        # Why Kalshi's balance_breakdown was left out of this hour (the balance is kept).
        _text("breakdown_problem", PROBLEM_LENGTH, nullable=True),
        PrimaryKeyConstraint("account", "snapshot_hour"),
        _hour_index("balance", table_name),
        **_MYSQL_TABLE_OPTIONS,
    )
    balance_shards = _per_shard_table(table_name + BALANCE_SHARD_SUFFIX, metadata, "shard_balance_dollars")
    balance_minus_resting = Table(
        table_name + BALANCE_MINUS_RESTING_SUFFIX,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("exchange_index", Integer, nullable=False, autoincrement=False),
        # NULL where unknown: a shard missing from a breakdown that does not add up to its total,
        # or no resting order value at all (a key without FCM access, an hour without a total).
        Column("shard_balance_dollars", ExactDecimal, nullable=True),
        Column("shard_resting_order_value_dollars", ExactDecimal, nullable=True),
        # shard_balance_dollars - shard_resting_order_value_dollars, and no more than that: Kalshi's
        # balance is the "available balance", so this may count the resting orders twice.
        Column("shard_balance_minus_resting_dollars", ExactDecimal, nullable=True),
        PrimaryKeyConstraint("account", "snapshot_hour", "exchange_index"),
        _hour_index("balance_minus_resting", table_name),
        **_MYSQL_TABLE_OPTIONS,
    )
    subaccounts = Table(
        table_name + SUBACCOUNTS_SUFFIX,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("subaccount_number", Integer, nullable=False, autoincrement=False),
        Column("exchange_index", Integer, nullable=False, autoincrement=False),
        # Kalshi's balance of the subaccount on the shard, a fixed-point dollar string, exactly.
        Column("balance_dollars", ExactDecimal, nullable=False),
        # Kalshi's updated_ts of the row: when that balance last changed (Unix seconds).
        Column("balance_updated_ts", BigInteger, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour", "subaccount_number", "exchange_index"),
        **_MYSQL_TABLE_OPTIONS,
    )
    history_name = table_name + HISTORY_SUFFIX
    history = Table(
        history_name,
        metadata,
        _key("reading_id"),
        _key("account"),
        _key("endpoint"),
        # The base URL the answer came from (the Kalshi host, or the simulator's).
        _text("source", SOURCE_LENGTH, nullable=True),
        Column("observed_at", UTCDateTime, nullable=False),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        _text("outcome", ID_LENGTH, nullable=False),
        Column("became_hour_row", Boolean(create_constraint=False), nullable=False),
        Column("total_resting_order_value_cents", BigInteger, nullable=True),
        Column("balance_cents", BigInteger, nullable=True),
        Column("portfolio_value_cents", BigInteger, nullable=True),
        _text("reading_json", READING_JSON_LENGTH, nullable=False),
        _text("note", PROBLEM_LENGTH, nullable=True),
        Column("dag_run_id", Text, nullable=True),
        Column("dag_id", _key_text(), nullable=True, info={EXACT_KEY: True}),
        Column("fetch_try_number", Integer, nullable=True, autoincrement=False),
        Column("load_try_number", Integer, nullable=True, autoincrement=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("reading_id"),
        # What the load asks (an account's latest earlier reading of the total) and audits filter on.
        Index(f"ix_{history_name}"[:63], "account", "endpoint", "observed_at"),
        **_MYSQL_TABLE_OPTIONS,
    )
    return WarehouseTables(
        totals, breakdown, problems, balance, balance_shards, balance_minus_resting, history, subaccounts
    )
