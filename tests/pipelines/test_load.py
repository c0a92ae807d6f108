"""The load task's body: which readings become rows, and what the log says (a real SQLite warehouse)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from kalshi_provider.pipelines.load import load_reading
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import read_snapshots
from kalshi_provider.readings import AccountReading, RestingOrderValue, ShardAmount


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


def load(observed: str, run_after: str, *, cents: int = 100, problem: str | None = None, run_id: str = "r"):
    breakdown = () if problem else (ShardAmount(0, str(cents / 100)),)
    reading = AccountReading("kalshi_default", at(observed), RestingOrderValue(cents, breakdown, problem))
    return load_reading(
        reading.to_xcom(),
        run_after=at(run_after),
        dag_run_id=run_id,
        warehouse_conn_id="kalshi_warehouse",
        table=DEFAULT_TABLE,
        schema=None,
        max_lateness_minutes=30,
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
        load(observed, run_after, cents=999, run_id="late")
    assert read_snapshots(warehouse, include_breakdown=True) == before  # 10:00 keeps 10:00:05


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
