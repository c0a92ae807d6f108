"""Before the first write: create the tables that are missing, check the ones that exist.

A table made beforehand is used only if it holds every value exactly (no zone-less timestamps,
rounding numerics or floats; a primary key; key text compared byte for byte, no fixed-length text),
else a :class:`WarehouseSchemaError` names the table, the column and the fix. Tables that forget
(SQLite ``temp``, PostgreSQL temporary or ``UNLOGGED``) raise :class:`VolatileWarehouseError`, in
the transaction that creates the missing ones. Why each rule: README, "The warehouse".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    CHAR,
    NCHAR,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    inspect,
)
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse.bounds import DOLLAR_PRECISION, DOLLAR_SCALE, ID_LENGTH
from kalshi_provider.pipelines.warehouse.catalog import TableFacts, table_facts
from kalshi_provider.pipelines.warehouse.schema import (
    EXACT_KEY,
    ExactDecimal,
    UTCDateTime,
    WarehouseTables,
    key_columns,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse.warehouse_errors import VolatileWarehouseError, WarehouseSchemaError

_INTEGER_DIGITS = DOLLAR_PRECISION - DOLLAR_SCALE


def prepare_tables(
    engine: Engine, *, table_name: str = DEFAULT_TABLE, schema: str | None = None
) -> WarehouseTables:
    """Create the missing tables and check the existing ones; return the tables to write to.

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    """
    tables = warehouse_tables(table_name, schema)
    for attempt in range(2):
        try:
            with engine.begin() as conn:
                _prepare(conn, tables, schema)
            return tables
        except _CreateRaced as raced:
            if attempt:
                raise raced.error from None
            # Another loader created a table between our look and our CREATE: look again.
    return tables  # pragma: no cover - the loop returns or raises


class _CreateRaced(Exception):
    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _prepare(conn: Connection, tables: WarehouseTables, schema: str | None) -> None:
    """Refuse, then create what is missing, in one transaction (PostgreSQL takes a refused
    creation back; MySQL commits DDL at once, so everything is refused before anything is made)."""
    refuse_forgetful_schema(conn, schema)
    found = _reflect(conn, tables, schema)
    check_existing(conn, tables, found, schema)
    missing = [table for table in tables if table.name not in found]
    if not missing:
        return
    try:
        tables.totals.metadata.create_all(conn, tables=missing, checkfirst=False)
    except DBAPIError as err:
        raise _CreateRaced(err) from err
    refuse_forgetful_created(conn, missing, schema)


def check_existing(
    conn: Connection, tables: Sequence[Table], found: dict[str, _Found], schema: str | None
) -> None:
    """Refuse the existing ones among ``tables`` (``found``, as reflected) unless each outlives its
    session and holds ``tables``' values exactly, its key columns comparing byte for byte.

    Used before the first write (``prepare_tables``) and before tables found without a version row
    are recorded at a release (``versioning.py``), against that release's definitions.
    """
    existing = [table for table in tables if table.name in found]
    keys = {
        table.name: [c for c in key_columns(table) if c in found[table.name].columns] for table in existing
    }
    for name, facts in table_facts(conn, existing, keys).items():
        found[name].facts = facts
    _refuse_forgetful({table.name: found[table.name].facts for table in existing}, schema)
    _refuse_mismatches(tables, found, conn.dialect, schema)


def refuse_forgetful_created(conn: Connection, created: Sequence[Table], schema: str | None) -> None:
    """After creating ``created``: PostgreSQL puts them where the ``search_path`` says, which may be
    ``pg_temp``; refused there, in the creating transaction, so they are never kept."""
    if conn.dialect.name == "postgresql" and created:
        _refuse_forgetful(table_facts(conn, created, {}), schema)


def refuse_forgetful_schema(conn: Connection, schema: str | None) -> None:
    """SQLite's ``temp`` schema, and any database of the connection held in memory, is private to
    one connection and gone when it closes (``PRAGMA database_list`` shows no file for it)."""
    if conn.dialect.name != "sqlite":
        return
    target = (schema or "main").lower()
    files = {row[1].lower(): row[2] for row in conn.exec_driver_sql("PRAGMA database_list")}
    if target == "temp" or files.get(target) == "":
        if target == "temp":
            what = f"the schema {schema!r} is SQLite's temporary database"
        else:
            what = f"the SQLite database{f' of schema {schema!r}' if schema else ''} is held in memory"
        raise VolatileWarehouseError(
            f"Nothing was written: {what}, private to one connection and deleted when it closes, so "
            "every row would be lost and no later run or chart would see it. Leave 'schema' empty to "
            "use the connection's database file, or give the connection the absolute path of one."
        )


def _refuse_forgetful(facts: dict[str, TableFacts], schema: str | None) -> None:
    """PostgreSQL: a temporary table (schema ``pg_temp``/``pg_temp_N``, or a ``search_path`` that
    starts there) is dropped when the session ends; an ``UNLOGGED`` one is emptied after a crash."""
    problems = [
        f"{found.namespace}.{table} is "
        + (
            "a temporary table: PostgreSQL drops it when the session ends"
            if found.persistence == "t"
            else "UNLOGGED: PostgreSQL empties it after a crash (ALTER TABLE ... SET LOGGED keeps it)"
        )
        for table, found in facts.items()
        if found.persistence != "p"
    ]
    if problems:
        where = f"the schema {schema!r}" if schema else "the connection's search_path"
        raise VolatileWarehouseError(
            "Nothing was written: the warehouse tables would forget their rows:\n- "
            + "\n- ".join(sorted(problems))
            + f"\nThey are where {where} puts them. Use a permanent schema (never pg_temp) and "
            "logged tables."
        )


class _Found:
    """One existing table as reflected: its columns by name, its primary key columns, and what the
    catalog says beyond reflection (``facts``)."""

    def __init__(self, columns: Sequence[dict[str, Any]], primary_key: Iterable[str]) -> None:
        self.columns = {column["name"]: column for column in columns}
        self.primary_key = set(primary_key)
        self.facts = TableFacts()


def _reflect(conn: Connection, tables: Sequence[Table], schema: str | None) -> dict[str, _Found]:
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
    tables: Sequence[Table], found: dict[str, _Found], dialect: Dialect, schema: str | None
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
            elif _fixed_length(column, reflected["type"], dialect):
                problems.append(
                    f"{where}.{column.name} is {_render(reflected['type'], dialect)}, a fixed-length "
                    "type: PostgreSQL reads 'fcm_a' back padded with spaces and MySQL drops trailing "
                    f"spaces, so text would not come back as written: it needs {_wanted(column, dialect)}"
                )
            elif column.name in existing.facts.inexact:
                problems.append(
                    f"{where}.{column.name} compares text with {existing.facts.inexact[column.name]}, "
                    "which finds different text equal, so one account's rows could take another's "
                    f"place: it needs {_exact_collation(where, column.name, dialect)}"
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


def _fixed_length(column: Any, found: TypeEngine[Any], dialect: Dialect) -> bool:
    """A text column of ours stored as ``CHAR``/``NCHAR``; SQLite ignores the length and pads nothing."""
    return dialect.name != "sqlite" and isinstance(column.type, String) and isinstance(found, (CHAR, NCHAR))


def _exact_collation(where: str, column: str, dialect: Dialect) -> str:
    if dialect.name == "postgresql":
        return (
            f'a deterministic collation, e.g. ALTER TABLE {where} ALTER COLUMN {column} TYPE text COLLATE "C"'
        )
    if dialect.name in ("mysql", "mariadb"):
        return (
            f"a binary collation, e.g. ALTER TABLE {where} MODIFY {column} VARCHAR({ID_LENGTH}) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        )
    if dialect.name == "sqlite":
        return "SQLite's default BINARY collation (recreate the table without the COLLATE clause)"
    return "a binary collation"


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
    if dialect.name in ("mysql", "mariadb") and column.info.get(EXACT_KEY):
        return f"VARCHAR({ID_LENGTH}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    return f"a variable-length text type (TEXT, or VARCHAR of at least {_text_length(column)} characters)"


def _render(found: TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(found.compile(dialect=dialect))
    except Exception:  # noqa: BLE001 - an unknown reflected type (NullType) has no SQL of its own
        return type(found).__name__


# -- for the migrations (versioning.py): tables found without a version row -----------------------


def reflect_tables(conn: Connection, tables: Sequence[Table], schema: str | None) -> dict[str, _Found]:
    """The existing ones among ``tables`` (any release's ``Table`` objects), reflected: ``.columns``
    by name, ``.primary_key``; :func:`check_existing` then adds what the catalog says."""
    return _reflect(conn, tables, schema)
