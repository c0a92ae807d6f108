"""End to end: ``airflow dags test`` of the DAG vs a no-op DAG of the same shape.

Each run gets a fresh copy of a migrated AIRFLOW_HOME (as tests/fixtures/airflow.py does), so the
embedded SQLite warehouse and the metadata DB start empty. Wall time is the ``airflow`` process's
whole life; memory is the peak of the summed RSS of its process tree, sampled every 20 ms with
psutil (``ru_maxrss`` from ``wait4``, the largest single process, is kept too, and the CPU time
``wait4`` reports, which machine load disturbs far less than the wall time).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from _util import AIRFLOW, BENCH_DIR, REPO, base_env, copy_airflow_home, migrate_airflow_home

DAG_ID = "kalshi_total_resting_order_value"
FLOOR_DAG_ID = "benchmark_e2e_floor"
_POLL_SECONDS = 0.02


def migrated_template(workdir: Path) -> Path:
    return migrate_airflow_home(workdir / "airflow-home-template")


def dags_folder(workdir: Path, source: Path) -> Path:
    """A temp dags folder holding only ``source``: ``dags test`` parses its whole folder."""
    folder = Path(tempfile.mkdtemp(prefix="dags-", dir=workdir))
    shutil.copy(source, folder / source.name)
    return folder


def _fresh_home(template: Path, workdir: Path) -> Path:
    return copy_airflow_home(template, Path(tempfile.mkdtemp(prefix="airflow-home-", dir=workdir)) / "home")


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_once(
    template: Path, workdir: Path, dags_folder: Path, dag_id: str, kalshi_conn: str | None
) -> dict[str, Any]:
    home = _fresh_home(template, workdir)
    env = base_env(home)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    if kalshi_conn:
        env["AIRFLOW_CONN_KALSHI_DEFAULT"] = kalshi_conn
    log_path = home / "dags-test.log"
    with log_path.open("w") as log:
        start = time.perf_counter()
        popen = subprocess.Popen(
            [AIRFLOW, "dags", "test", dag_id], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        process = psutil.Process(popen.pid)
        peak = 0
        while True:
            pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss(process))
            time.sleep(_POLL_SECONDS)
        wall = time.perf_counter() - start
    popen.returncode = os.waitstatus_to_exitcode(status)
    with sqlite3.connect(home / "airflow.db") as db:
        row = db.execute(
            "SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    state = row[0] if row else None
    warehouse_rows = None
    warehouse = home / "kalshi_warehouse.db"
    if warehouse.exists():
        with sqlite3.connect(warehouse) as db:
            warehouse_rows = db.execute("SELECT count(*) FROM kalshi_total_resting_order_value").fetchone()[0]
    result = {
        "wall_s": wall,
        "peak_tree_rss_mib": peak / 2**20,
        "maxrss_mib": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "returncode": popen.returncode,
        "state": state,
        "warehouse_rows": warehouse_rows,
    }
    if popen.returncode != 0 or state != "success":
        result["log_tail"] = log_path.read_text()[-3000:]
    else:
        shutil.rmtree(home.parent, ignore_errors=True)
    return result


def measure(workdir: Path, kalshi_conn: str, samples: int) -> dict[str, list[dict[str, Any]]]:
    """Alternate ours and the floor ``samples`` times each (order swapped every round)."""
    template = migrated_template(workdir)
    ours_folder = dags_folder(workdir, REPO / "dags" / f"{DAG_ID}.py")
    floor_folder = dags_folder(workdir, BENCH_DIR / "floor_dags" / "e2e_floor.py")
    runs = {
        "ours": lambda: run_once(template, workdir, ours_folder, DAG_ID, kalshi_conn),
        "floor": lambda: run_once(template, workdir, floor_folder, FLOOR_DAG_ID, None),
    }
    out: dict[str, list[dict[str, Any]]] = {"ours": [], "floor": []}
    names = list(runs)
    for round_ in range(samples):
        for name in names if round_ % 2 == 0 else names[::-1]:
            out[name].append(runs[name]())
    return out
