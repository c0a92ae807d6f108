"""The warehouse's tables as release 0.2.0 created them: frozen, never to change.

0.2.0 kept no schema version: its tables are recognised by their shape. This module is what the
baseline revision creates, and what tables found without a version row are checked against
before they are stamped at the baseline and migrated. It hard-codes every name, type, length and
key instead of importing ``schema.py``, which follows the head. The column types come from
``types.py`` (how a value is stored; changing their DDL would be a migration of its own).
"""

from __future__ import annotations

from typing import Any

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

from kalshi_provider.pipelines.warehouse.types import EXACT_KEY, ExactDecimal, UTCDateTime

#: The suffixes 0.2.0 named its tables with, in the order of ``tables()``.
SUFFIXES = ("", "_breakdown", "_problems", "_balance", "_bal_shard", "_margin", "_history")


def _key_text() -> TypeEngine[Any]:
    varchar = mysql.VARCHAR(250, charset="utf8mb4", collation="utf8mb4_bin")
    return Text().with_variant(varchar, "mysql").with_variant(varchar, "mariadb")


def _key(name: str) -> Column:
    """A key column: its text must compare byte for byte (``types.EXACT_KEY``; no change to the DDL)."""
    return Column(name, _key_text(), nullable=False, info={EXACT_KEY: True})


def _text(name: str, length: int, **kwargs: Any) -> Column:
    kind: TypeEngine[Any] = Text()
    if length > 65535 // 4:
        medium = mysql.MEDIUMTEXT()
        kind = Text().with_variant(medium, "mysql").with_variant(medium, "mariadb")
    return Column(name, kind, info={"max_length": length}, **kwargs)


def _per_shard(name: str, metadata: MetaData) -> Table:
    return Table(
        name,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("exchange_index", Integer, nullable=False, autoincrement=False),
        Column("balance_dollars", ExactDecimal, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour", "exchange_index"),
    )


def tables(table: str, schema: str | None) -> tuple[Table, ...]:
    """0.2.0's seven tables for the deployment named ``table`` (already a checked identifier)."""
    metadata = MetaData(schema=schema)
    totals = Table(
        table,
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("total_resting_order_value_cents", BigInteger, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        Column("dag_run_id", Text, nullable=True),
        Column("loaded_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour"),
    )
    problems = Table(
        table + "_problems",
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        _text("breakdown_problem", 1000, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour"),
    )
    balance = Table(
        table + "_balance",
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("balance_cents", BigInteger, nullable=False),
        Column("balance_dollars", ExactDecimal, nullable=False),
        Column("portfolio_value_cents", BigInteger, nullable=False),
        Column("updated_ts", BigInteger, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        Column("dag_run_id", Text, nullable=True),
        Column("loaded_at", UTCDateTime, nullable=False),
        _text("total_not_permitted", 1000, nullable=True),
        _text("breakdown_problem", 1000, nullable=True),
        PrimaryKeyConstraint("account", "snapshot_hour"),
    )
    margin = Table(
        table + "_margin",
        metadata,
        _key("account"),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("exchange_index", Integer, nullable=False, autoincrement=False),
        Column("balance_dollars", ExactDecimal, nullable=True),
        Column("resting_order_value_dollars", ExactDecimal, nullable=True),
        Column("free_margin_dollars", ExactDecimal, nullable=True),
        PrimaryKeyConstraint("account", "snapshot_hour", "exchange_index"),
    )
    history_name = table + "_history"
    history = Table(
        history_name,
        metadata,
        _key("reading_id"),
        _key("account"),
        _key("endpoint"),
        _text("source", 2048, nullable=True),
        Column("observed_at", UTCDateTime, nullable=False),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        _text("outcome", 250, nullable=False),
        Column("became_hour_row", Boolean(create_constraint=False), nullable=False),
        Column("total_resting_order_value_cents", BigInteger, nullable=True),
        Column("balance_cents", BigInteger, nullable=True),
        Column("portfolio_value_cents", BigInteger, nullable=True),
        _text("reading_json", 1024 * 1024, nullable=False),
        _text("note", 1000, nullable=True),
        Column("dag_run_id", Text, nullable=True),
        Column("fetch_try_number", Integer, nullable=True, autoincrement=False),
        Column("load_try_number", Integer, nullable=True, autoincrement=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("reading_id"),
        Index(f"ix_{history_name}"[:63], "account", "endpoint", "observed_at"),
    )
    return (
        totals,
        _per_shard(table + "_breakdown", metadata),
        problems,
        balance,
        _per_shard(table + "_bal_shard", metadata),
        margin,
        history,
    )
