"""A derived figure named for what it computes: ``…_margin`` becomes ``…_bal_rest``.

Kalshi defines no "free margin" (``docs/tables.md`` quotes its words): its ``balance`` is the
"available balance", which may already leave out what resting orders hold. The table and its
column said "free margin" of a difference this provider computes; now they say what it is:

- the table ``…_margin`` → ``…_bal_rest`` (each shard's balance beside its resting order value);
- its column ``shard_free_margin_dollars`` → ``shard_balance_minus_resting_dollars``;
- its time-range index ``ixh_marg_…`` → ``ixh_brest_…``.

Every row is kept; only names change (the index is built again under its new name). MySQL/MariaDB
commit each DDL statement, so every step first looks whether it is done, and a migration cut short
runs again to the end.

Revision ID: 0004_balance_minus_resting
Revises: 0003_hour_index_utf8mb4
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from kalshi_provider.pipelines.warehouse.migrations import deployment

revision = "0004_balance_minus_resting"
down_revision = "0003_hour_index_utf8mb4"
branch_labels = None
depends_on = None

OLD_SUFFIX, NEW_SUFFIX = "_margin", "_bal_rest"
OLD_COLUMN, NEW_COLUMN = "shard_free_margin_dollars", "shard_balance_minus_resting_dollars"
OLD_INDEX_PREFIX, NEW_INDEX_PREFIX = "ixh_marg_", "ixh_brest_"


def upgrade() -> None:
    table, schema = deployment()
    old, new = table + OLD_SUFFIX, table + NEW_SUFFIX
    offline = context.is_offline_mode()
    names = set() if offline else set(sa.inspect(op.get_bind()).get_table_names(schema=schema))
    if offline or (old in names and new not in names):
        op.rename_table(old, new, schema=schema)
    elif old in names:
        raise RuntimeError(
            f"both {old} and {new} exist: a table of ours is there twice. Compare them, keep the one "
            f"the loads wrote to (the newer rows), drop the other, then migrate again"
        )
    inspector = None if offline else sa.inspect(op.get_bind())
    columns = None if inspector is None else {c["name"] for c in inspector.get_columns(new, schema=schema)}
    if columns is None or OLD_COLUMN in columns:
        rename = f"RENAME COLUMN {_quote(OLD_COLUMN)} TO {_quote(NEW_COLUMN)}"
        op.execute(f"ALTER TABLE {_qualified(new, schema)} {rename}")
    indexes = None if inspector is None else {i["name"] for i in inspector.get_indexes(new, schema=schema)}
    if indexes is None or OLD_INDEX_PREFIX + table in indexes:
        op.drop_index(OLD_INDEX_PREFIX + table, table_name=new, schema=schema)
    if indexes is None or NEW_INDEX_PREFIX + table not in indexes:
        op.create_index(NEW_INDEX_PREFIX + table, new, ["snapshot_hour"], schema=schema)


def downgrade() -> None:
    raise NotImplementedError("not undone: the old names said what Kalshi does not say")


def _quote(identifier: str) -> str:
    return op.get_context().dialect.identifier_preparer.quote(identifier)


def _qualified(name: str, schema: str | None) -> str:
    return f"{_quote(schema)}.{_quote(name)}" if schema else _quote(name)
