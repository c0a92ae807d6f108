"""One setting moves the hourly DAG, the quality DAG and the chart together: Airflow's ``[kalshi]``
config section, read by ``warehouse_target``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine

from kalshi_provider.pipelines.hourly import hourly_dag
from kalshi_provider.pipelines.quality import quality_dag
from kalshi_provider.pipelines.settings import WarehouseTarget, warehouse_target
from kalshi_provider.pipelines.ui.app import load_window
from kalshi_provider.pipelines.warehouse import store_reading
from kalshi_provider.readings import AccountReading, RestingOrderValue

SETTINGS = ("WAREHOUSE_CONN_ID", "TABLE", "SCHEMA")


@pytest.fixture
def kalshi_section(monkeypatch):
    """Set ``[kalshi]`` options the way a deployment does without editing airflow.cfg."""
    for name in SETTINGS:
        monkeypatch.delenv(f"AIRFLOW__KALSHI__{name}", raising=False)

    def configure(**options: str) -> None:
        for name, value in options.items():
            monkeypatch.setenv(f"AIRFLOW__KALSHI__{name.upper()}", value)

    return configure


def test_without_the_section_everything_uses_the_defaults(kalshi_section):
    assert warehouse_target() == WarehouseTarget()
    for dag in (hourly_dag(), quality_dag()):
        params = dag.params.dump()
        assert (params["warehouse_conn_id"], params["table"], params["schema"]) == (
            WarehouseTarget.conn_id,
            WarehouseTarget.table,
            None,
        )


def test_the_section_moves_both_dags_and_the_chart(kalshi_section, monkeypatch, tmp_path):
    kalshi_section(warehouse_conn_id="fcm_warehouse", table="fcm_resting_orders")
    assert warehouse_target() == WarehouseTarget("fcm_warehouse", "fcm_resting_orders", None)
    for dag in (hourly_dag(), quality_dag()):
        params = dag.params.dump()
        assert (params["warehouse_conn_id"], params["table"]) == ("fcm_warehouse", "fcm_resting_orders")

    # The chart reads the same table through the same connection.
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_FCM_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    engine = create_engine(f"sqlite:///{path}")
    try:
        reading = AccountReading("kalshi_default", hour + timedelta(seconds=5), RestingOrderValue(777))
        store_reading(engine, reading, snapshot_hour=hour, dag_run_id="seed", table_name="fcm_resting_orders")
    finally:
        engine.dispose()
    window = load_window(24)
    assert [(row["account"], row["total_resting_order_value_cents"]) for row in window.totals] == [
        ("kalshi_default", 777)
    ]
