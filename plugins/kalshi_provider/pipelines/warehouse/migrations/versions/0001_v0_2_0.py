"""Baseline: the seven tables of release 0.2.0, as it created them.

A warehouse that 0.2.0 wrote has these tables and no version row: it is checked against them and
stamped here, never created again. This revision creates them only where a warehouse is built
from the migrations alone (the migration tests, an offline script from nothing).

Revision ID: 0001_v0_2_0
Revises: (none)
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

from kalshi_provider.pipelines.warehouse.migrations import deployment, release_0_2_0

revision = "0001_v0_2_0"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in release_0_2_0.tables(*deployment()):
        op.execute(CreateTable(table))
        for index in table.indexes:
            op.execute(CreateIndex(index))


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: its tables hold the rows; drop them yourself")
