"""The column types that make every dialect store the same values: the only place values are
converted on their way to and from the database.

SQLite has neither time zones nor exact decimals and MySQL/MariaDB keep no zone (nor microseconds
outside ``DATETIME(6)``), so these store naive UTC / fixed-point text where they must and give back
aware UTC and ``Decimal`` everywhere (SQLAlchemy 1.4-compatible). Part of the stored schema
(``schema.py``, ``migrations/``): a change to their DDL is a schema change and needs a migration.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from kalshi_provider.pipelines.warehouse.bounds import DOLLAR_PRECISION, DOLLAR_QUANTUM, DOLLAR_SCALE
from kalshi_provider.timestamps import aware_utc

#: ``Column.info`` flag of the key columns: the text that finds a row (every primary-key text
#: column, the history's ``account`` and ``endpoint``, which the load selects an account's previous
#: reading by, and ``dag_id``, which the chart filters on). They must compare byte for byte: a
#: case-insensitive collation makes ``FCM_A`` and ``fcm_a`` one account, and a fixed-length type
#: pads ``fcm_a``. Here, not in ``schema.py``: past releases' frozen tables mark their keys too.
EXACT_KEY = "exact_key"

_MYSQL = frozenset({"mysql", "mariadb"})
#: Dialects whose timestamp type has no zone: we store naive UTC there.
_NAIVE_TIMESTAMP_DIALECTS = frozenset({"sqlite"}) | _MYSQL


class UTCDateTime(TypeDecorator):
    """``timestamp with time zone`` that accepts only aware datetimes and returns them in UTC.

    MySQL/MariaDB get ``DATETIME(6)`` holding naive UTC: their ``TIMESTAMP`` converts through the
    session's time zone and ends in 2038, and a plain ``DATETIME`` drops the microseconds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = aware_utc(value, "a timestamp")
        return value.replace(tzinfo=None) if dialect.name in _NAIVE_TIMESTAMP_DIALECTS else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class ExactDecimal(TypeDecorator):
    """Numeric(24, 6) that never passes through a float and never rounds; fixed-point text on SQLite."""

    impl = Numeric(DOLLAR_PRECISION, DOLLAR_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # A NUMERIC column would coerce the text to REAL; a VARCHAR keeps every digit.
            return dialect.type_descriptor(String(DOLLAR_PRECISION + 2))
        return dialect.type_descriptor(Numeric(DOLLAR_PRECISION, DOLLAR_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise ValueError(f"amounts must be Decimal, got {type(value).__name__}")
        quantized = value.quantize(DOLLAR_QUANTUM)
        if quantized != value:
            raise ValueError(f"{value} has more than {DOLLAR_SCALE} decimal places: refused, not rounded")
        return format(quantized, "f") if dialect.name == "sqlite" else quantized

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value) if isinstance(value, float) else value).quantize(DOLLAR_QUANTUM)
