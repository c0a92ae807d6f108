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
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

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
    from kalshi_provider.pipelines.warehouse import warehouse_engine

    engine, description = warehouse_engine(DEFAULT_WAREHOUSE_CONN_ID)
    try:
        print(f"\nWarehouse: {description}")
        print_latest_hour(engine, sys.stdout)
    finally:
        engine.dispose()


def print_latest_hour(engine: Any, out: TextIO, table_name: str = DEFAULT_TABLE) -> None:
    """Print every figure the warehouse holds for its latest hour, per account: the total resting
    order value and its shards, the balance and its shards, per shard the balance minus the resting
    order value (a difference computed here, not a Kalshi figure: see docs/tables.md), and every
    subaccount's balance with their sum."""
    from kalshi_provider.pipelines.warehouse import read_balances, read_snapshots, read_subaccounts

    totals = read_snapshots(engine, table_name=table_name, include_breakdown=True)
    balances = read_balances(engine, table_name=table_name)
    hours = [row["snapshot_hour"] for row in (*totals, *balances)]
    if not hours:
        print(f"No rows in {table_name} yet.", file=out)
        return
    hour = max(hours)
    totals_now = {row["account"]: row for row in totals if row["snapshot_hour"] == hour}
    balances_now = {row["account"]: row for row in balances if row["snapshot_hour"] == hour}
    subaccounts_now: dict[str, list[dict[str, Any]]] = {}
    for row in read_subaccounts(engine, table_name=table_name, since=hour):
        subaccounts_now.setdefault(row["account"], []).append(row)
    print(f"Hour {hour.isoformat()} in {table_name}:", file=out)
    for account in sorted({*totals_now, *balances_now}):
        print(f"  account {account}", file=out)
        total = totals_now.get(account)
        if total is None:
            print("    total resting order value: none stored for this hour", file=out)
        else:
            cents = total["total_resting_order_value_cents"]
            print(f"    total resting order value: {cents} cents (observed {total['observed_at']})", file=out)
            _shards(out, "per shard", total["breakdown"], "shard_resting_order_value_dollars")
            if total.get("breakdown_problem"):
                print(f"      breakdown left out: {total['breakdown_problem']}", file=out)
        balance = balances_now.get(account)
        if balance is None:
            print("    balance: none stored for this hour", file=out)
            continue
        print(
            f"    balance: {balance['balance_dollars']} dollars ({balance['balance_cents']} cents), "
            f"portfolio value {balance['portfolio_value_cents']} cents (observed {balance['observed_at']})",
            file=out,
        )
        if balance["total_refusal_reason"]:
            print(f"      Kalshi refused the total: {balance['total_refusal_reason']}", file=out)
        _shards(out, "per shard", balance["breakdown"], "shard_balance_dollars")
        _shards(
            out,
            "balance minus resting order value per shard (computed here, not a Kalshi figure)",
            balance["balance_minus_resting"],
            "shard_balance_minus_resting_dollars",
        )
        _subaccounts(out, subaccounts_now.get(account, []))


def _subaccounts(out: TextIO, rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("    subaccounts: none stored for this hour (see the history for why)", file=out)
        return
    by_number: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_number.setdefault(row["subaccount_number"], []).append(row)
    total = sum((row["balance_dollars"] for row in rows), Decimal(0))
    print(f"    subaccounts: {len(by_number)}, balances summing to {total} dollars", file=out)
    for number, entries in sorted(by_number.items()):
        own = sum((row["balance_dollars"] for row in entries), Decimal(0))
        _shards(out, f"subaccount {number} ({own} dollars) per shard", entries, "balance_dollars")


def _shards(out: TextIO, label: str, entries: list[dict[str, Any]], amount: str) -> None:
    shown = ", ".join(
        f"{entry['exchange_index']}: {'unknown' if entry[amount] is None else entry[amount]}"
        for entry in entries
    )
    print(f"      {label}: {shown or 'none'}", file=out)


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
