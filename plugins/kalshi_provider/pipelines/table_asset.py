"""The Airflow Asset the hourly DAG updates and the quality DAG is scheduled on."""

from __future__ import annotations

from airflow.sdk import Asset


def resting_order_value_asset(table: str) -> Asset:
    """The hourly table as an Asset named after it, so each deployment's DAGs pair up by table."""
    return Asset(name=table, group="kalshi")
