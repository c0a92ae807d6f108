"""The warehouse tables as Airflow asset URIs, named as OpenLineage's dataset naming spec says.

The load reports the tables it wrote as hook-level lineage, each under the scheme whose provider
converts it: ``postgres://``, ``mysql://``, and for SQLite, which the spec does not name, the local
file system's ``file://{path}.{table}`` (common-io). Another dialect reports no table. A URI holds
host, port, database, schema and table only, never a user name or password. Names per engine:
README, "Lineage".
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Table, text
from sqlalchemy.engine import Engine


def warehouse_asset_uris(engine: Engine, tables: Iterable[Table], schema: str | None) -> list[str]:
    """The asset URI of each table in ``tables`` (written by ``engine``), or none for a dialect
    without a naming rule. On PostgreSQL without a schema this asks the server for its current one."""
    url = engine.url
    dialect = engine.dialect.name
    names = [table.name for table in tables]
    if dialect == "postgresql":
        in_schema = schema or _current_schema(engine)
        where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}/{in_schema}"
        return [f"postgres://{where}/{name}" for name in names]
    if dialect in ("mysql", "mariadb"):
        where = f"{url.host or 'localhost'}:{url.port or 3306}/{schema or url.database}"
        return [f"mysql://{where}/{name}" for name in names]
    if dialect == "sqlite" and url.database and url.database != ":memory:":
        from pathlib import Path

        database = Path(url.database).resolve()
        prefix = f"{database}.{schema}" if schema and schema != "main" else str(database)
        return [f"file://{prefix}.{name}" for name in names]
    return []


def _current_schema(engine: Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT current_schema()")).scalar_one()
