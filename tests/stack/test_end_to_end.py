"""The whole docker-compose topology, natively: a run triggered over REST lands in the warehouse.

api-server, scheduler, dag-processor, triggerer and a Celery worker (Redis broker, PostgreSQL
results) run as real processes; the task talks HTTP to the Kalshi simulator and writes to
PostgreSQL. Nothing is mocked.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from kalshi_provider.endpoints import BALANCE_ENDPOINT, SUBACCOUNT_BALANCES_ENDPOINT, TOTAL_ENDPOINT
from kalshi_provider.pipelines.warehouse import read_balances, read_history, read_snapshots
from tests.fixtures.stack import BALANCE, DAG_ID, AirflowStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _task_instances(stack: AirflowStack, run_id: str) -> list[dict[str, Any]]:
    response = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    response.raise_for_status()
    return response.json()["task_instances"]


def test_triggered_run_writes_the_simulators_value_to_the_postgres_warehouse(
    airflow_stack: AirflowStack, triggered_run: dict[str, Any]
) -> None:
    run = triggered_run["run"]
    run_id = run["dag_run_id"]
    assert triggered_run["trigger_response"]["logical_date"] is None
    assert run["run_type"] == "manual"
    assert run["state"] == "success", f"run {run_id}: {run}"

    tis = _task_instances(airflow_stack, run_id)
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in tis}
    assert states == {
        ("accounts_to_read", -1): "success",
        ("account_snapshot.fetch", 0): "success",
        ("account_snapshot.load", 0): "success",
    }

    engine = airflow_stack.warehouse_engine()
    try:
        rows = read_snapshots(engine, account="kalshi_default", include_breakdown=True)
        history = read_history(engine, account="kalshi_default")
        hour = (
            datetime.fromisoformat(run["run_after"])
            .astimezone(timezone.utc)
            .replace(minute=0, second=0, microsecond=0)
        )
        (balance,) = read_balances(
            engine, account="kalshi_default", since=hour, until=hour + timedelta(hours=1)
        )
    finally:
        engine.dispose()
    # The run's own readings are in the history, taken during the run, in the run's hour.
    ours = {row["endpoint"]: row for row in history if row["dag_run_id"] == run_id}
    assert set(ours) == {TOTAL_ENDPOINT, BALANCE_ENDPOINT, SUBACCOUNT_BALANCES_ENDPOINT}, history
    run_after, end = datetime.fromisoformat(run["run_after"]), datetime.fromisoformat(run["end_date"])
    for reading in ours.values():
        assert reading["snapshot_hour"] == hour and run_after <= reading["observed_at"] <= end
    assert ours[TOTAL_ENDPOINT]["total_resting_order_value_cents"] == airflow_stack.resting_order_value
    assert ours[BALANCE_ENDPOINT]["balance_cents"] == BALANCE

    # The hour's row is the earliest reading that counted for the hour: the scheduler may have run
    # this hour's scheduled run before the trigger (its reading wins when it was in time; when it
    # came more than max_lateness_minutes after its run_after it skipped and stays history only).
    (row,) = [row for row in rows if row["snapshot_hour"] == hour]
    in_hour = [r for r in history if r["endpoint"] == TOTAL_ENDPOINT and r["snapshot_hour"] == hour]
    kept = min((r for r in in_hour if r["became_hour_row"]), key=lambda r: r["observed_at"])
    assert (row["dag_run_id"], row["observed_at"]) == (kept["dag_run_id"], kept["observed_at"])
    assert row["account"] == "kalshi_default"
    assert row["total_resting_order_value_cents"] == airflow_stack.resting_order_value
    dollars = Decimal(airflow_stack.resting_order_value) / 100
    assert [entry["exchange_index"] for entry in row["breakdown"]] == [0, 1, 2, 3]  # the shards of 2026
    assert sum(entry["shard_resting_order_value_dollars"] for entry in row["breakdown"]) == dollars
    # The balance beside it, with the free margin of every shard.
    assert balance["balance_cents"] == BALANCE
    assert all(
        entry["shard_balance_minus_resting_dollars"] is not None for entry in balance["balance_minus_resting"]
    )

    # The value came over HTTP from the simulator, signed with the stack's key, during the run.
    started = datetime.fromisoformat(run["start_date"]).timestamp()
    assert any(
        r.key_id == airflow_stack.kalshi_account.key_id
        and r.path == "/trade-api/v2/portfolio/summary/total_resting_order_value"
        and r.signature_valid
        and r.status == 200
        and r.received_at >= started
        for r in airflow_stack.simulator.requests
    )


def test_tasks_ran_on_the_celery_worker(airflow_stack: AirflowStack, triggered_run: dict[str, Any]) -> None:
    run_id = triggered_run["run"]["dag_run_id"]
    tis = _task_instances(airflow_stack, run_id)
    assert tis

    # Only the worker consumes this queue ([operators] default_queue), so a finished task ran there.
    assert {ti["queue"] for ti in tis} == {airflow_stack.celery_queue}
    assert all(ti["hostname"] for ti in tis), tis

    # The worker's own log records each workload it executed.
    worker_log = airflow_stack.log("celery-worker")
    executed = [line for line in worker_log.splitlines() if "Executing workload in Celery" in line]
    for ti in tis:
        assert any(run_id in line and f"task_id='{ti['task_id']}'" in line for line in executed), (
            f"{ti['task_id']} not in the worker's log:\n" + "\n".join(executed)
        )

    # And Celery stored the results in PostgreSQL (result backend db+postgresql). The worker
    # writes a result after the task has reported its state, so the run can finish first.
    engine = airflow_stack.metadata_engine()

    def results() -> list[str] | None:
        with engine.connect() as conn:
            statuses = conn.execute(text("SELECT status FROM celery_taskmeta")).scalars().all()
        return statuses if statuses and set(statuses) == {"SUCCESS"} else None

    try:
        statuses = airflow_stack.wait_for("Celery results of the finished tasks", results, timeout=30)
    finally:
        engine.dispose()
    assert len(statuses) >= len(tis), statuses
