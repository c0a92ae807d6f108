"""Airflow Assets this provider produces, shared by the DAG that writes and the DAGs that react."""

from __future__ import annotations

from airflow.sdk import Asset

#: Updated by every successful load of the hourly table (its name is the default table name).
RESTING_ORDER_VALUE_ASSET = Asset(name="kalshi_total_resting_order_value", group="kalshi")
