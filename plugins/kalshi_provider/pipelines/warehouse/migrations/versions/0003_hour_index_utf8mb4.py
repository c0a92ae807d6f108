"""The chart's time-range index, and on MySQL/MariaDB text that holds all of Unicode exactly.

What tables made since 0.2.0 get when they are created, given to 0.2.0's tables in place:

- an index on ``snapshot_hour`` of the totals, ``…_balance`` and ``…_margin`` (``ixh_total_…``,
  ``ixh_bal_…``, ``ixh_marg_…``): the chart reads a time range of every account, and the primary
  keys lead on the account, so without it such a read scans the whole table;
- MySQL/MariaDB only: every text column of ours, and each table's default, become ``utf8mb4`` with
  ``utf8mb4_bin``. 0.2.0 declared that only for its key columns; the others (the run id, the
  refusal and problem texts, the history's source, outcome, reading and note) took the database's
  default, which on many servers is ``latin1``: a character outside it (a Kalshi message in
  another script, an emoji) fails the load under strict mode, or is stored as ``?`` without it.
  Each column keeps its type (``TEXT`` stays ``TEXT``: ``CONVERT TO CHARACTER SET`` would make a
  ``latin1`` ``TEXT`` a ``MEDIUMTEXT``, unlike the tables created now) and its nullability. MySQL
  copies a table to change its character set: on a large history this takes a while, under the
  migration lock (loads wait for it, then retry).

Each step looks first whether it is done (tables made since 0.2.0 have both), so a migration cut
short on MySQL/MariaDB, whose DDL is not transactional, runs again to the end.

Revision ID: 0003_hour_index_utf8mb4
Revises: 0002_names_dag_id
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import context, op

from kalshi_provider.pipelines.warehouse.migrations import deployment

revision = "0003_hour_index_utf8mb4"
down_revision = "0002_names_dag_id"
branch_labels = None
depends_on = None

#: Per table suffix, its index on snapshot_hour (the prefix goes before the totals table's name).
HOUR_INDEXES = {"": "ixh_total_", "_balance": "ixh_bal_", "_margin": "ixh_marg_"}
#: Per table suffix, its text columns as revision 0002 leaves them (MySQL/MariaDB).
TEXT_COLUMNS = {
    "": ("account", "dag_run_id", "dag_id"),
    "_breakdown": ("account",),
    "_problems": ("account", "breakdown_problem"),
    "_balance": ("account", "dag_run_id", "dag_id", "total_refusal_reason", "breakdown_problem"),
    "_bal_shard": ("account",),
    "_margin": ("account",),
    "_history": (
        "reading_id",
        "account",
        "endpoint",
        "source",
        "outcome",
        "reading_json",
        "note",
        "dag_run_id",
        "dag_id",
    ),
}
CHARSET, COLLATION = "utf8mb4", "utf8mb4_bin"
#: The column types a text column of ours may have (the existing-table check allowed no others).
_TEXT_TYPE = re.compile(r"(tiny|medium|long)?text|varchar\(\d{1,5}\)")


def upgrade() -> None:
    table, schema = deployment()
    for suffix, prefix in HOUR_INDEXES.items():
        name = prefix + table
        if context.is_offline_mode() or name not in _indexes(table + suffix, schema):
            op.create_index(name, table + suffix, ["snapshot_hour"], schema=schema)
    if op.get_context().dialect.name in ("mysql", "mariadb"):
        for suffix, columns in TEXT_COLUMNS.items():
            _utf8mb4_bin(table + suffix, schema, columns)


def downgrade() -> None:
    raise NotImplementedError("not undone: the index and the character set cost nothing to keep")


def _indexes(name: str, schema: str | None) -> set[str]:
    return {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(name, schema=schema)}


def _utf8mb4_bin(name: str, schema: str | None, columns: tuple[str, ...]) -> None:
    """One ``ALTER TABLE`` (one copy of the table) for what is not utf8mb4_bin yet, if anything."""
    if context.is_offline_mode():
        raise NotImplementedError("the character set step reads the catalog: run it online")
    bind = op.get_bind()
    catalog = sa.text(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :name "
        "AND COLUMN_NAME IN :columns"
    ).bindparams(sa.bindparam("columns", expanding=True))
    found = bind.execute(catalog, {"schema": schema, "name": name, "columns": list(columns)}).all()
    default = bind.execute(
        sa.text(
            "SELECT TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :name"
        ),
        {"schema": schema, "name": name},
    ).scalar()
    changes = [] if default == COLLATION else [f"DEFAULT CHARACTER SET {CHARSET} COLLATE {COLLATION}"]
    for column, column_type, nullable, collation in found:
        if collation == COLLATION:
            continue
        if not _TEXT_TYPE.fullmatch(column_type.lower()):
            raise RuntimeError(f"{name}.{column} is {column_type}, not a text type this migration converts")
        null = "NULL" if nullable == "YES" else "NOT NULL"
        encoded = f"CHARACTER SET {CHARSET} COLLATE {COLLATION}"
        changes.append(f"MODIFY {_quote(column)} {column_type.upper()} {encoded} {null}")
    if changes:
        op.execute(f"ALTER TABLE {_qualified(name, schema)} {', '.join(changes)}")


def _quote(identifier: str) -> str:
    return op.get_context().dialect.identifier_preparer.quote(identifier)


def _qualified(name: str, schema: str | None) -> str:
    return f"{_quote(schema)}.{_quote(name)}" if schema else _quote(name)
