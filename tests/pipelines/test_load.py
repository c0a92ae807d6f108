"""The load task's body: which readings become rows, and what the log says (a real SQLite warehouse)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from kalshi_provider.pipelines.load import load_reading
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import read_balances, read_history, read_snapshots
from kalshi_provider.readings import AccountReading, Balance, BalanceReading, RestingOrderValue, ShardAmount

REFUSED = (
    "Kalshi API error 403 (permission_denied): permission denied. This endpoint is only for FCM members."
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-01T{text}+00:00")


@pytest.fixture
def warehouse(set_connection, tmp_path):
    from sqlalchemy import create_engine

    path = tmp_path / "warehouse.db"
    set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def load(
    observed: str,
    run_after: str,
    *,
    cents: int = 100,
    problem: str | None = None,
    run_id: str = "r",
    balance_observed: str | None = None,
    not_permitted: str | None = None,
    account: str = "kalshi_default",
    try_number: int | None = None,
):
    breakdown = () if problem else (ShardAmount(0, str(cents / 100)),)
    value = None if not_permitted else RestingOrderValue(cents, breakdown, problem)
    balance = None
    if balance_observed is not None:
        balance = BalanceReading(at(balance_observed), Balance(cents * 10, 0, str(cents / 10), 1_772_366_400))
    reading = AccountReading(
        account,
        at(observed),
        value,
        balance,
        not_permitted=not_permitted,
        try_number=1,
        source="https://external-api.kalshi.com/trade-api/v2",
    )
    return load_reading(
        reading.to_xcom(),
        run_after=at(run_after),
        dag_run_id=run_id,
        warehouse_conn_id="kalshi_warehouse",
        table=DEFAULT_TABLE,
        schema=None,
        max_lateness_minutes=30,
        try_number=try_number,
    )


@pytest.mark.parametrize(
    ("run_after", "observed"),
    [("10:59:58", "11:00:03"), ("10:40:00", "11:09:00")],
    ids=["triggered-just-before-the-hour-ended", "third-try-in-the-next-hour"],
)
def test_a_reading_observed_after_its_hour_is_not_stored(warehouse, run_after, observed):
    assert load("10:00:05", "10:00:00", cents=111)["written"]
    before = read_snapshots(warehouse, include_breakdown=True)
    with pytest.raises(AirflowSkipException, match="after that hour ended"):
        load(observed, run_after, cents=999, run_id="late", balance_observed=observed)
    assert read_snapshots(warehouse, include_breakdown=True) == before  # 10:00 keeps 10:00:05
    assert read_balances(warehouse) == []
    # The skipped reading is in the history all the same, with the reason it was not stored.
    late = [row for row in read_history(warehouse) if row["dag_run_id"] == "late"]
    assert sorted(
        (row["outcome"], row["total_resting_order_value_cents"] or row["balance_cents"]) for row in late
    ) == [
        ("not_in_hour", 999),
        ("not_in_hour", 9990),
    ]
    assert all("after that hour ended" in row["note"] for row in late)


def test_a_later_run_of_a_finished_hour_leaves_its_row(warehouse, caplog):
    assert load("10:00:05", "10:00:00", cents=111, run_id="scheduled")["written"]
    with caplog.at_level(logging.INFO, logger="kalshi_provider.pipelines.load"):
        result = load("10:20:00", "10:19:00", cents=222, run_id="manual")
    assert result["written"] is False
    (row,) = read_snapshots(warehouse)
    assert (row["total_resting_order_value_cents"], row["dag_run_id"]) == (111, "scheduled")
    assert "it holds an earlier observation (2026-03-01T10:00:05+00:00, run scheduled)" in caplog.text


def test_a_left_out_breakdown_costs_nothing_of_the_total_and_is_logged(warehouse, caplog):
    problem = "Kalshi's resting_order_value_breakdown: the breakdown repeats an exchange_index: [0, 0]"
    with caplog.at_level(logging.INFO, logger="kalshi_provider.pipelines.load"):
        result = load("10:00:05", "10:00:00", cents=4321, problem=problem)
    assert result["written"] and result["breakdown_left_out"]
    (row,) = read_snapshots(warehouse, include_breakdown=True)
    assert row["total_resting_order_value_cents"] == 4321
    assert (row["breakdown"], row["breakdown_problem"]) == ([], problem)
    (warning,) = [record for record in caplog.records if record.levelno == logging.WARNING]
    message = warning.getMessage()
    assert "storing the total without its breakdown" in message and problem in message


def test_a_key_without_fcm_access_is_reported_once_and_its_balance_stored_every_hour(warehouse, caplog):
    with caplog.at_level(logging.INFO, logger="kalshi_provider.pipelines.load"):
        for hour in ("10", "11", "12"):
            result = load(
                f"{hour}:00:05", f"{hour}:00:00", not_permitted=REFUSED, balance_observed=f"{hour}:00:06"
            )
            assert (result["not_permitted"], result["balance_written"], result["written"]) == (
                True,
                True,
                False,
            )
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not an FCM member" in warnings[0] and REFUSED in warnings[0] and "once" in warnings[0]
    infos = [
        record.getMessage()
        for record in caplog.records
        if "no FCM access (reported before)" in record.getMessage()
    ]
    assert len(infos) == 2
    assert [row["balance_cents"] for row in read_balances(warehouse)] == [1000, 1000, 1000]
    assert read_snapshots(warehouse) == []


def test_a_balance_arriving_after_the_hour_ended_is_only_in_the_history(warehouse, caplog):
    with caplog.at_level(logging.INFO, logger="kalshi_provider.pipelines.load"):
        result = load("10:59:59", "10:59:58", balance_observed="11:00:00", try_number=2)
    assert (result["written"], result["balance_written"]) == (True, False)  # not a skip: the total counts
    assert len(read_snapshots(warehouse)) == 1 and read_balances(warehouse) == []
    assert "the balance was not stored (it is in the history)" in caplog.text
    rows = {row["endpoint"]: row for row in read_history(warehouse)}
    assert rows["/portfolio/balance"]["outcome"] == "not_in_hour"
    assert rows["/portfolio/summary/total_resting_order_value"]["became_hour_row"] is True
    assert {row["load_try_number"] for row in rows.values()} == {2}
    assert {row["source"] for row in rows.values()} == {"https://external-api.kalshi.com/trade-api/v2"}


def test_a_reading_from_the_total_only_operator_still_loads(warehouse):
    reading = AccountReading("kalshi_default", at("10:00:05"), RestingOrderValue(77))
    payload = reading.to_xcom()
    for key in ("balance", "not_permitted", "try_number", "source"):
        del payload[key]  # as an older version's fetch wrote it
    result = load_reading(
        payload,
        run_after=at("10:00:00"),
        dag_run_id="r",
        warehouse_conn_id="kalshi_warehouse",
        table=DEFAULT_TABLE,
        schema=None,
        max_lateness_minutes=30,
    )
    assert result["written"] and "balance_cents" not in result
    assert [row["endpoint"] for row in read_history(warehouse)] == [
        "/portfolio/summary/total_resting_order_value"
    ]
