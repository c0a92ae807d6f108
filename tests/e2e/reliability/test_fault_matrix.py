"""The fault matrix (docs/fault-matrix.md), run end to end by Airflow against the simulator.

Rows of group ``batch`` are accounts of one shared DAG run on a SQLite warehouse (see
harness.py for why and how); the others (a late run, the warehouse cases on PostgreSQL) need
DAG runs of their own. For every row: the outcome, the try number of the task that decides it
(1 means it failed at once: an error no retry can fix raises AirflowFailException), the rows in
the warehouse afterwards (one correct row or none), what the log says, how many requests Kalshi
saw, and a time bound that proves retries stop.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from kalshi_provider.pipelines.warehouse import upgrade_warehouse
from tests.e2e.reliability.harness import (
    FAST_EXTRAS,
    FETCH,
    LOAD,
    PLAN,
    SETUPS,
    TASK_TRIES,
    Case,
    cap_retry_delay,
    closed_port,
    run_dag,
)
from tests.e2e.reliability.matrix import CASES, markdown_table
from tests.e2e.reliability.shared import matrix_run_once
from tests.fixtures.airflow import hour_of, postgres_warehouse, sqlite_warehouse

DOC = Path(__file__).resolve().parents[3] / "docs" / "fault-matrix.md"
BATCH = [case for case in CASES if case.group == "batch"]
#: The shared run does every batch case's tries one after another; far above what it needs.
BATCH_RUN_BOUND_SECONDS = 600


# -- the doc and the code agree --------------------------------------------------------------------


def _doc_table_lines() -> list[str]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| case |"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def test_the_doc_table_mirrors_the_code_table():
    """docs/fault-matrix.md's table is the code's table, row by row and cell by cell."""
    expected = markdown_table().splitlines()
    actual = _doc_table_lines()
    assert [_cells(line) for line in actual] == [_cells(line) for line in expected], (
        "docs/fault-matrix.md is out of date: regenerate its table with "
        "`.venv/bin/python -m tests.e2e.reliability.matrix`"
    )


def test_the_table_is_well_formed():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert {case.setup for case in CASES} == set(SETUPS), "every way of making a fault is used"
    for case in CASES:
        assert case.outcome in ("ok", "recovered", "failed", "skipped", "paused", "failed, rerun ok"), case.id
        assert 1 <= case.tries <= TASK_TRIES and case.rows in (0, 1) and case.balances in (0, 1), case.id
        stored = case.outcome not in ("failed", "skipped", "paused")
        # Without FCM access there is no total to store; a balance left out never costs the total.
        assert case.rows == (1 if stored and case.account.get("fcm_member", True) else 0), case.id
        assert case.balances <= int(stored), case.id
        assert "|" not in case.message + case.fault + case.how, case.id


# -- the shared DAG run ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_run(request):
    """Every ``batch`` row as one account of a single DAG run; (run result, outcome per case id)."""
    run = matrix_run_once(request)
    return run.result, run.outcomes


@pytest.mark.slow
def test_the_shared_run_is_bounded_and_plans_every_account(matrix_run):
    result, outcomes = matrix_run
    assert result.task_state(PLAN, -1) == "success", result.output[-4000:]
    assert result.seconds < BATCH_RUN_BOUND_SECONDS
    assert set(outcomes) == {case.id for case in BATCH}
    # Some accounts failed, so the run did; the others still wrote their rows.
    assert result.state == "failed"


def _check_batch_case(case: Case, matrix_run) -> float:
    result, outcomes = matrix_run
    outcome = outcomes[case.id]
    fetch, load = outcome.fetch, outcome.load
    context = f"{case.id}: fetch={fetch}, load={load}\n{outcome.log[-6000:]}"

    if case.outcome in ("ok", "recovered"):
        assert (fetch.state, load.state) == ("success", "success"), context
    elif case.outcome == "paused":  # the fetch hands over the pause, the load records it and skips
        assert (fetch.state, load.state) == ("success", "skipped"), context
    else:
        assert (fetch.state, load.state) == ("failed", "upstream_failed"), context
    assert fetch.try_number == case.tries, context
    if case.outcome == "failed" and case.tries == 1:
        assert "AirflowFailException" in outcome.log, context  # failed at once, on every Airflow line

    assert case.message in outcome.log, context

    assert len(outcome.rows) == case.rows, outcome.rows
    if case.rows:
        (row,) = outcome.rows
        assert row["total_resting_order_value_cents"] == case.value
        assert row["dag_run_id"] == result.run_id
        assert row["snapshot_hour"] == hour_of(result.run_after)
        if case.breakdown:
            assert (
                sum(entry["shard_resting_order_value_dollars"] for entry in row["breakdown"]) * 100
                == case.value
            )
            assert row["breakdown_problem"] is None
        else:  # the total is kept, the breakdown left out and noted for the quality check
            assert row["breakdown"] == [] and "more than 6 decimal places" in row["breakdown_problem"]

    assert len(outcome.balances) == case.balances, outcome.balances
    if case.balances:
        (balance,) = outcome.balances
        assert (balance["balance_cents"], balance["dag_run_id"]) == (500000, result.run_id)
        assert balance["snapshot_hour"] == hour_of(result.run_after)
        margins = {
            entry["exchange_index"]: entry["shard_balance_minus_resting_dollars"]
            for entry in balance["balance_minus_resting"]
        }
        if case.rows and case.breakdown:  # both breakdowns complete: every shard's free margin known
            shares = {0: "2000.00", 1: "1500.00", 2: "1000.00", 3: "500.00"}  # the simulator's split
            resting = {
                entry["exchange_index"]: entry["shard_resting_order_value_dollars"]
                for entry in outcome.rows[0]["breakdown"]
            }
            assert margins == {index: Decimal(shares[index]) - resting[index] for index in shares}
        else:  # no resting order value to subtract (no FCM access, or its breakdown left out)
            assert set(margins.values()) == {None}
    # Every answer the load was given is in the history; a failed fetch gives the load nothing.
    # signed requests: the total, the balance, the subaccounts (a pause stops after the first)
    expected = {"ok": 3, "recovered": 3, "paused": 1}.get(case.outcome, 0)
    assert len(outcome.history) == expected, [(h["endpoint"], h["outcome"]) for h in outcome.history]
    if case.outcome == "paused":
        [paused] = outcome.history
        assert (paused["endpoint"], paused["outcome"]) == ("/exchange/status", "exchange_paused")
        assert "estimated resume time 2026-12-10 10:00 UTC" in paused["note"]
    # ... taken by the fetch's last try: a task retry shows in the history.
    assert {row["fetch_try_number"] for row in outcome.history} <= {case.tries}

    if case.requests is not None:
        # A try that reads the total and the balance also lists the subaccounts: one request more.
        third = 1 if case.outcome in ("ok", "recovered") else 0
        assert len(outcome.requests) == case.requests + third, [r["status"] for r in outcome.requests]
    signatures = [request["signature"] for request in outcome.requests]
    assert len(set(signatures)) == len(signatures), "an attempt re-sent an old signature"
    if case.min_gap is not None:
        first, second = outcome.requests[:2]
        assert second["received_at"] - first["received_at"] >= case.min_gap

    assert outcome.busy_seconds <= case.bound, f"{case.id} took {outcome.busy_seconds:.1f} s"
    return outcome.busy_seconds


# -- cases with DAG runs of their own --------------------------------------------------------------


def _kalshi_default(home, simulator, account) -> None:
    home.set_kalshi_connection("kalshi_default", account, simulator.base_url, FAST_EXTRAS)


def _with_subaccounts(requests: int) -> int:
    """A case whose every fetch try reads the total and the balance also lists the subaccounts: the
    matrix counts two requests a try, the fetch now sends three."""
    return requests * 3 // 2


def _requests_of(simulator, account) -> list:
    return [request for request in simulator.requests if request.key_id == account.key_id]


def _skipped_at_load(case: Case, request, run_after: datetime, max_lateness_minutes: int) -> float:
    """One run for ``run_after``: Kalshi is asked, and the load skips because of when it answered."""
    home = cap_retry_delay(request.getfixturevalue("airflow_home"))
    simulator = request.getfixturevalue("simulator")
    account = request.getfixturevalue("make_kalshi_account")()
    _kalshi_default(home, simulator, account)
    warehouse = sqlite_warehouse(home, request.getfixturevalue("tmp_path") / "warehouse.db")
    try:
        conf = {**warehouse.conf, "max_lateness_minutes": max_lateness_minutes}
        result = run_dag(home, conf, run_after=run_after.isoformat())
        assert result.state == "success", result.output[-4000:]
        assert result.tasks[(FETCH, 0)] == ("success", 1)
        assert result.tasks[(LOAD, 0)] == ("skipped", case.tries)
        assert case.message in result.output
        assert len(_requests_of(simulator, account)) == _with_subaccounts(case.requests)
        assert len(warehouse.rows()) == case.rows
        # The load skipped after recording the three readings, with the reason they count for no hour.
        history = warehouse.history()
        assert [row["outcome"] for row in history] == ["not_in_hour"] * 3
        assert all(case.message in row["note"] for row in history)
    finally:
        warehouse.dispose()
    return result.seconds


def _current_hour(margin: timedelta) -> datetime:
    """The current UTC hour, once at least ``margin`` of it is left (waits at most ``margin``)."""
    now = datetime.now(timezone.utc)
    hour = now.replace(minute=0, second=0, microsecond=0)
    left = hour + timedelta(hours=1) - now
    if left < margin:
        time.sleep(left.total_seconds() + 1)
        hour += timedelta(hours=1)
    return hour


def _late_run(case: Case, request) -> float:
    # run_after now (inside the hour, with room for the run to finish in it): any answer is late.
    _current_hour(timedelta(minutes=1))
    return _skipped_at_load(case, request, datetime.now(timezone.utc), max_lateness_minutes=0)


def _observed_after_its_hour(case: Case, request) -> float:
    # Triggered 2 s before this hour began, so Kalshi answers in the next hour (this one), well
    # within the lateness limit: the reading must not be stored under the hour before.
    hour = _current_hour(timedelta(minutes=1))
    return _skipped_at_load(case, request, hour - timedelta(seconds=2), max_lateness_minutes=120)


_FAILING_TRIGGER = """
CREATE SEQUENCE {schema}.load_attempts;
CREATE FUNCTION {schema}.fail_loads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('{schema}.load_attempts') <= {failures} THEN
        RAISE EXCEPTION 'simulated warehouse failure in the middle of the load transaction';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fail_loads BEFORE INSERT ON {schema}.kalshi_total_resting_order_value_breakdown
    FOR EACH ROW EXECUTE FUNCTION {schema}.fail_loads();
"""


class _PostgresCase:
    """The Kalshi connection and a PostgreSQL warehouse in the test's own schema."""

    def __init__(self, request) -> None:
        self.home = cap_retry_delay(request.getfixturevalue("airflow_home"))
        self.simulator = request.getfixturevalue("simulator")
        self.account = request.getfixturevalue("make_kalshi_account")()
        _kalshi_default(self.home, self.simulator, self.account)
        self.url = make_url(request.getfixturevalue("postgres_url"))
        self.schema = request.getfixturevalue("postgres_schema")
        self.warehouse = postgres_warehouse(self.home, self.url, self.schema)
        # The run and its rerun stand for the same hour: a minute ago (well within
        # max_lateness_minutes), and a microsecond apart (Airflow derives the run id from it).
        # Both inside the current hour, with room for the runs to answer in it (Kalshi's answers
        # must be observed in the hour of run_after).
        hour = _current_hour(timedelta(minutes=4))
        first = max(datetime.now(timezone.utc) - timedelta(minutes=1), hour)
        second = first + timedelta(microseconds=1)
        self.run_afters = [first.isoformat(), second.isoformat()]
        self.hour = hour_of(first.isoformat())
        self.seconds = 0.0
        request.addfinalizer(self.warehouse.dispose)

    def run(self):
        result = run_dag(self.home, self.warehouse.conf, run_after=self.run_afters.pop(0))
        self.seconds += result.seconds
        return result

    def install_failing_trigger(self, failures: int) -> None:
        upgrade_warehouse(self.warehouse.engine, schema=self.schema)
        with self.warehouse.engine.begin() as conn:
            conn.exec_driver_sql(_FAILING_TRIGGER.format(schema=self.schema, failures=failures))

    def drop_trigger(self) -> None:
        with self.warehouse.engine.begin() as conn:
            conn.execute(
                text(f"DROP TRIGGER fail_loads ON {self.schema}.kalshi_total_resting_order_value_breakdown")
            )

    def breakdown_rows(self) -> int:
        with self.warehouse.engine.connect() as conn:
            table = f"{self.schema}.kalshi_total_resting_order_value_breakdown"
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()

    def assert_one_row_for_the_hour(self, result) -> None:
        (row,) = self.warehouse.rows()
        assert row["dag_run_id"] == result.run_id
        assert row["snapshot_hour"] == self.hour
        assert row["total_resting_order_value_cents"] == 123456
        assert sum(entry["shard_resting_order_value_dollars"] for entry in row["breakdown"]) == Decimal(
            "1234.56"
        )
        (balance,) = self.warehouse.balances()  # written in the same transaction, or not at all
        assert (balance["dag_run_id"], balance["snapshot_hour"]) == (result.run_id, self.hour)
        assert len(balance["balance_minus_resting"]) == 4

    def requests(self) -> int:
        return len(_requests_of(self.simulator, self.account))


def _assert_load_failed(result, case: Case) -> None:
    assert result.state == "failed", result.output[-4000:]
    assert result.tasks[(FETCH, 0)] == ("success", 1)
    assert result.tasks[(LOAD, 0)] == ("failed", case.tries)
    assert case.message in result.output


def _warehouse_unreachable(case: Case, request) -> float:
    pg = _PostgresCase(request)
    with closed_port() as port:
        pg.warehouse.dispose()
        pg.warehouse = postgres_warehouse(pg.home, pg.url, pg.schema, port=port)
        first = pg.run()
    _assert_load_failed(first, case)
    assert pg.warehouse.rows() == []  # read from the real server: nothing was written

    pg.warehouse.dispose()
    pg.warehouse = postgres_warehouse(pg.home, pg.url, pg.schema)  # the warehouse is back
    second = pg.run()
    assert second.state == "success", second.output[-4000:]
    pg.assert_one_row_for_the_hour(second)
    assert pg.requests() == _with_subaccounts(case.requests)
    return pg.seconds


def _warehouse_fails_mid_transaction(case: Case, request) -> float:
    pg = _PostgresCase(request)
    pg.install_failing_trigger(failures=2)
    result = pg.run()
    assert result.state == "success", result.output[-4000:]
    assert result.tasks[(FETCH, 0)] == ("success", 1)
    assert result.tasks[(LOAD, 0)] == ("success", case.tries)
    assert case.message in result.output
    pg.assert_one_row_for_the_hour(result)
    assert pg.breakdown_rows() == 4  # the simulator's shards 0-3
    # The failed tries rolled back their history rows too: three rows, written by the load's third try.
    assert [row["load_try_number"] for row in pg.warehouse.history()] == [case.tries] * 3
    assert pg.requests() == _with_subaccounts(case.requests)
    return pg.seconds


def _warehouse_fails_until_fixed(case: Case, request) -> float:
    pg = _PostgresCase(request)
    pg.install_failing_trigger(failures=1000)
    first = pg.run()
    _assert_load_failed(first, case)
    # The totals row went in before the breakdown insert failed: the rollback took it back, and
    # nothing of the balance or the history was left either.
    assert pg.warehouse.rows() == [] and pg.breakdown_rows() == 0
    assert pg.warehouse.balances() == [] and pg.warehouse.history() == []

    pg.drop_trigger()
    second = pg.run()
    assert second.state == "success", second.output[-4000:]
    pg.assert_one_row_for_the_hour(second)
    assert pg.requests() == _with_subaccounts(case.requests)
    return pg.seconds


def _warehouse_table_wrong_shape(case: Case, request) -> float:
    pg = _PostgresCase(request)
    with pg.warehouse.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {pg.schema}.kalshi_total_resting_order_value (account text, snapshot_hour "
            "timestamp, total_resting_order_value_cents double precision, observed_at timestamp, "
            "dag_run_id text, loaded_at timestamp, PRIMARY KEY (account, snapshot_hour))"
        )
    result = pg.run()
    _assert_load_failed(result, case)
    assert "AirflowFailException" in result.output  # failed at once, without its retries
    assert "snapshot_hour is TIMESTAMP WITHOUT TIME ZONE" in result.output
    assert "total_resting_order_value_cents is DOUBLE PRECISION" in result.output
    with pg.warehouse.engine.connect() as conn:  # the table is not ours: counted, not read as ours
        table = f"{pg.schema}.kalshi_total_resting_order_value"
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0
    assert pg.requests() == _with_subaccounts(case.requests)
    return pg.seconds


def _warehouse_not_sql(case: Case, request) -> float:
    home = cap_retry_delay(request.getfixturevalue("airflow_home"))
    simulator = request.getfixturevalue("simulator")
    account = request.getfixturevalue("make_kalshi_account")()
    _kalshi_default(home, simulator, account)
    warehouse = sqlite_warehouse(home, request.getfixturevalue("tmp_path") / "warehouse.db")
    try:
        result = run_dag(home, {**warehouse.conf, "warehouse_conn_id": "kalshi_default"})
        _assert_load_failed(result, case)
        assert "AirflowFailException" in result.output  # failed at once, without its retries
        assert warehouse.rows() == []
        assert len(_requests_of(simulator, account)) == _with_subaccounts(case.requests)
    finally:
        warehouse.dispose()
    return result.seconds


def _warehouse_conn_missing(case: Case, request) -> float:
    """A mistyped id used to send the rows, without an error, to $AIRFLOW_HOME/kalshi_warehouse.db."""
    home = cap_retry_delay(request.getfixturevalue("airflow_home"))
    simulator = request.getfixturevalue("simulator")
    account = request.getfixturevalue("make_kalshi_account")()
    _kalshi_default(home, simulator, account)
    warehouse = sqlite_warehouse(home, request.getfixturevalue("tmp_path") / "warehouse.db")
    try:
        result = run_dag(home, {**warehouse.conf, "warehouse_conn_id": "kalshi_warehous"})
        _assert_load_failed(result, case)
        assert "AirflowFailException" in result.output  # failed at once, without its retries
        assert "airflow connections add kalshi_warehous" in result.output
        assert "Wrote the total" not in result.output
        assert not (home.path / "kalshi_warehouse.db").exists()
        assert warehouse.rows() == []
        assert len(_requests_of(simulator, account)) == _with_subaccounts(case.requests)
    finally:
        warehouse.dispose()
    return result.seconds


def _warehouse_in_memory(case: Case, request) -> float:
    """The load used to log "Wrote the total" to a database that was gone when the task ended."""
    home = cap_retry_delay(request.getfixturevalue("airflow_home"))
    simulator = request.getfixturevalue("simulator")
    account = request.getfixturevalue("make_kalshi_account")()
    _kalshi_default(home, simulator, account)
    home.set_connection("kalshi_warehouse", "sqlite", host=":memory:")
    result = run_dag(home, {})
    _assert_load_failed(result, case)
    assert "AirflowFailException" in result.output  # failed at once, without its retries
    assert "Wrote the total" not in result.output
    assert len(_requests_of(simulator, account)) == _with_subaccounts(case.requests)
    return result.seconds


SCENARIOS = {
    "late-run": _late_run,
    "observed-after-its-hour": _observed_after_its_hour,
    "warehouse-table-wrong-shape": _warehouse_table_wrong_shape,
    "warehouse-not-sql": _warehouse_not_sql,
    "warehouse-conn-missing": _warehouse_conn_missing,
    "warehouse-in-memory": _warehouse_in_memory,
    "warehouse-unreachable": _warehouse_unreachable,
    "warehouse-fails-mid-transaction": _warehouse_fails_mid_transaction,
    "warehouse-fails-until-fixed": _warehouse_fails_until_fixed,
}


def test_every_row_has_a_runner():
    assert {case.id for case in CASES if case.group != "batch"} == set(SCENARIOS)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault_matrix(case: Case, request):
    if case.group == "batch":
        seconds = _check_batch_case(case, request.getfixturevalue("matrix_run"))
    else:
        seconds = SCENARIOS[case.id](case, request)
        assert seconds <= case.bound, f"{case.id} took {seconds:.1f} s"
    request.node.user_properties.append(("seconds", round(seconds, 1)))
    print(f"\n{case.id}: {seconds:.1f} s (bound {case.bound} s)")
