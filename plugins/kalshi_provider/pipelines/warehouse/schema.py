"""Table definitions and the column types that make every dialect store the same values.

SQLite has neither time zones nor exact decimals: SQLAlchemy's ``DateTime`` is naive there and a
``NUMERIC`` column silently turns ``'0.1'`` into a float. The two ``TypeDecorator`` classes below
store UTC / fixed-point text on SQLite and give back aware UTC datetimes and ``Decimal`` values,
so callers and tests see identical results on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator, TypeEngine

from kalshi_provider.pipelines.settings import DEFAULT_TABLE, IDENTIFIER, IDENTIFIER_RULE
from kalshi_provider.pipelines.warehouse.errors import InvalidIdentifierError

BREAKDOWN_SUFFIX = "_breakdown"


#: Scale of ``balance_dollars``: Numeric(24, 6).
BALANCE_PRECISION = 24
BALANCE_SCALE = 6
BALANCE_QUANTUM = Decimal(1).scaleb(-BALANCE_SCALE)

#: Dialects whose timestamp type has no zone: we store naive UTC there.
_NAIVE_TIMESTAMP_DIALECTS = frozenset({"sqlite", "mysql", "mariadb"})


def validate_identifier(value: object, what: str) -> str:
    """Return ``value`` if it is a plain identifier; names are never quoted from untrusted text."""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise InvalidIdentifierError(
            f"{what} {value!r} is not a plain SQL identifier: it must match {IDENTIFIER_RULE} "
            "(a letter or underscore, then at most 62 letters, digits or underscores)"
        )
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """``timestamp with time zone`` that accepts only aware datetimes and returns them in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValueError(f"timestamps must be timezone-aware datetimes, got {value!r}")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name in _NAIVE_TIMESTAMP_DIALECTS else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class ExactDecimal(TypeDecorator[Decimal]):
    """Numeric(24, 6) that never passes through a float; fixed-point text on SQLite."""

    impl = Numeric(BALANCE_PRECISION, BALANCE_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # A NUMERIC column would coerce the text to REAL; a VARCHAR keeps every digit.
            return dialect.type_descriptor(String(BALANCE_PRECISION + 2))
        return dialect.type_descriptor(Numeric(BALANCE_PRECISION, BALANCE_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise ValueError(f"balance must be a Decimal, got {value!r}")
        value = value.quantize(BALANCE_QUANTUM)
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value) if isinstance(value, float) else value).quantize(BALANCE_QUANTUM)


@lru_cache(maxsize=64)
def warehouse_tables(table_name: str = DEFAULT_TABLE, schema: str | None = None) -> tuple[Table, Table]:
    """Return the (totals, breakdown) tables, refusing names that are not plain identifiers."""
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
        Column("account", Text, nullable=False),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("total_resting_order_value_cents", BigInteger, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        Column("dag_run_id", Text, nullable=True),
        Column("loaded_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour"),
    )
    breakdown = Table(
        breakdown_name,
        metadata,
        Column("account", Text, nullable=False),
        Column("snapshot_hour", UTCDateTime, nullable=False),
        Column("exchange_index", Integer, nullable=False, autoincrement=False),
        Column("balance_dollars", ExactDecimal, nullable=False),
        Column("observed_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("account", "snapshot_hour", "exchange_index"),
    )
    return totals, breakdown


def ensure_tables(
    engine: Engine, *, table_name: str = DEFAULT_TABLE, schema: str | None = None
) -> tuple[Table, Table]:
    """Create both tables when absent; safe when two loaders race to create them."""
    totals, breakdown = warehouse_tables(table_name, schema)
    try:
        totals.metadata.create_all(engine, checkfirst=True)
    except DBAPIError:
        # Another loader may have created a table between our check and our CREATE: check again.
        totals.metadata.create_all(engine, checkfirst=True)
    return totals, breakdown
