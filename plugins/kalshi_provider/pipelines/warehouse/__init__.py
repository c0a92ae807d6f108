"""
The warehouse of the hourly rows (SQLAlchemy Core, 1.4 and 2.x): ``store_reading`` writes one
account-hour (total, balance, their shards, the balance minus resting per shard, every
subaccount's balance, the history) in one transaction (``docs/adr/0003-keep-earliest.md``);
``read_snapshots``, ``read_balances``, ``read_subaccounts``, ``read_history`` and ``read_window``
read rows back, of the rows a reader may see (``ReadableRows``); ``warehouse_engine`` finds the
bounded database (``docs/adr/0004-embedded-sqlite-default.md``); ``warehouse_status`` and
``upgrade_warehouse`` say which schema revision the tables hold and bring them to the head.
"""

from __future__ import annotations

from kalshi_provider.pipelines.warehouse.access import ReadableRows
from kalshi_provider.pipelines.warehouse.engine import (
    DEFAULT_TIMEOUTS,
    WarehouseTimeouts,
    bound_engine,
    embedded_database_path,
    warehouse_engine,
)
from kalshi_provider.pipelines.warehouse.locks import WarehouseBusyError
from kalshi_provider.pipelines.warehouse.reads import (
    read_balances,
    read_history,
    read_snapshots,
    read_subaccounts,
)
from kalshi_provider.pipelines.warehouse.schema import (
    BALANCE_MINUS_RESTING_SUFFIX,
    BALANCE_SHARD_SUFFIX,
    BALANCE_SUFFIX,
    BREAKDOWN_SUFFIX,
    HISTORY_SUFFIX,
    PROBLEMS_SUFFIX,
    SUBACCOUNTS_SUFFIX,
    WarehouseTables,
    validate_identifier,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse.shape import prepare_tables
from kalshi_provider.pipelines.warehouse.store import StoredHour, StoredReading, store_reading
from kalshi_provider.pipelines.warehouse.versioning import (
    Upgrade,
    WarehouseMigrationRequired,
    WarehouseStatus,
    WarehouseVersionError,
    ensure_current,
    upgrade_warehouse,
    warehouse_status,
)
from kalshi_provider.pipelines.warehouse.warehouse_errors import (
    InvalidIdentifierError,
    InvalidSnapshotError,
    VolatileWarehouseError,
    WarehouseConnectionError,
    WarehouseSchemaError,
)
from kalshi_provider.pipelines.warehouse.window import POINTS_BUDGET, ChartWindow, TooManyPoints, read_window

__all__ = [
    "POINTS_BUDGET",
    "BALANCE_SHARD_SUFFIX",
    "BALANCE_SUFFIX",
    "BREAKDOWN_SUFFIX",
    "HISTORY_SUFFIX",
    "BALANCE_MINUS_RESTING_SUFFIX",
    "SUBACCOUNTS_SUFFIX",
    "DEFAULT_TIMEOUTS",
    "PROBLEMS_SUFFIX",
    "ReadableRows",
    "ChartWindow",
    "InvalidIdentifierError",
    "InvalidSnapshotError",
    "StoredHour",
    "StoredReading",
    "TooManyPoints",
    "Upgrade",
    "VolatileWarehouseError",
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
    "read_subaccounts",
    "read_history",
    "read_snapshots",
    "read_window",
    "store_reading",
    "upgrade_warehouse",
    "validate_identifier",
    "warehouse_engine",
    "warehouse_status",
    "warehouse_tables",
]
