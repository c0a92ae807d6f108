"""The hourly DAG run by Airflow itself against the simulator and real warehouses.

Re-runs of an hour and late runs are in tests/e2e/reliability (test_idempotence, the fault matrix).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.fixtures.airflow import hour_of, postgres_warehouse, sqlite_warehouse
from tests.fixtures.simulator import signed_calls

DAG_ID = "kalshi_total_resting_order_value"
FETCH, LOAD, PLAN = "account_snapshot.fetch", "account_snapshot.load", "accounts_to_read"
TOTAL, BALANCE = "/portfolio/summary/total_resting_order_value", "/portfolio/balance"
SUBACCOUNTS = "/portfolio/subaccounts/balances"

pytestmark = pytest.mark.slow


#: The warehouse connection's password (the test server trusts local connections, so any works):
#: known, so the lineage events can be searched for it.
WAREHOUSE_PASSWORD = "wh-" + uuid.uuid4().hex


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, airflow_home, tmp_path):
    """Wire ``kalshi_warehouse`` to a real SQLite file or the test PostgreSQL (own schema)."""
    if request.param == "sqlite":
        target = sqlite_warehouse(airflow_home, tmp_path / "warehouse.db")
    else:
        url = make_url(request.getfixturevalue("postgres_url"))
        schema = request.getfixturevalue("postgres_schema")
        target = postgres_warehouse(airflow_home, url, schema, password=WAREHOUSE_PASSWORD)
    yield target
    target.dispose()


@pytest.fixture
def lineage_events(airflow_home, tmp_path):
    """Airflow's OpenLineage provider, configured as a deployment would, writing its events to a
    file (its file transport); returns a reader of the events."""
    path = tmp_path / "openlineage.jsonl"
    airflow_home.env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
        {"type": "file", "log_file_path": str(path), "append": True}
    )
    airflow_home.env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "kalshi-tests"
    return lambda: path.read_text() if path.exists() else ""


@pytest.fixture
def kalshi_default(airflow_home, simulator, kalshi_account):
    airflow_home.set_kalshi_connection(
        "kalshi_default", kalshi_account, simulator.base_url, {"max_retries": 3}
    )
    return kalshi_account


def test_two_accounts_one_without_fcm_access_write_totals_balances_shard_figures_and_history(
    airflow_home, warehouse, kalshi_default, make_kalshi_account, simulator, lineage_events
):
    """The FCM account gets its total, balance, balance minus resting per shard and two history
    rows; the account without FCM access gets its balance, balance minus resting of NULL and two
    history rows, and the run succeeds (the load warns once that the account is no FCM member).
    OpenLineage's events name Kalshi's endpoints and the warehouse tables, and hold no secret."""
    simulator.set_value(
        kalshi_default.key_id,
        987654,
        [{"exchange_index": 0, "balance": "9000.0000"}, {"exchange_index": 2, "balance": "876.5400"}],
    )
    simulator.set_balance(
        kalshi_default.key_id, 1_250_000, portfolio_value=31_000, balance_dollars="12500.004"
    )
    no_fcm = make_kalshi_account(fcm_member=False, balance=42_000, portfolio_value=0)
    airflow_home.set_kalshi_connection("kalshi_no_fcm", no_fcm, simulator.base_url)
    conf = {**warehouse.conf, "kalshi_conn_ids": ["kalshi_default", "kalshi_no_fcm"]}
    result = airflow_home.dags_test(DAG_ID, conf=conf)
    assert result.state == "success", result.output[-4000:]
    assert [result.task_state(task, index) for task in (FETCH, LOAD) for index in (0, 1)] == ["success"] * 4
    hour = hour_of(result.run_after)

    [total] = warehouse.rows()
    assert (total["account"], total["total_resting_order_value_cents"]) == ("kalshi_default", 987654)
    assert (total["snapshot_hour"], total["dag_run_id"]) == (hour, result.run_id)
    assert total["observed_at"] - hour < timedelta(hours=1)

    fcm, refused = warehouse.balances()  # ordered by account
    assert (fcm["account"], fcm["balance_cents"], fcm["portfolio_value_cents"]) == (
        "kalshi_default",
        1_250_000,
        31_000,
    )
    assert fcm["balance_dollars"] == Decimal("12500.004") and fcm["total_refusal_reason"] is None
    assert fcm["snapshot_hour"] == hour and fcm["observed_at"] > total["observed_at"]
    # Kalshi's 2026 shards 0-3 (the simulator's split of $12,500.00); the resting orders on 0 and 2.
    assert [
        (e["exchange_index"], e["shard_balance_minus_resting_dollars"]) for e in fcm["balance_minus_resting"]
    ] == [
        (0, Decimal("5000") - Decimal("9000")),  # negative: more resting orders than cash there
        (1, Decimal("3750")),
        (2, Decimal("2500") - Decimal("876.54")),
        (3, Decimal("1250")),
    ]
    assert refused["account"] == "kalshi_no_fcm" and refused["balance_cents"] == 42_000
    assert "only for FCM members" in refused["total_refusal_reason"]
    assert [
        (e["shard_balance_dollars"], e["shard_balance_minus_resting_dollars"])
        for e in refused["balance_minus_resting"]
    ] == [(Decimal(dollars), None) for dollars in ("168", "126", "84", "42")]

    # Every subaccount's balance per shard, with the hour's balance (here the primary alone, its
    # rows being its balance's shards).
    for balance in (fcm, refused):
        stored = warehouse.subaccounts(balance["account"])
        assert [(r["subaccount_number"], r["exchange_index"], r["balance_dollars"]) for r in stored] == [
            (0, e["exchange_index"], e["shard_balance_dollars"]) for e in balance["breakdown"]
        ]
        assert {r["snapshot_hour"] for r in stored} == {hour}

    history = {(row["account"], row["endpoint"]): row for row in warehouse.history()}
    assert {key: (row["outcome"], row["became_hour_row"]) for key, row in history.items()} == {
        ("kalshi_default", TOTAL): ("hour_row", True),
        ("kalshi_default", BALANCE): ("hour_row", True),
        ("kalshi_default", SUBACCOUNTS): ("hour_row", True),
        ("kalshi_no_fcm", TOTAL): ("not_permitted", False),
        ("kalshi_no_fcm", BALANCE): ("hour_row", True),
        ("kalshi_no_fcm", SUBACCOUNTS): ("hour_row", True),
    }
    for row in history.values():
        assert (row["dag_run_id"], row["fetch_try_number"], row["load_try_number"]) == (result.run_id, 1, 1)
        assert row["snapshot_hour"] == hour and row["source"] == simulator.base_url
    assert "Kalshi does not permit this key to read the total resting order value" in result.output
    _check_lineage(lineage_events(), warehouse, simulator, [kalshi_default, no_fcm])
    _print_rows(warehouse)


def _check_lineage(text: str, warehouse, simulator, accounts) -> None:
    """The COMPLETE events of the fetch and load tasks: Kalshi's endpoints in, the tables out."""
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    complete = {}
    for event in events:
        if event["eventType"] == "COMPLETE" and event["job"]["name"].endswith((".fetch", ".load")):
            complete.setdefault(event["job"]["name"].rpartition(".")[2], []).append(event)
    assert len(complete.get("fetch", [])) == len(complete.get("load", [])) == 2, sorted(
        e["job"]["name"] for e in events
    )
    kalshi = f"http://127.0.0.1:{simulator.port}"
    endpoints = {(kalshi, "/trade-api/v2" + path) for path in (TOTAL, BALANCE, SUBACCOUNTS)}

    def named(event, side):
        return {(dataset["namespace"], dataset["name"]) for dataset in event[side]}

    # `airflow dags test` runs every task in one process, whose hook lineage collector keeps what
    # earlier tasks reported (a deployment runs each task in a process of its own): so each event
    # names some of the endpoints, and together they name both.
    fetched = [named(event, "inputs") for event in complete["fetch"]]
    assert all(inputs and inputs <= endpoints for inputs in fetched) and set().union(*fetched) == endpoints
    engine = warehouse.engine
    if engine.dialect.name == "sqlite":
        namespace, prefix = "file", f"{Path(engine.url.database).resolve()}."
    else:
        url = engine.url
        namespace, prefix = f"postgres://{url.host}:{url.port}", f"{url.database}.{warehouse.schema}."
    table = "kalshi_total_resting_order_value"
    for event in complete["load"]:
        outputs = named(event, "outputs")
        assert (namespace, prefix + table + "_history") in outputs and (
            namespace,
            prefix + table + "_balance",
        ) in outputs
        assert named(event, "inputs") <= endpoints and named(event, "inputs")
    written = set().union(*(named(event, "outputs") for event in complete["load"]))
    assert {
        (namespace, prefix + table),
        (namespace, prefix + table + "_bal_rest"),
    } <= written  # the FCM account's
    for event in complete["fetch"] + complete["load"]:  # for a person reading the output (pytest -s)
        inputs, outputs = sorted(named(event, "inputs")), sorted(named(event, "outputs"))
        print(f"lineage {event['job']['name']}: in {inputs} out {outputs}")
    # No secret: not a key, not the warehouse password, in any event.
    assert WAREHOUSE_PASSWORD not in text
    for account in accounts:
        body = "".join(account.private_pem.decode().splitlines()[1:-1])
        assert all(body[i : i + 40] not in text for i in range(0, len(body) - 40, 40))


def _print_rows(warehouse) -> None:
    """What the run wrote, for a person reading the test's output (``pytest -s``)."""
    print(
        "\ntotals:",
        [(r["account"], r["snapshot_hour"], r["total_resting_order_value_cents"]) for r in warehouse.rows()],
    )
    for row in warehouse.balances():
        print(
            "balance:",
            (row["account"], row["snapshot_hour"], row["balance_cents"], str(row["balance_dollars"])),
            "balance minus resting:",
            [
                (
                    e["exchange_index"],
                    None
                    if e["shard_balance_minus_resting_dollars"] is None
                    else str(e["shard_balance_minus_resting_dollars"]),
                )
                for e in row["balance_minus_resting"]
            ],
        )
    for row in warehouse.history():
        print(
            "history:",
            (
                row["account"],
                row["endpoint"],
                row["outcome"],
                row["became_hour_row"],
                row["note"] and row["note"][:40],
            ),
        )


def test_a_passing_fault_is_retried_and_the_run_recovers(airflow_home, warehouse, kalshi_default, simulator):
    simulator.push_faults(
        [{"status": 503, "body": "<html>upstream down</html>", "path": TOTAL}, {"drop": True, "path": TOTAL}]
    )
    result = airflow_home.dags_test(DAG_ID, conf=warehouse.conf)
    assert result.state == "success", result.output[-4000:]
    # The total after two faults (hook retries, each after a look at the exchange's status, which
    # says active), then the balance, then the subaccounts.
    assert [(request.status, request.path.rpartition("/")[2]) for request in signed_calls(simulator)] == [
        (503, "total_resting_order_value"),
        (None, "total_resting_order_value"),
        (200, "total_resting_order_value"),
        (200, "balance"),
        (200, "balances"),
    ]
    assert len(warehouse.rows()) == len(warehouse.balances()) == 1 and warehouse.subaccounts()


def test_a_permanent_fault_fails_at_once_and_writes_nothing(
    airflow_home, warehouse, make_kalshi_account, simulator
):
    account = make_kalshi_account()
    simulator.remove_account(account.key_id)  # a key ID Kalshi does not know: 401
    airflow_home.set_kalshi_connection("kalshi_default", account, simulator.base_url)
    result = airflow_home.dags_test(DAG_ID, conf=warehouse.conf)
    assert result.state == "failed"
    assert result.tasks[(FETCH, 0)] == ("failed", 1)  # no task retries for a 401
    assert result.task_state(LOAD) == "upstream_failed"
    assert "Kalshi does not know this API key ID" in result.output
    assert warehouse.rows() == warehouse.balances() == warehouse.history() == []


def test_accounts_are_independent(airflow_home, warehouse, kalshi_default, make_kalshi_account, simulator):
    unknown = make_kalshi_account()
    simulator.remove_account(unknown.key_id)
    airflow_home.set_kalshi_connection("kalshi_other", unknown, simulator.base_url)
    result = airflow_home.dags_test(
        DAG_ID, conf={**warehouse.conf, "kalshi_conn_ids": ["kalshi_default", "kalshi_other"]}
    )
    assert result.state == "failed"
    assert result.task_state(LOAD, 0) == "success" and result.task_state(FETCH, 1) == "failed"
    assert [row["account"] for row in warehouse.rows()] == ["kalshi_default"]


def test_a_run_during_maintenance_sends_one_signed_request_records_why_and_ends_skipped(
    airflow_home, warehouse, kalshi_default, simulator
):
    """Kalshi's exchange under maintenance (its status says inactive, its portfolio endpoints answer
    503): the fetch's first call fails, the hook reads /exchange/status, no further signed request
    is sent whatever the retry settings (the connection allows 4 attempts per call, the task 4
    tries), the history records the pause with Kalshi's estimated resume time, and the load ends
    skipped, not failed."""
    simulator.exchange.start_maintenance("2026-12-10T10:00:00Z")
    result = airflow_home.dags_test(DAG_ID, conf=warehouse.conf)
    assert result.state == "success", result.output[-4000:]
    assert result.task_state(FETCH) == "success" and result.task_state(LOAD) == "skipped"
    signed = [request for request in simulator.requests if request.signature is not None]
    assert len(signed) <= 4 and [request.status for request in signed] == [503]
    assert warehouse.rows() == warehouse.balances() == []
    [paused] = warehouse.history()
    assert (paused["account"], paused["endpoint"], paused["outcome"]) == (
        "kalshi_default",
        "/exchange/status",
        "exchange_paused",
    )
    assert paused["snapshot_hour"] == hour_of(result.run_after) and not paused["became_hour_row"]
    assert "estimated resume time 2026-12-10 10:00 UTC" in paused["note"]
    recorded = json.loads(paused["reading_json"])
    assert recorded["estimated_resume_time"] == "2026-12-10T10:00:00+00:00"
    assert "exchange_active false" in recorded["reason"]
