"""Every hour, record each Kalshi account's total resting order value in the warehouse.

One row per (account, hour) in the warehouse table: a re-run of an hour replaces that hour's row,
and a run too late for its hour skips instead of writing a mislabelled value. Settings are DAG
params; this file imports only light modules and touches no network, database or Variable.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Param, task, task_group
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from kalshi_provider.assets import RESTING_ORDER_VALUE_ASSET
from kalshi_provider.exceptions import PERMANENT_ERRORS
from kalshi_provider.operators.kalshi import KalshiTotalRestingOrderValueOperator
from kalshi_provider.pipeline import (
    DEFAULT_MAX_LATENESS_MINUTES,
    DEFAULT_TABLE,
    DEFAULT_WAREHOUSE_CONN_ID,
)

# Retrying cannot fix a bad connection (Kalshi's or the warehouse's), a refused key or a 403:
# fail such tries at once instead of spending the task's retries.
FAIL_FAST = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=list(PERMANENT_ERRORS),
            action=RetryAction.FAIL,
            reason="Kalshi refused the request or a connection is misconfigured; retrying won't help",
        ),
    ]
)

with DAG(
    dag_id="kalshi_total_resting_order_value",
    description="Hourly snapshot of Kalshi's total resting order value per account",
    schedule="0 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=5),
        "retry_policy": FAIL_FAST,
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
            DEFAULT_WAREHOUSE_CONN_ID,
            type="string",
            description="SQL connection of the warehouse; without it, an embedded SQLite file.",
        ),
        "table": Param(DEFAULT_TABLE, type="string", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"),
        "schema": Param(None, type=["null", "string"], description="Warehouse schema, if any."),
        "max_lateness_minutes": Param(
            DEFAULT_MAX_LATENESS_MINUTES,
            type="integer",
            minimum=0,
            description="How late after its hour a run may still record that hour.",
        ),
    },
    tags=["kalshi"],
    doc_md=__doc__,
):

    @task
    def accounts_to_read(params=None, dag_run=None) -> list[str]:
        """Skip the whole run early when it is already too late for its hour."""
        from kalshi_provider.pipeline import skip_if_late

        skip_if_late(dag_run.run_after, datetime.now(timezone.utc), params["max_lateness_minutes"])
        return list(params["kalshi_conn_ids"])

    @task(outlets=[RESTING_ORDER_VALUE_ASSET])
    def load(reading: dict, params=None, dag_run=None) -> dict:
        from kalshi_provider.pipeline import load_reading

        return load_reading(
            reading,
            run_after=dag_run.run_after,
            dag_run_id=dag_run.run_id,
            warehouse_conn_id=params["warehouse_conn_id"],
            table=params["table"],
            schema=params["schema"],
            max_lateness_minutes=params["max_lateness_minutes"],
        )

    @task_group
    def account_snapshot(kalshi_conn_id: str) -> None:
        """Fetch and load one account; a failing account leaves the others untouched."""
        fetch = KalshiTotalRestingOrderValueOperator(task_id="fetch", kalshi_conn_id=kalshi_conn_id)
        load(fetch.output)

    account_snapshot.expand(kalshi_conn_id=accounts_to_read())
