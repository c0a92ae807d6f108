"""The DAG run the stack tests look at (triggered once per session through the REST API), and
the browser fixtures of ``tests.stack.browser``.

Needs the ``airflow_stack`` fixture from ``tests.fixtures.stack``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.fixtures.stack import DAG_ID, AirflowStack
from tests.stack.browser import artifacts, browser, context, page  # noqa: F401 (fixtures)

RUN_TIMEOUT = 240.0  # seconds for one run of the DAG, queueing included
# Unpausing makes the scheduler run the current hour at once (CronTriggerTimetable, no catch-up).
# That run and ours write the same (account, hour) row; ours must be the later one, so both
# must fall in the same hour: do not start within this many seconds of the next hour.
HOUR_BOUNDARY_MARGIN = timedelta(seconds=150)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each test's call report on the item, for fixtures that save evidence on failure."""
    report = yield
    if report.when == "call":
        item.stack_ui_call_report = report  # type: ignore[attr-defined]
    return report


def _next_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _runs(stack: AirflowStack, **params: Any) -> list[dict[str, Any]]:
    response = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params=params)
    response.raise_for_status()
    return response.json()["dag_runs"]


@pytest.fixture(scope="session")
def triggered_run(airflow_stack: AirflowStack) -> dict[str, Any]:
    """Unpause the DAG, let the run the scheduler starts for the current hour finish, then trigger
    one with ``POST /api/v2/dags/{id}/dagRuns`` and wait (bounded) until it finishes.

    Returns ``{"run": <final dagRun JSON>, "trigger_response": <POST answer JSON>}``. Assertions on
    the outcome belong to the tests; this fails only when the API refuses a step or time runs out.
    """
    stack = airflow_stack
    next_hour = _next_hour(datetime.now(timezone.utc))
    if next_hour - datetime.now(timezone.utc) < HOUR_BOUNDARY_MARGIN:
        stack.wait_for(
            f"the hour to turn ({next_hour:%H:%M} UTC)",
            lambda: datetime.now(timezone.utc) >= next_hour,
            timeout=HOUR_BOUNDARY_MARGIN.total_seconds() + 10,
        )

    unpaused = stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert unpaused.status_code == 200, unpaused.text
    assert unpaused.json()["is_paused"] is False

    scheduled = stack.wait_for(
        "the scheduler's run for the current hour",
        lambda: _runs(stack, run_type="scheduled"),
        timeout=60,
    )
    for run in scheduled:
        stack.wait_for_dag_run(DAG_ID, run["dag_run_id"], timeout=RUN_TIMEOUT)

    started = time.monotonic()
    trigger = stack.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
    assert trigger.status_code == 200, trigger.text
    run_id = trigger.json()["dag_run_id"]
    run = stack.wait_for_dag_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    print(f"\n[triggered_run] {run_id} finished as {run['state']} in {time.monotonic() - started:.1f} s")
    return {"run": run, "trigger_response": trigger.json()}
