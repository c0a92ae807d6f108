"""Every subaccount's balance: the table ``…_subacct``.

``GET /portfolio/balance`` reads one subaccount (the primary, unless asked): a firm trading through
subaccounts saw only part of its cash. Each hourly run now also reads
``GET /portfolio/subaccounts/balances``, stored per (account, hour, subaccount, exchange shard),
its rows hanging on the hour's balance row as the balance's shards do. Nothing existing changes.

Revision ID: 0005_subaccounts
Revises: 0004_balance_minus_resting
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

from kalshi_provider.pipelines.warehouse.migrations import deployment
from kalshi_provider.pipelines.warehouse.types import EXACT_KEY, ExactDecimal, UTCDateTime

revision = "0005_subaccounts"
down_revision = "0004_balance_minus_resting"
branch_labels = None
depends_on = None

SUFFIX = "_subacct"
#: Every table's defaults on MySQL/MariaDB, as schema.py gives them: utf8mb4, compared byte for byte.
_MYSQL_OPTIONS = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}


def upgrade() -> None:
    table, schema = deployment()
    name = table + SUFFIX
    if not context.is_offline_mode() and sa.inspect(op.get_bind()).has_table(name, schema=schema):
        return  # made by a run cut short (MySQL/MariaDB: no transactional DDL)
    op.create_table(
        name,
        sa.Column("account", _key_text(), nullable=False, info={EXACT_KEY: True}),
        sa.Column("snapshot_hour", UTCDateTime, nullable=False),
        sa.Column("subaccount_number", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("exchange_index", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("balance_dollars", ExactDecimal, nullable=False),
        sa.Column("balance_updated_ts", sa.BigInteger, nullable=False),
        sa.Column("observed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account", "snapshot_hour", "subaccount_number", "exchange_index"),
        schema=schema,
        **_MYSQL_OPTIONS,
    )


def downgrade() -> None:
    raise NotImplementedError("not undone: the subaccount balances recorded since would be lost")


def _key_text() -> sa.types.TypeEngine:
    """As schema.py's key columns: a binary-collated VARCHAR(250) on MySQL/MariaDB, TEXT elsewhere."""
    varchar = mysql.VARCHAR(250, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.Text().with_variant(varchar, "mysql").with_variant(varchar, "mariadb")
