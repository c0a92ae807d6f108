"""Concurrent loads of the same hour end with one row per table: the earliest observation, with its
shards, and the free margin of what the hour holds."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    StoredReading,
    read_balances,
    read_history,
    read_snapshots,
    store_reading,
    upgrade_warehouse,
)
from tests.fixtures.gates import writers_held
from tests.pipelines.warehouse.conftest import Load, make_balance, make_load

WAIT_LIMIT_SECONDS = 60  # a deadline for waiting on threads, not a timing assertion


class _Load(threading.Thread):
    """One loader, on its own thread and (through the engine's pool) its own connection."""

    def __init__(self, engine: Engine, loads: list[Load], portable: bool) -> None:
        super().__init__(daemon=True)
        self.engine, self.loads, self.portable = engine, loads, portable
        self.stored: list[StoredReading] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for load in self.loads:
                self.stored.append(
                    store_reading(
                        self.engine,
                        load.reading,
                        snapshot_hour=load.hour,
                        dag_run_id=load.dag_run_id,
                        portable=self.portable,
                    )
                )
        except BaseException as err:  # reported by the test thread
            self.error = err


def _finish(loads: list[_Load]) -> list[list[StoredReading]]:
    for load in loads:
        load.join(WAIT_LIMIT_SECONDS)
        assert not load.is_alive(), "a load did not finish"
        if load.error is not None:
            raise load.error
    return [load.stored for load in loads]


@pytest.mark.parametrize("earlier_arrives_first", [True, False], ids=["earlier-first", "later-first"])
def test_two_loads_of_one_hour_at_once_keep_the_earlier_observation(
    db_engine, portable, earlier_arrives_first
):
    earlier = make_load(
        cents=1,
        observed_minute=5,
        dag_run_id="earlier",
        breakdown={0: "0.01"},
        balance=make_balance(1000, breakdown={0: "10"}),
    )
    later = make_load(
        cents=2,
        observed_minute=45,
        dag_run_id="later",
        breakdown={0: "0.01", 1: "0.01"},
        balance=make_balance(2500, breakdown={0: "20", 1: "5"}),
    )
    order = [earlier, later] if earlier_arrives_first else [later, earlier]
    upgrade_warehouse(db_engine)
    # Hold back every writer of the table, so both loads really collide on the same hour.
    with writers_held(db_engine, DEFAULT_TABLE) as wait_for:
        loads = []
        for position, load in enumerate(order, start=1):
            loads.append(_Load(db_engine, [load], portable))
            loads[-1].start()
            wait_for(position)
    stored = _finish(loads)  # leaving the block released both
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert (row["observed_at"], row["dag_run_id"]) == (earlier.observed_at, "earlier")
    assert row["total_resting_order_value_cents"] == 1
    resting = [(e["exchange_index"], str(e["shard_resting_order_value_dollars"])) for e in row["breakdown"]]
    assert resting == [(0, "0.010000")]
    (balance,) = read_balances(db_engine)
    assert (balance["balance_cents"], balance["dag_run_id"]) == (1000, "earlier")
    assert [e["exchange_index"] for e in balance["breakdown"]] == [0]
    assert [
        (
            e["exchange_index"],
            e["shard_balance_dollars"],
            e["shard_resting_order_value_dollars"],
            e["shard_balance_minus_resting_dollars"],
        )
        for e in balance["balance_minus_resting"]
    ] == [(0, Decimal("10"), Decimal("0.01"), Decimal("9.99"))]
    assert len(read_history(db_engine)) == 4  # both readings of both loads
    held = {load.dag_run_id: result.held for load, (result,) in zip(order, stored, strict=True)}
    # The later one held the hour only if it committed first (and was then replaced).
    assert held["earlier"] is True


def test_racing_loads_over_many_hours_keep_the_earlier_observations(db_engine, portable):
    hours = range(20)
    loads = {
        name: [make_load(hour=h, cents=minute, observed_minute=minute, dag_run_id=name) for h in hours]
        for name, minute in (("earlier", 10), ("later", 20))
    }
    upgrade_warehouse(db_engine)
    for _ in range(3):
        threads = [_Load(db_engine, batch, portable) for batch in loads.values()]
        for thread in threads:
            thread.start()
        _finish(threads)
        rows = read_snapshots(db_engine)
        assert len(rows) == len(hours)
        assert {row["dag_run_id"] for row in rows} == {"earlier"}
