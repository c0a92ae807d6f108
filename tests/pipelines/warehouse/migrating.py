"""What the migration tests share: a warehouse per engine, its rows, and its drift from schema.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import bindparam, create_engine, inspect, select, text
from sqlalchemy.engine import Engine

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import warehouse_tables
from kalshi_provider.pipelines.warehouse.migrations import release_0_2_0

#: What revisions 0002 and 0004 rename, per table suffix (0.2.0's): the promise the tests hold them to.
RENAMED = {
    "_breakdown": {"balance_dollars": "shard_resting_order_value_dollars"},
    "_bal_shard": {"balance_dollars": "shard_balance_dollars"},
    "_margin": {
        "balance_dollars": "shard_balance_dollars",
        "resting_order_value_dollars": "shard_resting_order_value_dollars",
        "free_margin_dollars": "shard_balance_minus_resting_dollars",
    },
    "_balance": {"updated_ts": "balance_updated_ts", "total_not_permitted": "total_refusal_reason"},
}
#: What revision 0004 renames: the table that said "free margin", a figure Kalshi does not define.
TABLES_RENAMED = {"_margin": "_bal_rest"}
#: The tables that record the DAG that wrote each row.
WITH_DAG_ID = ("", "_balance", "_history")
#: The revisions a warehouse 0.2.0 wrote goes through, after it is stamped at the baseline.
AFTER_BASELINE = (
    "0002_names_dag_id",
    "0003_hour_index_utf8mb4",
    "0004_balance_minus_resting",
    "0005_subaccounts",
)
#: Tables 0.2.0 did not have: empty after the migration.
ADDED = ("_subacct",)


@dataclass
class Warehouse:
    """A real database of one engine, and the schema the deployment's tables go to."""

    engine: Engine
    schema: str | None
    table: str = DEFAULT_TABLE

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def names(self) -> dict[str, Any]:
        return {"table_name": self.table, "schema": self.schema}


@pytest.fixture(name="warehouse", params=["sqlite", "postgresql", "mariadb"])
def warehouse_fixture(request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """SQLite (a file); PostgreSQL, the tables in a schema of their own that is not the session's
    default (the ``schema`` param); MariaDB, in the connection's own database (no ``schema``)."""
    if request.param == "sqlite":
        yield Warehouse(request.getfixturevalue("sqlite_engine"), None)
    elif request.param == "postgresql":
        schema = request.getfixturevalue("postgres_schema")
        engine = create_engine(request.getfixturevalue("postgres_url"))
        yield Warehouse(engine, schema)
        engine.dispose()  # before the schema is dropped
    else:
        # The database's default is latin1, as on many older servers: tables 0.2.0 made there have
        # latin1 text columns (only its key columns said utf8mb4), which the migration converts.
        engine = request.getfixturevalue("mariadb_engine")
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci")
        yield Warehouse(engine, None)


def release_tables(warehouse: Warehouse) -> tuple:
    return release_0_2_0.tables(warehouse.table, warehouse.schema)


def rows(engine: Engine, tables: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``tables`` as the column types read it, in primary key order, by table suffix."""
    found = {}
    with engine.connect() as conn:
        for table in tables:
            query = select(table).order_by(*table.primary_key.columns)
            found[table.name] = [dict(row._mapping) for row in conn.execute(query)]
    return found


def renamed(before: dict[str, list[dict[str, Any]]], table: str) -> dict[str, list[dict[str, Any]]]:
    """0.2.0's rows as they must read after the migration: renamed columns, dag_id NULL."""
    expected = {}
    for name, table_rows in before.items():
        suffix = name[len(table) :]
        names = RENAMED.get(suffix, {})
        dag_id = {"dag_id": None} if suffix in WITH_DAG_ID else {}
        expected[table + TABLES_RENAMED.get(suffix, suffix)] = [
            {names.get(key, key): value for key, value in row.items()} | dag_id for row in table_rows
        ]
    for suffix in ADDED:
        expected[table + suffix] = []
    return expected


def drift(warehouse: Warehouse, metadata: Any = None) -> list:
    """How the warehouse's tables differ from ``metadata`` (schema.py's by default): Alembic's
    comparison (tables, columns, types, nullability, indexes) plus the primary keys, which it skips,
    and on MySQL/MariaDB the character set and collation of every text column and table, which it
    does not compare either (schema.py makes them all utf8mb4_bin)."""
    tables = warehouse_tables(warehouse.table, warehouse.schema)
    metadata = metadata if metadata is not None else tables.totals.metadata
    ours = {table.name for table in metadata.tables.values()}

    def include_object(obj: Any, name: str, type_: str, reflected: bool, compare_to: Any) -> bool:
        return type_ != "table" or name in ours  # the version table and other tables aside

    def include_name(name: str, type_: str, parent_names: Any) -> bool:
        return type_ != "schema" or name == warehouse.schema

    with warehouse.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": include_object,
                "include_name": include_name,
                "include_schemas": warehouse.schema is not None,
            },
        )
        found = list(compare_metadata(context, metadata))
        inspector = inspect(conn)
        for table in metadata.tables.values():
            if not inspector.has_table(table.name, schema=warehouse.schema):
                continue  # compare_metadata reports it ("add_table")
            key = inspector.get_pk_constraint(table.name, schema=warehouse.schema)["constrained_columns"]
            if key != [column.name for column in table.primary_key.columns]:
                found.append(("primary key", table.name, key))
        if conn.dialect.name in ("mysql", "mariadb"):
            found += _collations(conn, [table.name for table in metadata.tables.values()])
    return found


def _collations(conn: Any, names: list[str]) -> list:
    """Text columns and tables whose collation is not utf8mb4_bin (utf8mb4's binary collation)."""
    columns = conn.execute(
        text(
            "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names AND COLLATION_NAME IS NOT NULL"
        ).bindparams(bindparam("names", expanding=True)),
        {"names": names},
    ).all()
    tables = conn.execute(
        text(
            "SELECT TABLE_NAME, '', TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names"
        ).bindparams(bindparam("names", expanding=True)),
        {"names": names},
    ).all()
    assert columns and tables  # a table of ``names`` not there yet is compare_metadata's "add_table"
    return [("collation", *found) for found in [*columns, *tables] if found[2] != "utf8mb4_bin"]
