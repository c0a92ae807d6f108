"""
Warehouse for the hourly total-resting-order-value rows (SQLAlchemy Core, 1.4 and 2.x).

``store_reading`` writes one account-hour (total, balance, their shards, the balance minus resting
per shard, every subaccount's balance, the history of the readings) in one transaction, keeping the
earliest observation inside the hour; ``read_snapshots``, ``read_balances``, ``read_subaccounts``
and ``read_history`` read rows back, and ``read_window`` a chart's window within a points budget,
of the rows a reader may see (``ReadableRows``); ``warehouse_engine`` finds the database (an
Airflow SQL connection; for the default one, on a LocalExecutor install, an embedded SQLite file)
with bounded waits, and refuses one that would forget what is written; ``warehouse_status`` and
``upgrade_warehouse`` say which schema revision the tables hold and bring them to the head
(``store_reading`` does so when its first write finds them behind, or refuses: ``[kalshi]
warehouse_migrations``); ``prepare_tables`` refuses existing tables that cannot hold the values
exactly.
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
