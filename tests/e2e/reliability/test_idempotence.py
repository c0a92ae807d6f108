"""Loading an hour twice, or twice at the same moment, leaves one row: the earliest observation.

The DAG's load path is ``kalshi_provider.pipelines.load.load_reading`` (what the ``load`` task calls
with the ``fetch`` task's XCom); these tests drive it the way Airflow does: in a DAG run, in this
process, and from two separate processes at once against the same warehouse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from kalshi_provider.pipelines.load import load_reading
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import BREAKDOWN_SUFFIX, read_snapshots, upgrade_warehouse
from kalshi_provider.readings import AccountReading, RestingOrderValue, ShardAmount
from tests.e2e.reliability.harness import FAST_EXTRAS, LOAD, cap_retry_delay, run_dag
from tests.fixtures.airflow import hour_of, postgres_warehouse
from tests.fixtures.connections import conn_json
from tests.fixtures.gates import writers_held

BASE_HOUR = datetime(2026, 3, 1, 0, tzinfo=timezone.utc)
WAIT_LIMIT_SECONDS = 120  # a deadline for waiting on processes, not a timing assertion


# -- a warehouse per dialect, as the DAG's ``kalshi_warehouse`` connection -------------------------


class Target:
    def __init__(self, dialect: str, engine, conn: str, schema: str | None) -> None:
        self.dialect, self.engine, self.conn, self.schema = dialect, engine, conn, schema

    def table(self, suffix: str = "") -> str:
        name = DEFAULT_TABLE + suffix
        return f"{self.schema}.{name}" if self.schema else name

    def rows(self) -> list[dict]:
        return read_snapshots(self.engine, schema=self.schema, include_breakdown=True)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def target(request, tmp_path, monkeypatch):
    if request.param == "sqlite":
        path = tmp_path / "warehouse.db"
        conn = conn_json("sqlite", host=str(path))
        engine, schema = create_engine(f"sqlite:///{path}"), None
    elif request.param == "postgresql":
        url = make_url(request.getfixturevalue("postgres_url"))
        schema = request.getfixturevalue("postgres_schema")
        conn = conn_json(
            "postgres",
            host=url.host,
            port=url.port,
            login=url.username,
            password=url.password,
            schema=url.database,
        )
        engine = create_engine(url)
    else:  # MariaDB through Airflow's MySQL connection; its database is the test's own
        database = request.getfixturevalue("mariadb_database")
        url = make_url(request.getfixturevalue("mariadb_url")).set(database=database)
        conn = conn_json(
            "mysql", host=url.host, port=url.port, login=url.username, password=url.password, schema=database
        )
        engine, schema = create_engine(url), None
    monkeypatch.setenv("AIRFLOW_CONN_KALSHI_WAREHOUSE", conn)
    yield Target(request.param, engine, conn, schema)
    engine.dispose()


def reading(cents: int, observed_at: datetime, account: str = "kalshi_default") -> dict:
    """The fetch task's XCom value, as the operator returns it."""
    breakdown = (ShardAmount(0, str(Decimal(cents) / 100)),)
    return AccountReading(account, observed_at, RestingOrderValue(cents, breakdown)).to_xcom()


def load(target: Target, item: dict, run_after: datetime, run_id: str) -> dict:
    return load_reading(
        item,
        run_after=run_after,
        dag_run_id=run_id,
        warehouse_conn_id="kalshi_warehouse",
        table=DEFAULT_TABLE,
        schema=target.schema,
        max_lateness_minutes=30,
    )


# -- the same hour, loaded again -------------------------------------------------------------------


def test_the_same_hour_loaded_again_keeps_one_row_with_the_earliest_observation(target):
    hour = BASE_HOUR
    first = load(target, reading(100, hour + timedelta(minutes=1)), hour, "run-1")
    later = load(target, reading(200, hour + timedelta(minutes=2)), hour, "run-2")
    earlier = load(target, reading(300, hour + timedelta(seconds=30)), hour, "run-3")
    again = load(target, reading(300, hour + timedelta(seconds=30)), hour, "run-4")

    assert [first["written"], later["written"], earlier["written"], again["written"]] == [
        True,
        False,
        True,
        True,  # the row holds this very observation (a retried load of the same reading)
    ]
    (row,) = target.rows()
    assert row["total_resting_order_value_cents"] == 300
    assert row["observed_at"] == hour + timedelta(seconds=30)
    assert row["dag_run_id"] == "run-3"  # the same observation again changes nothing
    assert [entry["shard_resting_order_value_dollars"] for entry in row["breakdown"]] == [Decimal("3.000000")]


@pytest.mark.slow
def test_the_dag_run_twice_for_one_hour_leaves_the_first_runs_row(
    airflow_home, simulator, make_kalshi_account, postgres_url, postgres_schema
):
    """Two DAG runs of the same hour on PostgreSQL: one row, the first run's (earlier) reading."""
    home = cap_retry_delay(airflow_home)
    account = make_kalshi_account(total_resting_order_value=111)
    home.set_kalshi_connection("kalshi_default", account, simulator.base_url, FAST_EXTRAS)
    warehouse = postgres_warehouse(home, make_url(postgres_url), postgres_schema)
    try:
        first_after = datetime.now(timezone.utc) - timedelta(minutes=1)
        second_after = first_after + timedelta(microseconds=1)
        if hour_of(second_after.isoformat()) != hour_of(first_after.isoformat()):
            second_after = first_after - timedelta(microseconds=1)
        first = run_dag(home, warehouse.conf, run_after=first_after.isoformat())
        (first_row,) = warehouse.rows()
        simulator.set_value(account.key_id, 222)
        second = run_dag(home, warehouse.conf, run_after=second_after.isoformat())
        assert (first.state, second.state) == ("success", "success"), second.output[-4000:]
        assert second.tasks[(LOAD, 0)] == ("success", 1)
        assert warehouse.rows() == [first_row]  # re-running a finished hour leaves its row as it was
        assert first_row["snapshot_hour"] == hour_of(first_after.isoformat())
        assert first_row["total_resting_order_value_cents"] == 111
        assert first_row["dag_run_id"] == first.run_id
        assert "it holds an earlier observation" in second.output
        # Both runs' readings stay visible: the re-run's as kept out by the earlier observation.
        seen = [
            (row["dag_run_id"], row["outcome"], row["total_resting_order_value_cents"])
            for row in warehouse.history()
        ]
        total = [entry for entry in seen if entry[2] is not None]
        assert total == [(first.run_id, "hour_row", 111), (second.run_id, "earlier_kept", 222)]
        # The balances and the subaccounts' lists: each run's, the re-run's kept out likewise.
        others = sorted(
            (row["endpoint"], row["dag_run_id"] == first.run_id, row["outcome"])
            for row in warehouse.history()
            if row["total_resting_order_value_cents"] is None
        )
        assert others == [
            ("/portfolio/balance", False, "earlier_kept"),
            ("/portfolio/balance", True, "hour_row"),
            ("/portfolio/subaccounts/balances", False, "earlier_kept"),
            ("/portfolio/subaccounts/balances", True, "hour_row"),
        ]
    finally:
        warehouse.dispose()


# -- two loads of the same hours at the same moment, from two processes ----------------------------

_LOADER = r"""
import json, sys, time
from datetime import datetime
from pathlib import Path

import kalshi_provider.pipelines.warehouse  # noqa: F401  (imported before the start line, like a warm worker)
from airflow.sdk import BaseHook  # noqa: F401
from kalshi_provider.pipelines.load import load_reading

spec = json.loads(sys.argv[1])
go = Path(spec["go"])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
written = []
for item in spec["loads"]:
    result = load_reading(
        item["reading"], run_after=datetime.fromisoformat(item["run_after"]), dag_run_id=item["run_id"],
        warehouse_conn_id="kalshi_warehouse", table=spec["table"], schema=spec["schema"],
        max_lateness_minutes=30,
    )
    written.append(result["written"])
print(json.dumps(written), flush=True)
"""


def _loader_spec(target: Target, name: str, hours: list[datetime], go: Path) -> dict:
    """Loader ``a`` observes later on even hours, ``b`` on odd ones: each wins half the hours (the
    earlier observation wins)."""
    loads = []
    for index, hour in enumerate(hours):
        later = (index % 2 == 0) == (name == "a")
        cents = (1000 if name == "a" else 2000) + index
        observed = hour + timedelta(minutes=2 if later else 1)
        loads.append(
            {"reading": reading(cents, observed), "run_after": hour.isoformat(), "run_id": f"{name}-{index}"}
        )
    return {"go": str(go), "loads": loads, "table": DEFAULT_TABLE, "schema": target.schema}


class _Loader:
    """One loader process; its output goes to files (a full pipe would stall it at the gate)."""

    def __init__(self, target: Target, name: str, spec: dict, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        env.update(AIRFLOW_CONN_KALSHI_WAREHOUSE=target.conn, AIRFLOW_HOME=str(tmp_path / "airflow-home"))
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _LOADER, json.dumps(spec)], stdout=out, stderr=err, env=env
            )

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while "ready" not in self.lines():
            assert self.process.poll() is None, self.err.read_text()[-4000:]
            assert time.monotonic() < deadline, "the loader did not start"
            time.sleep(0.05)

    def written(self) -> list[bool]:
        assert self.process.wait(WAIT_LIMIT_SECONDS) == 0, self.err.read_text()[-4000:]
        return json.loads(self.lines()[-1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.mark.slow
def test_two_processes_loading_the_same_hours_at_once_leave_the_earlier_observation(target, tmp_path):
    hours = [BASE_HOUR + timedelta(hours=i) for i in range(10)]
    upgrade_warehouse(target.engine, schema=target.schema)  # so the gate below can lock the table
    go = tmp_path / "go"
    specs = {name: _loader_spec(target, name, hours, go) for name in ("a", "b")}
    loaders = {name: _Loader(target, name, spec, tmp_path) for name, spec in specs.items()}
    try:
        for loader in loaders.values():
            loader.wait_ready()
        # The gate: both loaders block on the table, then start writing at the same moment.
        with writers_held(target.engine, target.table()) as wait_for:
            go.touch()
            wait_for(2)
        results = {name: loader.written() for name, loader in loaders.items()}
    finally:
        for loader in loaders.values():
            loader.stop()

    rows = target.rows()
    assert [row["snapshot_hour"] for row in rows] == hours  # exactly one row per hour
    for index, row in enumerate(rows):
        winner = "b" if index % 2 == 0 else "a"  # the one observing earlier that hour
        expected = specs[winner]["loads"][index]
        assert row["dag_run_id"] == expected["run_id"]
        expected_cents = expected["reading"]["resting_order_value"]["total_cents"]
        assert row["total_resting_order_value_cents"] == expected_cents
        assert row["observed_at"] == row["snapshot_hour"] + timedelta(minutes=1)
        assert [str(entry["shard_resting_order_value_dollars"]) for entry in row["breakdown"]] == [
            f"{Decimal(row['total_resting_order_value_cents']) / 100:.6f}"
        ]
        assert results[winner][index] is True  # the earlier observation always reports it wrote
    with target.engine.connect() as conn:
        breakdown_rows = conn.execute(
            text(f"SELECT count(*) FROM {target.table(BREAKDOWN_SUFFIX)}")
        ).scalar_one()
    assert breakdown_rows == len(hours)  # no breakdown left over from the losing observation


# -- a failed load, then a rerun -------------------------------------------------------------------


def _install_failing_trigger(target: Target) -> None:
    upgrade_warehouse(target.engine, schema=target.schema)
    breakdown = target.table(BREAKDOWN_SUFFIX)
    with target.engine.begin() as conn:
        if target.dialect == "postgresql":
            conn.exec_driver_sql(
                f"CREATE FUNCTION {target.schema}.fail_loads() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'simulated warehouse failure'; END $$;"
                f" CREATE TRIGGER fail_loads BEFORE INSERT ON {breakdown}"
                f" FOR EACH ROW EXECUTE FUNCTION {target.schema}.fail_loads();"
            )
        elif target.dialect == "mariadb":
            conn.exec_driver_sql(
                f"CREATE TRIGGER fail_loads BEFORE INSERT ON {breakdown} FOR EACH ROW"
                " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'simulated warehouse failure'"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TRIGGER fail_loads BEFORE INSERT ON {breakdown}"
                " BEGIN SELECT RAISE(ABORT, 'simulated warehouse failure'); END"
            )


def _drop_trigger(target: Target) -> None:
    on = f" ON {target.table(BREAKDOWN_SUFFIX)}" if target.dialect == "postgresql" else ""
    with target.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER fail_loads{on}")


def test_a_rerun_after_a_load_failed_mid_transaction_completes_the_hour(target):
    hour = BASE_HOUR
    _install_failing_trigger(target)
    with pytest.raises(Exception, match="simulated warehouse failure"):
        load(target, reading(100, hour + timedelta(minutes=1)), hour, "run-1")
    # The totals row had gone in when the breakdown insert failed: the whole load was rolled back.
    assert target.rows() == []

    _drop_trigger(target)
    assert load(target, reading(100, hour + timedelta(minutes=1)), hour, "run-1-retry")["written"]
    (row,) = target.rows()
    assert (row["dag_run_id"], row["total_resting_order_value_cents"]) == ("run-1-retry", 100)
    assert [entry["shard_resting_order_value_dollars"] for entry in row["breakdown"]] == [Decimal("1.000000")]
