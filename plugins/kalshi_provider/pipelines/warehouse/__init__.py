"""
Warehouse for the hourly total-resting-order-value rows (SQLAlchemy Core, 1.4 and 2.x).

``store_reading`` writes one account-hour (total, balance, their shards, the free margin per shard,
the history of the readings) in one transaction, keeping the earliest observation inside the hour;
``read_snapshots``, ``read_balances`` and ``read_history`` read rows back; ``warehouse_engine``
finds the database (an Airflow SQL connection, else an embedded SQLite file) with bounded waits;
``warehouse_status`` and ``upgrade_warehouse`` say which schema revision the tables hold and bring
them to the head (``store_reading`` does so first, or refuses: ``[kalshi] warehouse_migrations``);
``prepare_tables`` refuses existing tables that cannot hold the values exactly.
"""

from __future__ import annotations

from kalshi_provider.pipelines.warehouse.engine import (
    DEFAULT_TIMEOUTS,
    WarehouseTimeouts,
    bound_engine,
    embedded_database_path,
    warehouse_engine,
)
from kalshi_provider.pipelines.warehouse.errors import (
    InvalidIdentifierError,
    InvalidSnapshotError,
    WarehouseConnectionError,
    WarehouseSchemaError,
)
from kalshi_provider.pipelines.warehouse.locks import WarehouseBusyError
from kalshi_provider.pipelines.warehouse.schema import (
    BALANCE_SHARD_SUFFIX,
    BALANCE_SUFFIX,
    BREAKDOWN_SUFFIX,
    HISTORY_SUFFIX,
    MARGIN_SUFFIX,
    PROBLEMS_SUFFIX,
    WarehouseTables,
    validate_identifier,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse.shape import prepare_tables
from kalshi_provider.pipelines.warehouse.store import (
    StoredHour,
    StoredReading,
    read_balances,
    read_history,
    read_snapshots,
    store_reading,
)
from kalshi_provider.pipelines.warehouse.versioning import (
    Upgrade,
    WarehouseMigrationRequired,
    WarehouseStatus,
    WarehouseVersionError,
    ensure_current,
    upgrade_warehouse,
    warehouse_status,
)

__all__ = [
    "BALANCE_SHARD_SUFFIX",
    "BALANCE_SUFFIX",
    "BREAKDOWN_SUFFIX",
    "HISTORY_SUFFIX",
    "MARGIN_SUFFIX",
    "DEFAULT_TIMEOUTS",
    "PROBLEMS_SUFFIX",
    "InvalidIdentifierError",
    "InvalidSnapshotError",
    "StoredHour",
    "StoredReading",
    "Upgrade",
    "WarehouseBusyError",
    "WarehouseConnectionError",
    "WarehouseMigrationRequired",
    "WarehouseSchemaError",
    "WarehouseStatus",
    "WarehouseTables",
    "WarehouseTimeouts",
    "WarehouseVersionError",
    "bound_engine",
    "embedded_database_path",
    "ensure_current",
    "prepare_tables",
    "read_balances",
    "read_history",
    "read_snapshots",
    "store_reading",
    "upgrade_warehouse",
    "validate_identifier",
    "warehouse_engine",
    "warehouse_status",
    "warehouse_tables",
]
