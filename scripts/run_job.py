"""Run ``kalshi_total_resting_order_value`` once with ``airflow dags test`` and show the rows.

Kalshi: ``AIRFLOW_CONN_KALSHI_DEFAULT`` if set; else ``KALSHI_API_KEY_ID`` with
``KALSHI_PRIVATE_KEY_PATH`` (and optional ``KALSHI_ENVIRONMENT``, ``KALSHI_BASE_URL``); else the
local simulator with a generated key. Warehouse: ``AIRFLOW_CONN_KALSHI_WAREHOUSE`` if set; else an
embedded SQLite file in AIRFLOW_HOME. AIRFLOW_HOME defaults to a folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from kalshi_provider.pipelines.settings import DEFAULT_TABLE, DEFAULT_WAREHOUSE_CONN_ID, HOURLY_DAG_ID

REPO = Path(__file__).resolve().parent.parent
DAG_ID = HOURLY_DAG_ID
STATE = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "airflow-provider-kalshi"


def main() -> int:
    env = airflow_env()
    airflow = str(Path(sys.executable).with_name("airflow"))
    print(f"AIRFLOW_HOME: {env['AIRFLOW_HOME']}")
    run_quietly([airflow, "db", "migrate"], env, "airflow db migrate")
    with kalshi_connection(env) as description:
        print(f"Kalshi: {description}")
        print(f"Warehouse: {warehouse_description(env)}")
        print(f"Running: airflow dags test {DAG_ID} ...")
        log_path = Path(env["AIRFLOW_HOME"]) / "last-dags-test.log"
        with log_path.open("w") as log:
            result = subprocess.run(
                [airflow, "dags", "test", DAG_ID], env=env, stdout=log, stderr=subprocess.STDOUT
            )
    state = latest_run_state(airflow, env)
    print(f"DAG run finished: {state} (full log: {log_path})")
    if result.returncode != 0 or state != "success":
        print(tail(log_path, 40), file=sys.stderr)
        return 1
    show_rows(env)
    return 0


def airflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(STATE / "airflow"))
    env.update(
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)  # for show_rows(), which reads the warehouse in this process
    return env


@contextmanager
def kalshi_connection(env: dict[str, str]):
    """Yield a description of the Kalshi connection in ``env``, starting the simulator if needed."""
    if env.get("AIRFLOW_CONN_KALSHI_DEFAULT"):
        yield "the connection in AIRFLOW_CONN_KALSHI_DEFAULT"
        return
    key_id, key_path = env.get("KALSHI_API_KEY_ID"), env.get("KALSHI_PRIVATE_KEY_PATH")
    if key_id and key_path:
        environment = env.get("KALSHI_ENVIRONMENT", "production")
        conn = {
            "conn_type": "kalshi",
            "login": key_id,
            "host": env.get("KALSHI_BASE_URL", ""),
            "extra": {"private_key_path": key_path, "environment": environment},
        }
        env["AIRFLOW_CONN_KALSHI_DEFAULT"] = json.dumps(conn)
        yield f"Kalshi {environment} with key {key_id} (from KALSHI_API_KEY_ID / KALSHI_PRIVATE_KEY_PATH)"
        return
    with simulator(env) as ready:
        env["AIRFLOW_CONN_KALSHI_DEFAULT"] = json.dumps(
            {
                "conn_type": "kalshi",
                "login": ready["key_id"],
                "host": ready["base_url"],
                "extra": {"private_key_path": ready["private_key_path"]},
            }
        )
        yield (
            f"local simulator at {ready['base_url']} (no Kalshi credentials set; "
            f"generated key {ready['key_id']} in {ready['private_key_path']})"
        )


@contextmanager
def simulator(env: dict[str, str]):
    with tempfile.TemporaryDirectory() as tmp:
        ready_file = Path(tmp) / "ready.json"
        command = [
            sys.executable,
            "-m",
            "kalshi_simulator",
            "--port",
            "0",
            "--state-dir",
            str(STATE / "simulator"),
            "--ready-file",
            str(ready_file),
        ]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not ready_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "The Kalshi simulator did not start; run it by hand to see why:\n  "
                        + " ".join(command)
                    )
                time.sleep(0.1)
            yield json.loads(ready_file.read_text())
        finally:
            process.terminate()
            process.wait(timeout=10)


def warehouse_description(env: dict[str, str]) -> str:
    if env.get("AIRFLOW_CONN_KALSHI_WAREHOUSE"):
        return "the connection in AIRFLOW_CONN_KALSHI_WAREHOUSE"
    return f"embedded SQLite file {Path(env['AIRFLOW_HOME']) / 'kalshi_warehouse.db'}"


def show_rows(env: dict[str, str]) -> None:
    from kalshi_provider.pipelines.warehouse import read_snapshots, warehouse_engine

    engine, description = warehouse_engine(DEFAULT_WAREHOUSE_CONN_ID)
    rows = read_snapshots(engine)[-5:]
    print(f"\nLatest rows in {DEFAULT_TABLE} ({description}):")
    columns = ["account", "snapshot_hour", "total_resting_order_value_cents", "observed_at", "dag_run_id"]
    print("  " + " | ".join(columns))
    for row in rows:
        print("  " + " | ".join(str(row[column]) for column in columns))
    engine.dispose()


def run_quietly(command: list[str], env: dict[str, str], label: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"{label} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}", file=sys.stderr)
        raise SystemExit(1)


def latest_run_state(airflow: str, env: dict[str, str]) -> str:
    """The state Airflow recorded for the newest run of the DAG (not a guess from the log)."""
    result = subprocess.run(
        [airflow, "dags", "list-runs", DAG_ID, "--output", "json"], env=env, capture_output=True, text=True
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(("[{", "[]"))]
    try:
        runs = json.loads(lines[-1])
    except (IndexError, ValueError):
        return "unknown"
    runs.sort(key=lambda run: run.get("run_after") or run.get("start_date") or "")
    return runs[-1]["state"] if runs else "unknown"


def tail(path: Path, lines: int) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
