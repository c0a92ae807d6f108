"""Before the first write: create the tables that are missing, check the ones that exist.

A table someone made beforehand is used only if it holds every value exactly: a ``timestamp
without time zone`` shifts hours by the session's zone, ``numeric(10,0)`` rounds cents of dollars
away, ``double precision`` loses digits beyond 2**53, and without the primary key an hour could
get two rows. Such a table is refused with a :class:`WarehouseSchemaError` (permanent: the task
fails at once) naming the table, the column, what it is and what to do.

Reflection costs one catalog query per kind (columns, primary keys) with SQLAlchemy 2's
``get_multi_*``; SQLAlchemy 1.4 has only per-table reflection, used as the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, Numeric, SmallInteger, String, inspect
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse.errors import WarehouseSchemaError
from kalshi_provider.pipelines.warehouse.schema import (
    ID_LENGTH,
    ExactDecimal,
    UTCDateTime,
    WarehouseTables,
    warehouse_tables,
)
from kalshi_provider.readings import DOLLAR_PRECISION, DOLLAR_SCALE

_INTEGER_DIGITS = DOLLAR_PRECISION - DOLLAR_SCALE


def prepare_tables(
    engine: Engine, *, table_name: str = DEFAULT_TABLE, schema: str | None = None
) -> WarehouseTables:
    """Create the missing tables and check the existing ones; return the tables to write to."""
    tables = warehouse_tables(table_name, schema)
    for attempt in range(2):
        with engine.connect() as conn:
            found = _reflect(conn, tables, schema)
        missing = [table for table in tables if table.name not in found]
        _refuse_mismatches(tables, found, engine.dialect, schema)
        if not missing:
            return tables
        try:
            tables.totals.metadata.create_all(engine, tables=missing, checkfirst=False)
            return tables
        except DBAPIError:
            if attempt:
                raise
            # Another loader created a table between our look and our CREATE: look again.
    return tables  # pragma: no cover - the loop returns or raises


class _Found:
    """One existing table as reflected: its columns by name and its primary key columns."""

    def __init__(self, columns: Sequence[dict[str, Any]], primary_key: Iterable[str]) -> None:
        self.columns = {column["name"]: column for column in columns}
        self.primary_key = set(primary_key)


def _reflect(conn: Connection, tables: WarehouseTables, schema: str | None) -> dict[str, _Found]:
    """The existing ones among ``tables``: one query per kind on SQLAlchemy 2, per table on 1.4."""
    inspector = inspect(conn)
    names = [table.name for table in tables]
    if hasattr(inspector, "get_multi_columns"):
        reflected = inspector.get_multi_columns(schema=schema, filter_names=names)
        columns = {key[1]: value for key, value in reflected.items()}
        if not columns:
            return {}
        keys = inspector.get_multi_pk_constraint(schema=schema, filter_names=list(columns))
        primary = {key[1]: value.get("constrained_columns") or [] for key, value in keys.items()}
        return {name: _Found(cols, primary.get(name, [])) for name, cols in columns.items()}
    existing = set(inspector.get_table_names(schema=schema)) & set(names)
    return {
        name: _Found(
            inspector.get_columns(name, schema=schema),
            inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or [],
        )
        for name in existing
    }


def _refuse_mismatches(
    tables: WarehouseTables, found: dict[str, _Found], dialect: Dialect, schema: str | None
) -> None:
    problems: list[str] = []
    for table in tables:
        existing = found.get(table.name)
        if existing is None:
            continue
        where = f"{schema}.{table.name}" if schema else table.name
        for column in table.columns:
            reflected = existing.columns.get(column.name)
            if reflected is None:
                problems.append(f"{where} has no column {column.name} ({_wanted(column, dialect)})")
                continue
            if not _holds(column, reflected["type"], dialect):
                problems.append(
                    f"{where}.{column.name} is {_render(reflected['type'], dialect)}, which cannot hold "
                    f"its values exactly: it needs {_wanted(column, dialect)}"
                )
        for name, reflected in existing.columns.items():
            if name not in table.columns and _required(reflected):
                problems.append(
                    f"{where}.{name} is not one of ours and is NOT NULL without a default, "
                    "so every insert would fail: give it a default or allow NULL"
                )
        wanted_key = [column.name for column in table.primary_key.columns]
        if existing.primary_key != set(wanted_key):
            have = ", ".join(sorted(existing.primary_key)) or "none"
            problems.append(
                f"{where} has primary key ({have}); it needs PRIMARY KEY ({', '.join(wanted_key)}), "
                "which is what keeps one row per key"
            )
    if problems:
        raise WarehouseSchemaError(
            "An existing warehouse table has another shape than the Kalshi rows need, so nothing "
            "was written:\n- "
            + "\n- ".join(problems)
            + "\nChange those columns, or set the DAG's 'table' param (or [kalshi] table) to a name "
            "not in use: missing tables are created with the right shape."
        )


def _holds(column: Any, found: TypeEngine[Any], dialect: Dialect) -> bool:
    """Whether a column of type ``found`` holds every value of our ``column`` exactly."""
    ours = column.type
    name = dialect.name
    if name == "sqlite":
        return _sqlite_holds(ours, found, dialect)
    if isinstance(ours, UTCDateTime):
        return _timestamp_holds(found, name)
    if isinstance(ours, ExactDecimal):
        return _exact_decimal(found)
    if isinstance(ours, Boolean):
        return isinstance(found, (Boolean, Integer))  # MySQL's BOOL is TINYINT(1)
    if isinstance(ours, BigInteger):
        return isinstance(found, BigInteger)
    if isinstance(ours, Integer):
        return isinstance(found, Integer) and not isinstance(found, SmallInteger) and _at_least_32_bits(found)
    if name in ("mysql", "mariadb") and _text_length(column) > _MYSQL_TEXT_CHARACTERS:
        return type(found).__name__ in ("MEDIUMTEXT", "LONGTEXT")  # TEXT ends at 64 KiB
    return isinstance(found, String) and _long_enough(found, _text_length(column))


def _sqlite_holds(ours: TypeEngine[Any], found: TypeEngine[Any], dialect: Dialect) -> bool:
    """SQLite stores by a column's affinity, named by its declared type (sqlite.org/datatype3)."""
    declared = _render(found, dialect).upper()
    if isinstance(ours, UTCDateTime):
        return isinstance(found, DateTime)  # SQLAlchemy's ISO text, microseconds included
    if isinstance(ours, ExactDecimal):
        return any(word in declared for word in ("CHAR", "CLOB", "TEXT"))  # TEXT affinity
    if isinstance(ours, Boolean):
        return "INT" in declared or "BOOL" in declared  # SQLite stores 0 and 1
    if isinstance(ours, Integer):
        return "INT" in declared  # INTEGER affinity: up to 8 bytes, whatever the name says
    return isinstance(found, String) or any(word in declared for word in ("CHAR", "CLOB", "TEXT"))


def _timestamp_holds(found: TypeEngine[Any], dialect_name: str) -> bool:
    if not isinstance(found, DateTime):
        return False
    fractional_digits = getattr(found, "precision", None)
    if dialect_name in ("mysql", "mariadb"):
        # DATETIME(6) only: TIMESTAMP converts through the session's zone and ends in 2038.
        return type(found).__name__ == "DATETIME" and (getattr(found, "fsp", None) or 0) >= 6
    if dialect_name == "postgresql":
        return bool(found.timezone) and (fractional_digits is None or fractional_digits >= 6)
    return True  # another dialect: reflection does not say enough to judge more


def _exact_decimal(found: TypeEngine[Any]) -> bool:
    if not isinstance(found, Numeric) or isinstance(found, Float):
        return False
    precision, scale = found.precision, found.scale
    if precision is None and scale is None:
        return True  # PostgreSQL's unconstrained numeric: exact at any size
    return scale is not None and scale >= DOLLAR_SCALE and (precision or 0) - scale >= _INTEGER_DIGITS


def _at_least_32_bits(found: TypeEngine[Any]) -> bool:
    return type(found).__name__ not in ("TINYINT", "MEDIUMINT")  # MySQL's 8- and 24-bit integers


def _long_enough(found: TypeEngine[Any], needed: int) -> bool:
    length = getattr(found, "length", None)
    return length is None or length >= needed


#: What MySQL's TEXT holds, in utf8mb4 characters (65535 bytes, up to 4 a character).
_MYSQL_TEXT_CHARACTERS = 65535 // 4


def _text_length(column: Any) -> int:
    """The longest text a column of ours holds (schema.py says it in ``info``; keys: ID_LENGTH)."""
    return column.info.get("max_length", ID_LENGTH)


def _required(reflected: dict[str, Any]) -> bool:
    """A column an INSERT of ours would leave empty, and that refuses to be empty."""
    return not (
        reflected.get("nullable", True)
        or reflected.get("default") is not None
        or reflected.get("identity")
        or reflected.get("computed")
        or reflected.get("autoincrement") is True
    )


def _wanted(column: Any, dialect: Dialect) -> str:
    ours = column.type
    if isinstance(ours, UTCDateTime):
        return {
            "postgresql": "TIMESTAMP WITH TIME ZONE (timestamptz)",
            "mysql": "DATETIME(6), holding UTC",
            "mariadb": "DATETIME(6), holding UTC",
            "sqlite": "DATETIME",
        }.get(dialect.name, "a timestamp type")
    if isinstance(ours, ExactDecimal):
        if dialect.name == "sqlite":
            return f"VARCHAR({DOLLAR_PRECISION + 2}) (TEXT affinity: SQLite's NUMERIC is a float)"
        return f"NUMERIC({DOLLAR_PRECISION}, {DOLLAR_SCALE}) or wider, an exact decimal"
    if isinstance(ours, Boolean):
        return "BOOLEAN (or an integer type holding 0 and 1)"
    if isinstance(ours, BigInteger):
        return "BIGINT (64-bit integer)"
    if isinstance(ours, Integer):
        return "INTEGER or BIGINT"
    if dialect.name in ("mysql", "mariadb") and _text_length(column) > _MYSQL_TEXT_CHARACTERS:
        return "MEDIUMTEXT or LONGTEXT"
    return f"a text type of at least {_text_length(column)} characters"


def _render(found: TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(found.compile(dialect=dialect))
    except Exception:  # noqa: BLE001 - an unknown reflected type (NullType) has no SQL of its own
        return type(found).__name__


# -- for the migrations (versioning.py): tables found without a version row -----------------------


def reflect_tables(conn: Connection, tables: Sequence[Any], schema: str | None) -> dict[str, _Found]:
    """The existing ones among ``tables`` (any ``Table`` objects), reflected: ``.columns`` by name."""
    return _reflect(conn, tables, schema)  # type: ignore[arg-type]


def refuse_foreign_tables(
    tables: Sequence[Any], found: dict[str, _Found], dialect: Dialect, schema: str | None
) -> None:
    """Raise :class:`WarehouseSchemaError` unless every table in ``found`` holds ``tables``' values
    exactly: the check ``prepare_tables`` makes, against any release's table definitions."""
    _refuse_mismatches(tables, found, dialect, schema)  # type: ignore[arg-type]
