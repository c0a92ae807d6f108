"""One setting moves the hourly DAG, the quality DAG and the chart together: Airflow's ``[kalshi]``
config section, read by ``warehouse_target``, and declared to Airflow through the provider info."""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine

from kalshi_provider.get_provider_info import get_provider_info
from kalshi_provider.pipelines import settings
from kalshi_provider.pipelines.hourly import hourly_dag
from kalshi_provider.pipelines.quality import quality_dag
from kalshi_provider.pipelines.quality_rules import InvalidFloorsError
from kalshi_provider.pipelines.settings import (
    CONFIG_SECTION,
    MIGRATIONS_AUTO,
    WarehouseTarget,
    warehouse_migrations,
    warehouse_target,
)
from kalshi_provider.pipelines.ui.app import load_window
from kalshi_provider.pipelines.warehouse import store_reading
from kalshi_provider.readings import AccountReading, RestingOrderValue

SETTINGS = ("WAREHOUSE_CONN_ID", "TABLE", "SCHEMA", "WAREHOUSE_MIGRATIONS", "BALANCE_FLOORS")


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


# --- The section Airflow knows ------------------------------------------------------------------


def _readers():
    """Every public function of settings.py: each reads the deployment's settings, and takes no argument."""
    return [
        function
        for name, function in vars(settings).items()
        if inspect.isfunction(function)
        and function.__module__ == settings.__name__
        and not name.startswith("_")
    ]


def _read_through_airflow_only(monkeypatch) -> list[tuple[str, str]]:
    """Make Airflow's ``conf.get`` ignore the readers' fallbacks, and record what they ask for."""
    from airflow.configuration import conf

    asked: list[tuple[str, str]] = []
    real_get = conf.get

    def get(section, key, *args, **kwargs):
        asked.append((section, key))
        kwargs.pop("fallback", None)
        return real_get(section, key, *args, **kwargs)

    monkeypatch.setattr(conf, "get", get)
    return asked


def test_every_setting_a_reader_asks_for_is_declared_and_nothing_else(kalshi_section, monkeypatch):
    """With the readers' own fallbacks ignored, Airflow answers every option from the declaration
    in the provider info alone, with the defaults the code uses; and every declared option is read."""
    asked = _read_through_airflow_only(monkeypatch)
    assert {"warehouse_target", "warehouse_migrations"} <= {function.__name__ for function in _readers()}
    for reader in _readers():
        reader()
    assert warehouse_target() == WarehouseTarget()
    assert warehouse_migrations() == MIGRATIONS_AUTO
    [declared] = get_provider_info()["config"].items()
    assert {section for section, _ in asked} == {declared[0]} == {CONFIG_SECTION}
    assert sorted({key for _, key in asked}) == sorted(declared[1]["options"])


def _airflow_config(airflow_home, *args: str, **env: str) -> str:
    """``airflow config ...`` in its own AIRFLOW_HOME, no ``AIRFLOW__*`` of ours inherited."""
    airflow_home.env.update(env)
    done = airflow_home.airflow("config", *args, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_airflow_config_lists_the_section_and_answers_each_option(airflow_home):
    listed = _airflow_config(
        airflow_home, "list", "--section", "kalshi", "--show-values", "--include-descriptions"
    )
    assert "[kalshi]" in listed
    assert "warehouse_conn_id = kalshi_warehouse" in listed
    assert "table = kalshi_total_resting_order_value" in listed
    assert "warehouse_migrations = auto" in listed
    assert "# The Airflow connection of the warehouse" in listed  # the descriptions come along
    answers = {
        key: _airflow_config(airflow_home, "get-value", "kalshi", key).strip()
        for key in ("warehouse_conn_id", "table", "schema", "warehouse_migrations")
    }
    assert answers == {
        "warehouse_conn_id": "kalshi_warehouse",
        "table": "kalshi_total_resting_order_value",
        "schema": "",
        "warehouse_migrations": "auto",
    }
    # A deployment's own value wins over the declared default.
    assert _airflow_config(
        airflow_home, "get-value", "kalshi", "table", AIRFLOW__KALSHI__TABLE="fcm_rov"
    ).strip() == ("fcm_rov")


def test_the_floors_setting_is_the_quality_dags_default_and_is_checked(kalshi_section):
    kalshi_section(balance_floors='{"kalshi_default": {"0": "25000.00", "2": 1000}}')
    assert quality_dag().params.dump()["balance_floors"] == {
        "kalshi_default": {"0": "25000.000000", "2": "1000.000000"}
    }
    assert quality_dag(balance_floors={}).params.dump()["balance_floors"] == {}  # the argument wins
    for bad, says in (
        ("{not json", "is not JSON"),
        ('{"kalshi_default": {"0": 25000.5}}', "must be a decimal string"),
        ('{"kalshi_default": {"99": "1"}}', "is not a shard"),
    ):
        kalshi_section(balance_floors=bad)
        with pytest.raises(InvalidFloorsError, match=rf"\[kalshi\] .*{says}"):
            quality_dag()
