"""
Warehouse for hourly total-resting-order-value snapshots (SQLAlchemy Core 2.x).

``upsert_snapshots`` writes a batch in one transaction and keeps, per account and hour, the row
with the latest observation; ``read_snapshots`` reads them back; ``warehouse_engine`` finds the
database (an Airflow connection, else an embedded SQLite file).
"""

from __future__ import annotations

from kalshi_provider.warehouse.engine import (
    DEFAULT_CONN_ID,
    embedded_database_path,
    warehouse_engine,
)
from kalshi_provider.warehouse.errors import (
    InvalidIdentifierError,
    InvalidSnapshotError,
    WarehouseConnectionError,
)
from kalshi_provider.warehouse.schema import (
    BREAKDOWN_SUFFIX,
    DEFAULT_TABLE_NAME,
    IDENTIFIER_RULE,
    ensure_tables,
    validate_identifier,
    warehouse_tables,
)
from kalshi_provider.warehouse.snapshot import BreakdownEntry, Snapshot
from kalshi_provider.warehouse.store import read_snapshots, upsert_snapshots

__all__ = [
    "BREAKDOWN_SUFFIX",
    "DEFAULT_CONN_ID",
    "DEFAULT_TABLE_NAME",
    "IDENTIFIER_RULE",
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
