"""The hourly DAG run by Airflow itself against the simulator and real warehouses.

Re-runs of an hour and late runs are in tests/e2e/reliability (test_idempotence, the fault matrix).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import make_url

from tests.fixtures.airflow import hour_of, postgres_warehouse, sqlite_warehouse

DAG_ID = "kalshi_total_resting_order_value"
FETCH, LOAD, PLAN = "account_snapshot.fetch", "account_snapshot.load", "accounts_to_read"

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, airflow_home, tmp_path):
    """Wire ``kalshi_warehouse`` to a real SQLite file or the test PostgreSQL (own schema)."""
    if request.param == "sqlite":
        target = sqlite_warehouse(airflow_home, tmp_path / "warehouse.db")
    else:
        url = make_url(request.getfixturevalue("postgres_url"))
        target = postgres_warehouse(airflow_home, url, request.getfixturevalue("postgres_schema"))
    yield target
    target.dispose()


@pytest.fixture
def kalshi_default(airflow_home, simulator, kalshi_account):
    airflow_home.set_kalshi_connection(
        "kalshi_default", kalshi_account, simulator.base_url, {"max_retries": 3}
    )
    return kalshi_account


def test_one_run_writes_one_row(airflow_home, warehouse, kalshi_default, simulator):
    simulator.set_value(kalshi_default.key_id, 987654, [{"exchange_index": 0, "balance": "9876.5400"}])
    result = airflow_home.dags_test(DAG_ID, conf=warehouse.conf)
    assert result.state == "success", result.output[-4000:]
    [row] = warehouse.rows()
    assert row["account"] == "kalshi_default"
    assert row["total_resting_order_value_cents"] == 987654
    assert row["dag_run_id"] == result.run_id
    assert row["snapshot_hour"] == hour_of(result.run_after)
    assert row["observed_at"] - row["snapshot_hour"] < timedelta(hours=1)
    assert [str(entry["balance_dollars"]) for entry in row["breakdown"]] == ["9876.540000"]


def test_a_passing_fault_is_retried_and_the_run_recovers(airflow_home, warehouse, kalshi_default, simulator):
    simulator.push_faults([{"status": 503, "body": "<html>upstream down</html>"}, {"drop": True}])
    result = airflow_home.dags_test(DAG_ID, conf=warehouse.conf)
    assert result.state == "success", result.output[-4000:]
    assert [request.status for request in simulator.requests] == [503, None, 200]
    assert len(warehouse.rows()) == 1


def test_a_permanent_fault_fails_at_once_and_writes_nothing(
    airflow_home, warehouse, make_kalshi_account, simulator
):
    account = make_kalshi_account(fcm_member=False)
    airflow_home.set_kalshi_connection("kalshi_default", account, simulator.base_url)
    result = airflow_home.dags_test(DAG_ID, conf=warehouse.conf)
    assert result.state == "failed"
    assert result.tasks[(FETCH, 0)] == ("failed", 1)  # no task retries for a 403
    assert result.task_state(LOAD) == "upstream_failed"
    assert "only for FCM members" in result.output
    assert warehouse.rows() == []


def test_accounts_are_independent(airflow_home, warehouse, kalshi_default, make_kalshi_account, simulator):
    refused = make_kalshi_account(fcm_member=False)
    airflow_home.set_kalshi_connection("kalshi_other", refused, simulator.base_url)
    result = airflow_home.dags_test(
        DAG_ID, conf={**warehouse.conf, "kalshi_conn_ids": ["kalshi_default", "kalshi_other"]}
    )
    assert result.state == "failed"
    assert result.task_state(LOAD, 0) == "success" and result.task_state(FETCH, 1) == "failed"
    assert [row["account"] for row in warehouse.rows()] == ["kalshi_default"]
