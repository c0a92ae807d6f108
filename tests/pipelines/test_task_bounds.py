"""Every task of both DAGs has a time limit, and the limits fit the hook's own bounds.

One hung call must fail its try instead of holding the run: with ``max_active_runs=1`` a run
that never ends would cost every following hour. The budget of signed Kalshi requests per
account and run is the fetch task's, whatever a connection's ``max_retries`` says.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from kalshi_provider import limits
from kalshi_provider.pipelines.settings import HOURLY_DAG_ID, QUALITY_DAG_ID

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dags():
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def test_every_task_of_both_dags_has_an_execution_timeout(dags):
    for dag_id in (HOURLY_DAG_ID, QUALITY_DAG_ID):
        for task in dags[dag_id].tasks:
            assert task.execution_timeout is not None, f"{dag_id}.{task.task_id}"
            assert task.execution_timeout <= timedelta(minutes=10), f"{dag_id}.{task.task_id}"


def test_the_fetch_timeout_covers_every_calls_deadline(dags):
    fetch = dags[HOURLY_DAG_ID].get_task("account_snapshot.fetch")
    assert fetch.calls_per_try == 3  # the total, the balance, the subaccounts (a shorter deadline)
    deadlines = 2 * limits.CALL_DEADLINE_SECONDS + limits.SUBACCOUNTS_CALL_DEADLINE_SECONDS
    assert fetch.execution_timeout.total_seconds() > deadlines
    assert limits.MAX_TIMEOUT_SECONDS * 2 <= limits.CALL_DEADLINE_SECONDS  # room for a retry


def _worst_retry_waits(task) -> float:
    """Airflow's longest waits between the tries (exponential back-off: up to twice the base)."""
    total = 0.0
    for try_number in range(1, task.retries + 1):
        base = task.retry_delay.total_seconds()
        if task.retry_exponential_backoff and task.retry_exponential_backoff != 1.0:
            base *= task.retry_exponential_backoff ** (try_number - 1)
            base *= 2
        if task.max_retry_delay:
            base = min(base, task.max_retry_delay.total_seconds())
        total += base
    return total


def test_a_run_that_hangs_everywhere_still_ends_before_the_next_hour(dags):
    """Every try of every task hits its time limit, every retry waits its longest: still < 1 h."""
    dag = dags[HOURLY_DAG_ID]
    worst = sum(
        (task.retries + 1) * task.execution_timeout.total_seconds() + _worst_retry_waits(task)
        for task in dag.tasks  # the chain plan -> fetch -> load; accounts run side by side
    )
    assert worst < 3600, f"{worst / 60:.0f} min"


def test_the_request_budget_per_account_and_run(dags):
    """Three endpoints triple it: 3 attempts per call, 3 calls per try, 4 tries."""
    fetch = dags[HOURLY_DAG_ID].get_task("account_snapshot.fetch")
    tries = fetch.retries + 1
    assert fetch.max_requests == (limits.DEFAULT_MAX_RETRIES + 1) * fetch.calls_per_try * tries == 36
    # A connection asking for more retries than the default gets no more than the budget.
    assert fetch.attempts_per_try * fetch.calls_per_try * tries <= fetch.max_requests
    assert fetch.attempts_per_try < limits.MAX_RETRIES_LIMIT + 1
