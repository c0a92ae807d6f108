"""The warehouse's command, run as a user runs it, and ``[kalshi] warehouse_migrations = manual``.

Each test has its own AIRFLOW_HOME (a migrated metadata DB) and reaches the warehouse through an
Airflow connection, as a deployment does. The warehouses hold rows written by release 0.2.0's own
code (see ``warehouse/written_by_0_2_0.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

from kalshi_provider.pipelines.settings import DEFAULT_TABLE, warehouse_migrations
from kalshi_provider.pipelines.warehouse import read_history, read_snapshots, warehouse_status
from kalshi_provider.pipelines.warehouse.migrations import BASELINE, HEAD
from tests.fixtures.airflow import AirflowHome, postgres_warehouse, sqlite_warehouse
from tests.pipelines.warehouse.migrating import AFTER_BASELINE
from tests.pipelines.warehouse.written_by_0_2_0 import write_with_release_0_2_0

pytestmark = pytest.mark.slow

DAG_ID = "kalshi_total_resting_order_value"
LOAD = "account_snapshot.load"
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("kalshi-warehouse"))


@pytest.fixture(scope="module")
def release_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("release-0.2.0")


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()


def _run(home: AirflowHome, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` as typed in a shell of this venv (``airflow`` is this venv's)."""
    argv = [str(home.bin / "airflow") if command[0] == "airflow" else command[0], *command[1:]]
    return subprocess.run(argv, env=home.env, capture_output=True, text=True, timeout=300)


def test_airflow_kalshi_warehouse_shows_and_migrates_a_0_2_0_warehouse(airflow_home, tmp_path, release_root):
    """``airflow kalshi-warehouse status|migrate`` with the ``[kalshi]`` settings as defaults."""
    path = tmp_path / "warehouse.db"
    warehouse = sqlite_warehouse(airflow_home, path)
    write_with_release_0_2_0(release_root, f"sqlite:///{path}", schema=None, table="fcm_orders")
    airflow_home.env["AIRFLOW__KALSHI__TABLE"] = "fcm_orders"
    before = _count(warehouse.engine, "fcm_orders_history")

    status = _run(airflow_home, "airflow", "kalshi-warehouse", "status")
    assert status.returncode == 1, status.stderr[-2000:]
    assert f"Airflow connection 'kalshi_warehouse' (sqlite:///{path})" in status.stdout
    assert "Version table: fcm_orders_ver" in status.stdout
    assert f"Revision: none (head: {HEAD})" in status.stdout
    assert "State: unversioned" in status.stdout

    migrate = _run(airflow_home, "airflow", "kalshi-warehouse", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    assert f"Recorded the tables found as revision {BASELINE}" in migrate.stdout
    assert f"Applied: {', '.join(AFTER_BASELINE)}" in migrate.stdout
    assert len(read_history(warehouse.engine, table_name="fcm_orders")) == before > 10

    status = _run(airflow_home, "airflow", "kalshi-warehouse", "status")
    assert status.returncode == 0
    assert f"State: current: the tables are at the head, revision {HEAD}" in status.stdout
    again = _run(airflow_home, "airflow", "kalshi-warehouse", "migrate")
    assert again.returncode == 0 and "Nothing to do" in again.stdout
    warehouse.dispose()


def test_the_console_script_is_the_same_command_with_explicit_arguments(
    airflow_home, postgres_url, postgres_schema, release_root
):
    """``kalshi-warehouse`` (the way on Airflow 3.0 and 3.1): another connection, table and schema
    named on the command line."""
    url = make_url(postgres_url)
    warehouse = postgres_warehouse(airflow_home, url, postgres_schema)
    airflow_home.env["AIRFLOW_CONN_FCM_WAREHOUSE"] = airflow_home.env.pop("AIRFLOW_CONN_KALSHI_WAREHOUSE")
    write_with_release_0_2_0(release_root, postgres_url, schema=postgres_schema, table="fcm_orders")
    target = ["--conn-id", "fcm_warehouse", "--table", "fcm_orders", "--schema", postgres_schema]

    status = _run(airflow_home, CONSOLE_SCRIPT, "status", *target)
    assert status.returncode == 1 and "State: unversioned" in status.stdout, status.stderr[-2000:]
    migrate = _run(airflow_home, CONSOLE_SCRIPT, "migrate", *target)
    assert migrate.returncode == 0 and f"Applied: {', '.join(AFTER_BASELINE)}" in migrate.stdout, (
        migrate.stderr[-2000:]
    )
    found = warehouse_status(warehouse.engine, table_name="fcm_orders", schema=postgres_schema)
    assert found.current
    warehouse.dispose()


def test_a_table_that_fits_no_release_is_refused_with_the_reason_not_a_traceback(airflow_home, tmp_path):
    path = tmp_path / "warehouse.db"
    sqlite_warehouse(airflow_home, path).dispose()
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {DEFAULT_TABLE} (account TEXT PRIMARY KEY, snapshot_hour TEXT)")
    engine.dispose()
    for command in (["airflow", "kalshi-warehouse"], [CONSOLE_SCRIPT]):
        migrate = _run(airflow_home, *command, "migrate")
        assert migrate.returncode == 1
        assert "kalshi-warehouse migrate: An existing warehouse table has another shape" in migrate.stderr
        assert "Traceback" not in migrate.stderr


def test_manual_mode_fails_the_load_at_once_with_the_command_that_fixes_it(
    airflow_home, simulator, kalshi_account, tmp_path, release_root
):
    """The DBA's way: the load fails on its first try naming the exact command; once someone runs
    it, the next run writes."""
    airflow_home.set_kalshi_connection("kalshi_default", kalshi_account, simulator.base_url)
    path = tmp_path / "warehouse.db"
    warehouse = sqlite_warehouse(airflow_home, path)
    write_with_release_0_2_0(release_root, f"sqlite:///{path}", schema=None, table=DEFAULT_TABLE)
    airflow_home.env["AIRFLOW__KALSHI__WAREHOUSE_MIGRATIONS"] = "manual"
    command = f"airflow kalshi-warehouse migrate --conn-id kalshi_warehouse --table {DEFAULT_TABLE}"

    refused = airflow_home.dags_test(DAG_ID)
    assert refused.tasks[(LOAD, 0)] == ("failed", 1), refused.output[-3000:]  # no retries
    assert f"The command: {command}" in refused.output
    assert "warehouse_migrations is 'manual'" in refused.output
    assert warehouse_status(warehouse.engine).state == "unversioned"  # not touched

    migrate = _run(airflow_home, *command.split())
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    written = airflow_home.dags_test(DAG_ID)
    assert written.state == "success", written.output[-3000:]
    rows = [row for row in read_snapshots(warehouse.engine) if row["dag_run_id"] == written.run_id]
    assert [(row["account"], row["dag_id"]) for row in rows] == [("kalshi_default", DAG_ID)]
    warehouse.dispose()


def test_the_setting_takes_auto_or_manual_and_nothing_else(monkeypatch):
    from kalshi_provider.exceptions import KalshiConfigError

    monkeypatch.delenv("AIRFLOW__KALSHI__WAREHOUSE_MIGRATIONS", raising=False)
    assert warehouse_migrations() == "auto"
    monkeypatch.setenv("AIRFLOW__KALSHI__WAREHOUSE_MIGRATIONS", " Manual ")
    assert warehouse_migrations() == "manual"
    monkeypatch.setenv("AIRFLOW__KALSHI__WAREHOUSE_MIGRATIONS", "yes")
    with pytest.raises(KalshiConfigError, match=r"warehouse_migrations is 'yes'; it must be 'auto'"):
        warehouse_migrations()
