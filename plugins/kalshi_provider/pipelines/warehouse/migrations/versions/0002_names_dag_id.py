"""Names that say what a column holds, and the DAG that wrote each row.

Renames (every row kept; only the names change):

- ``…_breakdown.balance_dollars`` → ``shard_resting_order_value_dollars``: it is a shard's resting
  order value (the name was Kalshi's JSON field), not a balance;
- ``…_bal_shard.balance_dollars`` → ``shard_balance_dollars`` and ``…_margin``'s three amounts →
  ``shard_balance_dollars``, ``shard_resting_order_value_dollars``, ``shard_free_margin_dollars``:
  one exchange shard's amount, never the account's (``…_balance.balance_dollars``);
- ``…_balance.updated_ts`` → ``balance_updated_ts``: when Kalshi last changed the balance, not when
  the row was updated;
- ``…_balance.total_not_permitted`` → ``total_refusal_reason``: Kalshi's refusal text, not an amount.

Adds ``dag_id`` (NULL for rows written before: 0.2.0 did not record the DAG, and run ids do not
name it) to the totals, ``…_balance`` and ``…_history``.

SQLite gets Alembic's batch mode (the table is copied into its new shape, in the migration's
transaction). MySQL/MariaDB get ``RENAME COLUMN`` (MySQL 8.0, MariaDB 10.5), which keeps each
column's definition as it is, a wider one included; their DDL is not transactional, so every step
first looks whether it is already done and a migration cut short can run again.

Revision ID: 0002_names_dag_id
Revises: 0001_v0_2_0
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

from kalshi_provider.pipelines.warehouse.migrations import deployment

revision = "0002_names_dag_id"
down_revision = "0001_v0_2_0"
branch_labels = None
depends_on = None

#: Per table suffix: (old name, new name).
RENAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "_breakdown": (("balance_dollars", "shard_resting_order_value_dollars"),),
    "_bal_shard": (("balance_dollars", "shard_balance_dollars"),),
    "_margin": (
        ("balance_dollars", "shard_balance_dollars"),
        ("resting_order_value_dollars", "shard_resting_order_value_dollars"),
        ("free_margin_dollars", "shard_free_margin_dollars"),
    ),
    "_balance": (("updated_ts", "balance_updated_ts"), ("total_not_permitted", "total_refusal_reason")),
}
#: Tables that get ``dag_id``.
DAG_ID_SUFFIXES = ("", "_balance", "_history")


def _dag_id_type() -> Any:
    """As the key columns: a binary-collated VARCHAR(250) on MySQL/MariaDB (DAG ids are Airflow's
    ID_LEN and case-sensitive, and a TEXT column cannot be indexed there), TEXT elsewhere."""
    varchar = mysql.VARCHAR(250, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.Text().with_variant(varchar, "mysql").with_variant(varchar, "mariadb")


def upgrade() -> None:
    table, schema = deployment()
    for suffix in dict.fromkeys([*RENAMES, *DAG_ID_SUFFIXES]):
        name = table + suffix
        columns = _columns(name, schema)
        renames = [(old, new) for old, new in RENAMES.get(suffix, ()) if columns is None or old in columns]
        add_dag_id = suffix in DAG_ID_SUFFIXES and (columns is None or "dag_id" not in columns)
        if not renames and not add_dag_id:
            continue  # done by a run that was cut short (MySQL/MariaDB: no transactional DDL)
        if op.get_context().dialect.name in ("mysql", "mariadb"):
            for old, new in renames:
                op.execute(_rename(name, schema, old, new))
            if add_dag_id:
                op.add_column(name, sa.Column("dag_id", _dag_id_type(), nullable=True), schema=schema)
            continue
        with op.batch_alter_table(name, schema=schema) as batch:
            for old, new in renames:
                batch.alter_column(old, new_column_name=new)
            if add_dag_id:
                batch.add_column(sa.Column("dag_id", _dag_id_type(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("not undone: the DAG ids recorded since would be lost")


def _columns(name: str, schema: str | None) -> set[str] | None:
    """The table's columns as they are now; None offline, where the script assumes the baseline."""
    if context.is_offline_mode():
        return None
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns(name, schema=schema)}


def _rename(name: str, schema: str | None, old: str, new: str) -> str:
    """MySQL 8.0 / MariaDB 10.5 keep the column's definition; Alembic would restate its type."""
    return f"ALTER TABLE {_qualified(name, schema)} RENAME COLUMN {_quote(old)} TO {_quote(new)}"


def _quote(identifier: str) -> str:
    return op.get_context().dialect.identifier_preparer.quote(identifier)


def _qualified(name: str, schema: str | None) -> str:
    return f"{_quote(schema)}.{_quote(name)}" if schema else _quote(name)
