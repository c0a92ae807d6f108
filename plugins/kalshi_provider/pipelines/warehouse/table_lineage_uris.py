"""The warehouse tables as Airflow asset URIs, named as OpenLineage's dataset naming spec says.

The load task reports the tables it wrote as hook-level lineage. Each URI uses the scheme whose
provider converts it to an OpenLineage dataset, so the names are the spec's:

- PostgreSQL: ``postgres://{host}:{port}/{database}/{schema}/{table}`` (the postgres provider),
  dataset namespace ``postgres://{host}:{port}``, name ``{database}.{schema}.{table}``;
- MySQL and MariaDB: ``mysql://{host}:{port}/{database}/{table}`` (the mysql provider), namespace
  ``mysql://{host}:{port}``, name ``{database}.{table}``;
- SQLite, which the spec does not name and for which neither the OpenLineage provider nor the
  sqlite provider has a rule: the spec's local file system (namespace ``file``, name the path),
  the database file's absolute path followed by ``.{table}`` as the spec's ``{database}.{table}``
  names a table in a database; the URI ``file://{path}.{table}`` (the common-io provider).

Another dialect has no rule to follow and reports no table. A URI never holds a user name or a
password: only host, port, database, schema and table.
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
