"""The DAG folder as Airflow's DagBag sees it, and what the DAG file costs to parse."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "kalshi_total_resting_order_value"


@pytest.fixture(scope="module")
def dag_bag_and_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(REPO / "dags"))
    return bag, caught


def test_dag_folder_loads_without_errors_or_deprecations(dag_bag_and_warnings):
    bag, caught = dag_bag_and_warnings
    assert bag.import_errors == {}
    assert DAG_ID in bag.dag_ids
    deprecations = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning | FutureWarning)
        and str(REPO) in w.filename
    ]
    assert deprecations == []


def test_schedule_retries_and_params(dag_bag_and_warnings):
    dag = dag_bag_and_warnings[0].dags[DAG_ID]
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 * * * *", "UTC")
    assert dag.catchup is False and dag.max_active_runs == 1
    assert {task.task_id for task in dag.tasks} == {
        "accounts_to_read",
        "account_snapshot.fetch",
        "account_snapshot.load",
    }
    fetch = dag.get_task("account_snapshot.fetch")
    assert fetch.retries == 3 and fetch.retry_exponential_backoff == 2.0
    assert fetch.max_retry_delay == timedelta(minutes=5)
    assert dag.params["kalshi_conn_ids"] == ["kalshi_default"]
    assert dag.params["warehouse_conn_id"] == "kalshi_warehouse"
    assert dag.params["max_lateness_minutes"] == 30
    [outlet] = dag.get_task("account_snapshot.load").outlets
    assert outlet.name == "kalshi_total_resting_order_value"


@pytest.mark.process
def test_dag_file_imports_nothing_heavy():
    """Parsing the DAG file must not pull in the HTTP, crypto or SQL stacks (the dag-processor
    re-parses it every 30 s); they are imported inside the tasks."""
    script = f"""
import json, runpy, sys
import airflow.sdk
before = set(sys.modules)
runpy.run_path({str(REPO / "dags" / (DAG_ID + ".py"))!r})
print(json.dumps(sorted(set(sys.modules) - before)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"},
    )
    added = json.loads(done.stdout.strip().splitlines()[-1])
    heavy = (
        "requests",
        "urllib3",
        "cryptography",
        "tenacity",
        "sqlalchemy",
        "kalshi_provider.hooks",
        "kalshi_provider.pipelines.warehouse",
        "kalshi_provider.signing",
    )
    assert [name for name in added if name.startswith(heavy)] == []
