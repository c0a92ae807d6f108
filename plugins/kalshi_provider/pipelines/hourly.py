"""The hourly DAG: each Kalshi account's total resting order value and balance, one row per hour each.

A DAG folder file calls :func:`hourly_dag` (see ``dags/``); everything the DAG does lives here and
in the modules its tasks import when they run. This module imports only light Airflow SDK names,
so parsing the DAG file touches no network, database, ``requests`` or SQLAlchemy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, task, task_group

from kalshi_provider.limits import (
    CALL_DEADLINE_SECONDS,
    DEFAULT_MAX_RETRIES,
    SUBACCOUNTS_CALL_DEADLINE_SECONDS,
    TASK_OVERHEAD_SECONDS,
)
from kalshi_provider.operators.kalshi import KalshiAccountReadingOperator
from kalshi_provider.pipelines.hours import BACKFILL_RUN_TYPE, backfill_problem
from kalshi_provider.pipelines.settings import (
    DEFAULT_KALSHI_CONN_ID,
    DEFAULT_MAX_LATENESS_MINUTES,
    HOURLY_DAG_ID,
    IDENTIFIER_RULE,
    WarehouseTarget,
    warehouse_target,
)
from kalshi_provider.pipelines.table_asset import resting_order_value_asset
from kalshi_provider.version_compat import AIRFLOW_V_3_2_PLUS, DAG_RUN_TYPES, AirflowSkipException

log = logging.getLogger(__name__)

#: Task tries of every task (the first and its retries).
TASK_RETRIES = 3
#: Kalshi calls each fetch try makes: the total resting order value, the balance, the subaccounts.
CALLS_PER_FETCH = KalshiAccountReadingOperator.calls_per_try
#: Signed Kalshi requests per account and run, all tries together: the hook's default attempts
#: per call, times the calls of a try, times the tries. A connection's max_retries may lower it,
#: never raise it.
REQUESTS_PER_ACCOUNT_RUN = (DEFAULT_MAX_RETRIES + 1) * CALLS_PER_FETCH * (TASK_RETRIES + 1)
# Each task's time limit, so a hung try fails and is retried instead of holding the run (and,
# with max_active_runs=1, the next hours). fetch: its three hook calls, each bounded by the hook's
# call deadline (the subaccounts' shorter one); load: a backstop above the warehouse engine's own
# connect and statement timeouts.
PLAN_TIMEOUT = timedelta(minutes=1)
_FETCH_DEADLINES = (CALLS_PER_FETCH - 1) * CALL_DEADLINE_SECONDS + SUBACCOUNTS_CALL_DEADLINE_SECONDS
FETCH_TIMEOUT = timedelta(seconds=_FETCH_DEADLINES + TASK_OVERHEAD_SECONDS)
LOAD_TIMEOUT = timedelta(minutes=3)


def hourly_dag(
    dag_id: str = HOURLY_DAG_ID,
    *,
    kalshi_conn_ids: Sequence[str] = (DEFAULT_KALSHI_CONN_ID,),
    warehouse: WarehouseTarget | None = None,
    max_lateness_minutes: int = DEFAULT_MAX_LATENESS_MINUTES,
    schedule: str = "0 * * * *",
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    **dag_kwargs: Any,
) -> DAG:
    """
    Build the hourly DAG that records each account's total resting order value.

    :param dag_id: The DAG's id.
    :param kalshi_conn_ids: Kalshi connections to read, one account each (the ``kalshi_conn_ids``
        param's default; a run may override it, see the README on who may trigger).
    :param warehouse: Where rows go; defaults to
        :func:`~kalshi_provider.pipelines.settings.warehouse_target`.
    :param max_lateness_minutes: How long after ``run_after`` a reading may be observed and still
        stand for the run's hour (it must also be observed inside that hour).
    :param schedule: Cron expression; minute 0 of every hour by default.
    :param start_date: First hour the DAG may run for (no catch-up).
    :param dag_kwargs: Further ``DAG`` arguments (``tags``, ``default_args``, ...). From Airflow 3.2
        on, ``allowed_run_types`` defaults to every run type but backfills, which could store
        nothing (Kalshi keeps no past readings); a backfill run that starts anyway ends at once.

    A DAG file for two accounts, their rows in the ``risk`` schema, answers counting up to 20 minutes
    after ``run_after`` (the file must hold the words "airflow" and "dag", or safe mode skips it):

    .. code-block:: python

        # Airflow DAG: two FCM desks' resting order value and balance, every hour.

        from kalshi_provider.pipelines.hourly import hourly_dag
        from kalshi_provider.pipelines.settings import WarehouseTarget

        dag = hourly_dag(
            "kalshi_fcm_desks",
            kalshi_conn_ids=["kalshi_desk_a", "kalshi_desk_b"],
            warehouse=WarehouseTarget("kalshi_warehouse", schema="risk"),
            max_lateness_minutes=20,
        )
    """
    target = warehouse or warehouse_target()
    if DAG_RUN_TYPES is not None:  # Airflow 3.2+: the UI offers no Backfill, the API refuses one
        dag_kwargs.setdefault(
            "allowed_run_types", [run_type for run_type in DAG_RUN_TYPES if run_type != BACKFILL_RUN_TYPE]
        )
    with DAG(
        dag_id=dag_id,
        description="Hourly snapshot of Kalshi's total resting order value and balance per account",
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        default_args={
            "retries": TASK_RETRIES,
            "execution_timeout": LOAD_TIMEOUT,
            "retry_delay": timedelta(seconds=30),
            # Doubling: a multiplier from 3.2 on, a flag (True doubles) before.
            "retry_exponential_backoff": 2.0 if AIRFLOW_V_3_2_PLUS else True,
            "max_retry_delay": timedelta(minutes=5),
            # Errors no retry can fix (a bad connection, Kalshi's or the warehouse's, a refused
            # key, a 403) fail their task at once: the fetch and the load raise AirflowFailException.
        },
        params={
            "kalshi_conn_ids": Param(
                list(kalshi_conn_ids),
                type="array",
                items={"type": "string", "minLength": 1},
                minItems=1,
                uniqueItems=True,
                description="Kalshi connections to read, one account each.",
            ),
            "warehouse_conn_id": Param(
                target.conn_id,
                type="string",
                description="SQL connection of the warehouse. Only the default one may be missing, "
                "with LocalExecutor: then the rows go to an embedded SQLite file.",
            ),
            "table": Param(target.table, type="string", pattern=IDENTIFIER_RULE),
            "schema": Param(target.schema, type=["null", "string"], description="Warehouse schema, if any."),
            "max_lateness_minutes": Param(
                max_lateness_minutes,
                type="integer",
                minimum=0,
                description="How long after run_after Kalshi's answer may arrive and still count for "
                "the run's hour (it must also arrive inside that hour).",
            ),
        },
        tags=["kalshi"],
        doc_md=__doc__,
        **dag_kwargs,
    ) as dag:

        @task(execution_timeout=PLAN_TIMEOUT)
        def accounts_to_read(params=None, dag_run=None) -> list[str]:
            """The accounts to read. Whether a reading may stand for the run's hour is decided once,
            by the load task, on when Kalshi's answer arrived (see ``pipelines/hours.py``); only a
            backfill's run ends here, skipped with its reason, and so do its fetches and loads."""
            problem = backfill_problem(dag_run.run_type, dag_run.run_after)
            if problem:
                log.warning(problem)
                raise AirflowSkipException(problem)
            return list(params["kalshi_conn_ids"])

        @task(outlets=[resting_order_value_asset(target.table)], execution_timeout=LOAD_TIMEOUT)
        def load(reading: dict, params=None, dag_run=None, ti=None) -> dict:
            from kalshi_provider.exceptions import failing_fast
            from kalshi_provider.pipelines.load import load_reading

            with failing_fast():
                return load_reading(
                    reading,
                    run_after=dag_run.run_after,
                    dag_run_id=dag_run.run_id,
                    dag_id=dag_run.dag_id,
                    warehouse_conn_id=params["warehouse_conn_id"],
                    table=params["table"],
                    schema=params["schema"],
                    max_lateness_minutes=params["max_lateness_minutes"],
                    try_number=getattr(ti, "try_number", None),
                )

        @task_group
        def account_snapshot(kalshi_conn_id: str) -> None:
            """Fetch and load one account; a failing account leaves the others untouched."""
            fetch = KalshiAccountReadingOperator(
                task_id="fetch",
                kalshi_conn_id=kalshi_conn_id,
                max_requests=REQUESTS_PER_ACCOUNT_RUN,
                execution_timeout=FETCH_TIMEOUT,
            )
            load(fetch.output)

        account_snapshot.expand(kalshi_conn_id=accounts_to_read())
    return dag
