"""
Warehouse for hourly total-resting-order-value snapshots (SQLAlchemy Core 2.x).

``upsert_snapshots`` writes a batch in one transaction and keeps, per account and hour, the row
with the latest observation; ``read_snapshots`` reads them back; ``warehouse_engine`` finds the
database (an Airflow connection, else an embedded SQLite file).
"""

from __future__ import annotations

from kalshi_provider.pipelines.warehouse.engine import embedded_database_path, warehouse_engine
from kalshi_provider.pipelines.warehouse.errors import (
    InvalidIdentifierError,
    InvalidSnapshotError,
    WarehouseConnectionError,
)
from kalshi_provider.pipelines.warehouse.schema import (
    BREAKDOWN_SUFFIX,
    ensure_tables,
    validate_identifier,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse.snapshot import BreakdownEntry, Snapshot
from kalshi_provider.pipelines.warehouse.store import read_snapshots, upsert_snapshots

__all__ = [
    "BREAKDOWN_SUFFIX",
    "BreakdownEntry",
    "InvalidIdentifierError",
    "InvalidSnapshotError",
    "Snapshot",
    "WarehouseConnectionError",
    "embedded_database_path",
    "ensure_tables",
    "read_snapshots",
    "upsert_snapshots",
    "validate_identifier",
    "warehouse_engine",
    "warehouse_tables",
]
