"""Concurrent loads of the same hour end with one row carrying the later observation."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, create_engine, text

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    Snapshot,
    ensure_tables,
    read_snapshots,
    upsert_snapshots,
)

WAIT_LIMIT_SECONDS = 60  # a deadline for waiting on threads, not a timing assertion


class _Load(threading.Thread):
    """One loader, on its own thread and (through the engine's pool) its own connection."""

    def __init__(self, engine: Engine, snapshots: list[Snapshot], force_generic: bool) -> None:
        super().__init__(daemon=True)
        self.engine, self.snapshots, self.force_generic = engine, snapshots, force_generic
        self.written: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.written = upsert_snapshots(self.engine, self.snapshots, force_generic=self.force_generic)
        except BaseException as err:  # reported by the test thread
            self.error = err


def _finish(loads: list[_Load]) -> list[int]:
    for load in loads:
        load.join(WAIT_LIMIT_SECONDS)
        assert not load.is_alive(), "a load did not finish"
        if load.error is not None:
            raise load.error
    return [load.written for load in loads]


def _wait_for_lock_waiters(watcher: Engine, count: int) -> None:
    """Block until ``count`` sessions wait on a lock (read from a separate, autocommit session)."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with watcher.connect() as conn:
        while conn.execute(query).scalar_one() < count:
            assert time.monotonic() < deadline, f"fewer than {count} loads reached the lock"
            conn.rollback()  # pg_stat_activity is a per-transaction snapshot: take a fresh one
            time.sleep(0.02)


@pytest.mark.parametrize("later_arrives_first", [False, True], ids=["earlier-first", "later-first"])
def test_two_concurrent_upserts_on_postgres_keep_the_later_observation(
    postgres_engine, postgres_url, make_snapshot, force_generic, later_arrives_first
):
    earlier = make_snapshot(cents=1, observed_minute=5, dag_run_id="earlier", breakdown={0: "1", 1: "1"})
    later = make_snapshot(cents=2, observed_minute=45, dag_run_id="later", breakdown={0: "2.5"})
    order = [later, earlier] if later_arrives_first else [earlier, later]
    ensure_tables(postgres_engine)
    watcher = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        # Hold back every writer behind a table lock, so both loads really collide on the same hour.
        with postgres_engine.connect() as blocker, blocker.begin():
            blocker.execute(text(f"LOCK TABLE {DEFAULT_TABLE} IN SHARE ROW EXCLUSIVE MODE"))
            loads = []
            for position, snapshot in enumerate(order, start=1):
                loads.append(_Load(postgres_engine, [snapshot], force_generic))
                loads[-1].start()
                _wait_for_lock_waiters(watcher, position)
        written = _finish(loads)  # the blocker's commit released both
    finally:
        watcher.dispose()
    rows = read_snapshots(postgres_engine, include_breakdown=True)
    assert len(rows) == 1
    (row,) = rows
    assert row["observed_at"] == later.observed_at and row["dag_run_id"] == "later"
    assert row["total_resting_order_value_cents"] == 2
    assert [(e["exchange_index"], str(e["balance_dollars"])) for e in row["breakdown"]] == [(0, "2.500000")]
    later_written = written[order.index(later)]
    assert later_written == 1 and sum(written) in (1, 2)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_racing_batches_over_many_hours_keep_the_later_observations(
    request, dialect, make_snapshot, force_generic
):
    engine = request.getfixturevalue({"sqlite": "sqlite_engine", "postgresql": "postgres_engine"}[dialect])
    hours = range(50)
    batches = {
        name: [make_snapshot(hour=h, cents=minute, observed_minute=minute, dag_run_id=name) for h in hours]
        for name, minute in (("earlier", 10), ("later", 20))
    }
    ensure_tables(engine)
    for _ in range(5):
        loads = [_Load(engine, batch, force_generic) for batch in batches.values()]
        for load in loads:
            load.start()
        _finish(loads)
        rows = read_snapshots(engine)
        assert len(rows) == len(hours)
        assert {row["dag_run_id"] for row in rows} == {"later"}
