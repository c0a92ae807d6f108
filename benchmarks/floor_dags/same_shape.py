"""Floor of the DAG-parse and end-to-end figures: the hourly DAG's shape with no-op tasks.

The same schedule, params (with their schemas), default_args (retries, their delays and an
execution timeout), each task's execution timeout, task ids, mapped task group, dependencies and
asset outlet as ``dags/kalshi_total_resting_order_value.py``; no Kalshi call, no warehouse, and
only ``airflow.sdk`` imported. ``benchmarks/run.py`` compares the two shapes on every run and says
if they differ.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Asset, Param, task, task_group

with DAG(
    dag_id="benchmark_same_shape",
    description="A no-op DAG with the hourly DAG's shape",
    schedule="0 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "execution_timeout": timedelta(minutes=3),
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=5),
    },
    params={
        "kalshi_conn_ids": Param(
            ["kalshi_default"],
            type="array",
            items={"type": "string", "minLength": 1},
            minItems=1,
            uniqueItems=True,
            description="Kalshi connections to read, one account each.",
        ),
        "warehouse_conn_id": Param(
            "kalshi_warehouse",
            type="string",
            description="SQL connection of the warehouse; without it, an embedded SQLite file.",
        ),
        "table": Param(
            "kalshi_total_resting_order_value", type="string", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
        ),
        "schema": Param(None, type=["null", "string"], description="Warehouse schema, if any."),
        "max_lateness_minutes": Param(
            30,
            type="integer",
            minimum=0,
            description="How long after run_after Kalshi's answer may arrive and still count for "
            "the run's hour (it must also arrive inside that hour).",
        ),
    },
    tags=["kalshi"],
    doc_md=__doc__,
):

    @task(execution_timeout=timedelta(minutes=1))
    def accounts_to_read(params=None) -> list[str]:
        return list(params["kalshi_conn_ids"])

    @task(task_id="fetch", execution_timeout=timedelta(minutes=5))
    def fetch(kalshi_conn_id: str) -> dict:
        return {"account": kalshi_conn_id}

    @task(
        outlets=[Asset(name="benchmark_same_shape", group="kalshi")], execution_timeout=timedelta(minutes=3)
    )
    def load(reading: dict, params=None, dag_run=None) -> dict:
        return reading

    @task_group
    def account_snapshot(kalshi_conn_id: str) -> None:
        load(fetch(kalshi_conn_id))

    account_snapshot.expand(kalshi_conn_id=accounts_to_read())
