"""Backfills of the hourly DAG, made with ``airflow backfill create`` and run by Airflow's scheduler.

Kalshi keeps no past readings, so a backfilled hour can store nothing. On Airflow 3.2+ the DAG
refuses backfills up front (``allowed_run_types``); a backfill run that starts anyway (Airflow 3.0
and 3.1, or a team that allows backfills) ends in its first task, before any Kalshi request.

The second case runs for real: a DAG folder holding the README's hourly DAG file and the same DAG
built with ``allowed_run_types=None``, the backfill created by the CLI, then Airflow's scheduler
(LocalExecutor) and API server (the tasks' execution API) until the backfill's runs finish.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.e2e.test_readme_dag_files import readme_dag_files
from tests.fixtures.airflow import AirflowHome, hour_of
from tests.fixtures.stack import StackProcess

pytestmark = pytest.mark.slow

HOURLY = "kalshi_total_resting_order_value"
ALLOWING = "kalshi_hourly_allowing_backfills"
PLAN, FETCH, LOAD = "accounts_to_read", "account_snapshot.fetch", "account_snapshot.load"
RUNS_TIMEOUT = 240  # seconds for the scheduler to finish both backfill runs, start-up included
#: What the plan task says, in its log, for a backfill run (pipelines/hours.py).
SAYS = "This is a backfill run, for the hour {hour:%Y-%m-%d %H:00} UTC. Kalshi reports only the value now"

ALLOWING_DAG_FILE = f'''"""Airflow DAG: the hourly DAG as a team allowing backfills would build it."""

from kalshi_provider.pipelines.hourly import hourly_dag

dag = hourly_dag("{ALLOWING}", kalshi_conn_ids=["kalshi_backfilled"], allowed_run_types=None)
'''


@pytest.fixture
def home(airflow_home: AirflowHome, tmp_path: Path, simulator, kalshi_account) -> AirflowHome:
    """The README's hourly DAG file and the DAG allowing backfills, registered as the DAG processor
    registers them; ``kalshi_backfilled`` is a simulator account of its own."""
    folder = tmp_path / "dags"
    folder.mkdir()
    [(name, text)] = [(name, text) for name, text in readme_dag_files() if name == f"{HOURLY}.py"]
    (folder / name).write_text(text)
    (folder / f"{ALLOWING}.py").write_text(ALLOWING_DAG_FILE)
    airflow_home.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(folder)
    airflow_home.set_kalshi_connection("kalshi_backfilled", kalshi_account, simulator.base_url)
    airflow_home.set_connection("kalshi_warehouse", "sqlite", host=str(tmp_path / "warehouse.db"))
    _must(airflow_home.airflow("dag-processor", "--num-runs", "1", timeout=300))
    return airflow_home


def _must(done):
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _backfill(home: AirflowHome, dag_id: str, first: datetime, last: datetime):
    return home.airflow(
        *("backfill", "create", "--dag-id", dag_id),
        *("--from-date", first.isoformat(), "--to-date", last.isoformat()),
        timeout=300,
    )


def _backfill_runs(home: AirflowHome, dag_id: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(home.path / "airflow.db") as db:
        query = "SELECT run_id, state, run_after FROM dag_run WHERE dag_id = ? AND run_type = 'backfill'"
        return db.execute(query + " ORDER BY id", (dag_id,)).fetchall()


def _hours_ago(hours: int) -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


def test_the_dag_refuses_a_backfill_up_front(home: AirflowHome, simulator):
    """Airflow 3.2+: ``airflow backfill create`` (and the UI's dialog, through the same API check)
    refuses, and the DAG's details say it is not backfillable, which hides the UI's Backfill."""
    refused = _backfill(home, HOURLY, _hours_ago(3), _hours_ago(2))
    assert refused.returncode != 0
    assert f"Dag with dag_id: '{HOURLY}' does not allow backfill runs" in refused.stdout + refused.stderr
    assert _backfill_runs(home, HOURLY) == []
    details = _must(home.airflow("dags", "details", HOURLY, "--output", "json")).stdout
    [dag] = json.loads(details[details.index("[{") :].splitlines()[0])
    assert "backfill" not in dag["allowed_run_types"] and "scheduled" in dag["allowed_run_types"]
    assert str(dag["is_backfillable"]) == "False"


def test_a_backfill_run_ends_before_any_kalshi_request_and_says_why(
    home: AirflowHome, simulator, kalshi_account, tmp_path: Path
):
    first, last = _hours_ago(3), _hours_ago(2)
    _must(home.airflow("dags", "unpause", ALLOWING))
    _must(_backfill(home, ALLOWING, first, last))
    assert [state for _, state, _ in _backfill_runs(home, ALLOWING)] == ["queued", "queued"]

    with _scheduler_and_api_server(home, tmp_path / "logs") as servers:
        deadline = time.monotonic() + RUNS_TIMEOUT
        while not all(state in ("success", "failed") for _, state, _ in _backfill_runs(home, ALLOWING)):
            assert time.monotonic() < deadline, f"still {_backfill_runs(home, ALLOWING)}\n{servers.tails()}"
            time.sleep(2)
        # A task's log is complete only once its supervisor has flushed it, which may come after
        # the run's state: wait for the message before the servers stop.
        for run_id, _, run_after in _backfill_runs(home, ALLOWING):
            while not _task_log(home, run_id).count(SAYS.format(hour=hour_of(run_after))):
                assert time.monotonic() < deadline, f"{_task_log(home, run_id)}\n{servers.tails()}"
                time.sleep(0.5)

    runs = _backfill_runs(home, ALLOWING)
    assert [state for _, state, _ in runs] == ["success", "success"]  # skipped is not failed
    with sqlite3.connect(home.path / "airflow.db") as db:
        states = db.execute(
            "SELECT run_id, task_id, state FROM task_instance WHERE dag_id = ? ORDER BY run_id, task_id",
            (ALLOWING,),
        ).fetchall()
    assert states == sorted(
        (run_id, task, "skipped") for run_id, _, _ in runs for task in (PLAN, FETCH, LOAD)
    )
    assert [r for r in simulator.requests if r.key_id == kalshi_account.key_id] == []
    assert not (tmp_path / "warehouse.db").exists()
    assert [hour_of(run_after) for _, _, run_after in runs] == [first, last]


def _task_log(home: AirflowHome, run_id: str) -> str:
    """Every attempt's log of the first task of ``run_id``: on a loaded machine the scheduler may
    start a second attempt when the first is slow to start, and either may say why it skipped."""
    folder = home.path / "logs" / f"dag_id={ALLOWING}" / f"run_id={run_id}" / f"task_id={PLAN}"
    return "".join(log.read_text() for log in sorted(folder.glob("attempt=*.log")))


class _scheduler_and_api_server:
    """Airflow's scheduler (LocalExecutor, no log server) and API server for ``home``, each in its
    own process group, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, home: AirflowHome, log_dir: Path) -> None:
        log_dir.mkdir()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.env = {
            **home.env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            # Only the backfill's runs: no scheduled run of the DAG's current hour.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        self.cwd = home.path
        airflow = str(home.bin / "airflow")
        self.processes = [
            StackProcess(
                "api-server", [airflow, "api-server", "--port", str(port)], log_dir / "api-server.log"
            ),
            StackProcess("scheduler", [airflow, "scheduler", "--skip-serve-logs"], log_dir / "scheduler.log"),
        ]

    def tails(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.log.read_text(errors='replace')[-chars:]}" for p in self.processes
        )

    def __enter__(self) -> _scheduler_and_api_server:
        for process in self.processes:
            process.start(self.env, self.cwd)
        return self

    def __exit__(self, *exc_info) -> None:
        for process in self.processes:
            process.signal_group(signal.SIGTERM)
        for process in self.processes:
            if not process.wait(30):
                process.signal_group(signal.SIGKILL)
                process.wait(10)
