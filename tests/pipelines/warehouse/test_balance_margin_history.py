"""The balance, the free margin per shard and the history of readings, against a real SQLite file,
PostgreSQL and MariaDB server, through the dialect's upsert and through the portable path."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from kalshi_provider.endpoints import BALANCE_ENDPOINT, TOTAL_ENDPOINT
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    InvalidSnapshotError,
    read_balances,
    read_history,
    read_snapshots,
    store_reading,
    upgrade_warehouse,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse import store as store_module
from tests.pipelines.warehouse.conftest import make_balance, make_load

D = Decimal
REFUSED = "Kalshi API error 403 (permission_denied): permission denied. This endpoint is only for FCM members"
#: Four shards adding up to $5000.00 and to $1234.56: both breakdowns complete.
BALANCE_SHARDS = {0: "2000.004", 1: "1500", 2: "1000", 3: "499.996"}
RESTING_SHARDS = {0: "493.84", 1: "370.36", 2: "246.91", 3: "123.45"}


def _margin(engine) -> dict[int, tuple]:
    (row,) = read_balances(engine)
    return {
        entry["exchange_index"]: (
            entry["shard_balance_dollars"],
            entry["shard_resting_order_value_dollars"],
            entry["shard_balance_minus_resting_dollars"],
        )
        for entry in row["balance_minus_resting"]
    }


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(text(table))).scalar_one()


# --- the balance --------------------------------------------------------------------------------------


def test_the_balance_is_stored_exactly_beside_the_total(db_engine, store):
    balance = make_balance(
        -(2**63), "-999999999999999999.999999", portfolio=2**63 - 1, breakdown={0: "-0.000001"}
    )
    stored = store(db_engine, make_load(cents=123456, balance=balance))
    assert stored.total.held and stored.balance.held
    (row,) = read_balances(db_engine)
    assert (row["balance_cents"], row["portfolio_value_cents"], row["balance_updated_ts"]) == (
        -(2**63),
        2**63 - 1,
        1_772_366_400,
    )
    assert row["balance_dollars"] == D("-999999999999999999.999999") and type(row["balance_dollars"]) is D
    assert row["breakdown"] == [{"exchange_index": 0, "shard_balance_dollars": D("-0.000001")}]
    assert (row["total_refusal_reason"], row["breakdown_problem"], row["dag_run_id"]) == (None, None, "run-1")
    assert row["observed_at"] - read_snapshots(db_engine)[0]["observed_at"] == timedelta(milliseconds=30)


def test_the_balance_keeps_the_earliest_observation_of_the_hour_on_its_own(db_engine, store):
    """Each table keeps the earliest observation of its own endpoint: a total-only load (the
    operator of the total alone, or a version before the balance) leaves the balance to a later load."""
    assert store(db_engine, make_load(observed_minute=5, cents=1)).held  # total only
    later = store(
        db_engine, make_load(observed_minute=30, cents=2, balance=make_balance(700), dag_run_id="r2")
    )
    assert (later.total.held, later.balance.held) == (False, True)
    even_later = store(db_engine, make_load(observed_minute=40, balance=make_balance(999), dag_run_id="r3"))
    assert even_later.balance.held is False and even_later.balance.dag_run_id == "r2"
    earlier = make_load(observed_minute=2, balance=make_balance(5, breakdown={1: "0.05"}), dag_run_id="r0")
    assert store(db_engine, earlier).balance.held
    (row,) = read_balances(db_engine)
    assert (row["balance_cents"], row["dag_run_id"]) == (5, "r0")
    assert row["breakdown"] == [{"exchange_index": 1, "shard_balance_dollars": D("0.05")}]  # no stale shards
    (total,) = read_snapshots(db_engine)  # the earlier load's total replaced the :05 one too
    assert (total["total_resting_order_value_cents"], total["dag_run_id"]) == (100, "r0")


def test_a_balance_breakdown_left_out_keeps_the_balance_and_says_why(db_engine, store):
    problem = "Kalshi's balance_breakdown: the breakdown repeats an exchange_index: [1, 1]"
    store(db_engine, make_load(balance=make_balance(42, problem=problem)))
    (row,) = read_balances(db_engine)
    assert (row["balance_cents"], row["breakdown"], row["breakdown_problem"]) == (42, [], problem)


def test_a_key_without_fcm_access_gets_its_balance_and_no_total(db_engine, store):
    stored = store(db_engine, make_load(not_permitted=REFUSED, balance=make_balance(4200)))
    assert stored.total is None and stored.balance.held
    assert read_snapshots(db_engine) == []
    (row,) = read_balances(db_engine)
    assert (row["balance_cents"], row["total_refusal_reason"]) == (4200, REFUSED)


# --- the free margin ----------------------------------------------------------------------------------


def test_the_free_margin_per_shard_is_the_balance_minus_the_resting_orders_exactly(db_engine, store):
    store(
        db_engine,
        make_load(
            cents=123456, breakdown=RESTING_SHARDS, balance=make_balance(500000, breakdown=BALANCE_SHARDS)
        ),
    )
    assert _margin(db_engine) == {
        0: (D("2000.004"), D("493.84"), D("1506.164")),
        1: (D("1500"), D("370.36"), D("1129.64")),
        2: (D("1000"), D("246.91"), D("753.09")),
        3: (D("499.996"), D("123.45"), D("376.546")),
    }
    assert all(type(value) is D for values in _margin(db_engine).values() for value in values)


def test_a_shard_one_complete_breakdown_omits_counts_as_zero(db_engine, store):
    """Both breakdowns add up to their totals, so they cover every shard: a shard with cash and no
    resting orders, and one with resting orders and no cash, each have 0 on the other side."""
    balance = make_balance(1000, breakdown={0: "10"})
    store(db_engine, make_load(cents=250, breakdown={0: "2", 2: "0.5"}, balance=balance))
    assert _margin(db_engine) == {0: (D("10"), D("2"), D("8")), 2: (D("0"), D("0.5"), D("-0.5"))}


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        pytest.param(  # the resting breakdown does not add up to the total: shard 1's part is unknown
            {"cents": 500, "breakdown": {0: "2"}, "balance": make_balance(1000, breakdown={0: "4", 1: "6"})},
            {0: (D("4"), D("2"), D("2")), 1: (D("6"), None, None)},
            id="resting-breakdown-incomplete",
        ),
        pytest.param(  # no resting breakdown at all (an answer from before August 2026)
            {"cents": 500, "balance": make_balance(1000, breakdown={0: "10"})},
            {0: (D("10"), None, None)},
            id="no-resting-breakdown",
        ),
        pytest.param(  # the resting breakdown was left out: unknown, not zero
            {"cents": 0, "problem": "left out", "balance": make_balance(1000, breakdown={0: "10"})},
            {0: (D("10"), None, None)},
            id="resting-breakdown-left-out",
        ),
        pytest.param(  # the balance breakdown was left out: each shard's cash is unknown
            {"cents": 100, "breakdown": {0: "1"}, "balance": make_balance(1000, problem="left out")},
            {0: (None, D("1"), None)},
            id="balance-breakdown-left-out",
        ),
        pytest.param(  # the balance breakdown does not add up to the balance
            {
                "cents": 100,
                "breakdown": {0: "0.5", 1: "0.5"},
                "balance": make_balance(1000, breakdown={0: "3"}),
            },
            {0: (D("3"), D("0.5"), D("2.5")), 1: (None, D("0.5"), None)},
            id="balance-breakdown-incomplete",
        ),
        pytest.param(  # no FCM access: resting orders unknown, so is the free margin (not the balance)
            {"not_permitted": REFUSED, "balance": make_balance(1000, breakdown={0: "4", 1: "6"})},
            {0: (D("4"), None, None), 1: (D("6"), None, None)},
            id="not-permitted",
        ),
        pytest.param(  # a difference beyond Numeric(24, 6): unknown, never rounded
            {
                "cents": 0,
                "breakdown": {0: "-999999999999999999", 1: "999999999999999999"},
                "balance": make_balance(0, breakdown={0: "999999999999999999", 1: "-999999999999999999"}),
            },
            {
                0: (D("999999999999999999"), D("-999999999999999999"), None),
                1: (D("-999999999999999999"), D("999999999999999999"), None),
            },
            id="beyond-the-column",
        ),
    ],
)
def test_what_is_unknown_stays_null(db_engine, store, load, expected):
    store(db_engine, make_load(**load))
    assert _margin(db_engine) == expected


def test_the_free_margin_follows_the_hours_rows_whichever_load_brought_them(db_engine, store):
    """The total alone first (no balance yet: no free margin), then a later load's balance; then an
    earlier observation of the total replaces it, and the margin is recomputed from what the hour holds."""
    assert store(db_engine, make_load(observed_minute=10, cents=100, breakdown={0: "1"})).held
    assert read_balances(db_engine) == [] and _count(db_engine, f"{DEFAULT_TABLE}_bal_rest") == 0
    store(db_engine, make_load(observed_minute=20, cents=999, balance=make_balance(500, breakdown={0: "5"})))
    assert _margin(db_engine) == {0: (D("5"), D("1"), D("4"))}  # the hour's total, observed at :10
    store(db_engine, make_load(observed_minute=1, cents=300, breakdown={0: "3"}))  # an earlier total
    assert _margin(db_engine) == {0: (D("5"), D("3"), D("2"))}
    store(db_engine, make_load(observed_minute=45, cents=1, breakdown={0: "0.01"}))  # later: changes nothing
    assert _margin(db_engine) == {0: (D("5"), D("3"), D("2"))}


def test_an_hour_that_keeps_an_earlier_balance_derives_the_margin_from_the_balance_it_keeps(db_engine, store):
    """The second load brings the hour's first total and a later balance: the hour keeps the first
    load's balance, and the free margin is that balance's minus the new total's, not the reading's."""
    kept = make_balance(500, breakdown={0: "2", 1: "3"})
    store(db_engine, make_load(observed_minute=5, not_permitted=REFUSED, balance=kept))
    assert _margin(db_engine) == {0: (D("2"), None, None), 1: (D("3"), None, None)}  # no total yet
    later = make_balance(90000, breakdown={0: "900"})
    stored = store(
        db_engine, make_load(observed_minute=30, cents=300, breakdown={0: "1", 1: "2"}, balance=later)
    )
    assert stored.total.held and not stored.balance.held
    assert _margin(db_engine) == {0: (D("2"), D("1"), D("1")), 1: (D("3"), D("2"), D("1"))}


def test_rows_left_without_their_balance_row_are_replaced(db_engine, store):
    """Someone deleted the hour's balance row by hand and left its shards and free margin: the next
    load's balance goes in, and none of the rows left behind linger beside its own."""
    store(db_engine, make_load(observed_minute=5, balance=make_balance(500, breakdown={0: "2", 1: "3"})))
    with db_engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {DEFAULT_TABLE}_balance"))
    assert store(
        db_engine, make_load(observed_minute=5, balance=make_balance(100, breakdown={1: "1"}))
    ).balance.held
    (row,) = read_balances(db_engine)
    assert [(e["exchange_index"], e["shard_balance_dollars"]) for e in row["breakdown"]] == [(1, D("1"))]
    assert set(_margin(db_engine)) == {1}


def _statements(engine) -> list[str]:
    """The statements SQLAlchemy sends ``engine`` from now on, first words only."""
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(" ".join(args[2].split()[:3])))
    return sent


def test_a_new_hour_is_written_without_asking_or_reading_anything(db_engine, store):
    """At the schema's head, a new hour's load only inserts: one statement per table with rows (the
    version check rides on the first, the free margin derives from the reading it holds); nothing
    is read back. (Portable: each hourly row in a savepoint.)"""
    upgrade_warehouse(db_engine)
    sent = _statements(db_engine)
    load = make_load(breakdown=RESTING_SHARDS, balance=make_balance(500000, breakdown=BALANCE_SHARDS))
    stored = store(db_engine, load)
    assert stored.total.held and stored.balance.held
    writes = [s for s in sent if not s.startswith(("SAVEPOINT", "RELEASE", "BEGIN IMMEDIATE"))]
    tables = [
        f"{DEFAULT_TABLE}{suffix}"
        for suffix in ("", "_breakdown", "_balance", "_bal_shard", "_bal_rest", "_history")
    ]
    assert writes == [f"INSERT INTO {table}" for table in tables], sent
    assert _margin(db_engine)[0] == (D("2000.004"), D("493.84"), D("1506.164"))
    # A later observation of the same hour (a control): the hour is read, kept, and only the history
    # grows; an earlier one replaces the rows, taking the old ones away first.
    sent.clear()
    assert not store(db_engine, make_load(observed_minute=40, cents=1, balance=make_balance(2))).held
    assert [s.split()[0] for s in sent if s.startswith(("INSERT", "UPDATE", "DELETE"))] == ["INSERT"] * 3
    assert any(s.startswith("SELECT") for s in sent)
    sent.clear()
    assert store(db_engine, make_load(observed_minute=1, cents=7, breakdown={0: "0.07"})).held
    assert "UPDATE" in {s.split()[0] for s in sent} and f"DELETE FROM {DEFAULT_TABLE}_breakdown" in sent


# --- the history --------------------------------------------------------------------------------------


def _history(engine) -> list[tuple]:
    return [
        (
            row["endpoint"],
            row["outcome"],
            row["became_hour_row"],
            row["dag_run_id"],
            row["fetch_try_number"],
            row["load_try_number"],
        )
        for row in read_history(engine)
    ]


def test_every_reading_is_kept_and_what_became_of_it(db_engine, store):
    first = make_load(
        observed_minute=5, cents=1, balance=make_balance(10), dag_run_id="scheduled", try_number=1
    )
    store(db_engine, first, try_number=1)
    store(db_engine, first, try_number=2)  # a retry of the same load (e.g. after a crash after commit)
    late = make_load(observed_minute=50, cents=2, balance=make_balance(20), dag_run_id="manual", try_number=2)
    store(db_engine, late, try_number=1)
    skipped = make_load(
        observed_minute=55, cents=3, balance=make_balance(30), dag_run_id="late", try_number=1
    )
    reason = "Kalshi's answer arrived 25 minutes after run_after, beyond the 0 minutes allowed"
    stored = store(db_engine, skipped, not_in_hour={TOTAL_ENDPOINT: reason, BALANCE_ENDPOINT: reason})
    assert (stored.total, stored.balance) == (None, None)
    assert _history(db_engine) == [  # oldest observation first
        (TOTAL_ENDPOINT, "hour_row", True, "scheduled", 1, 1),
        (TOTAL_ENDPOINT, "hour_row", True, "scheduled", 1, 2),  # the retry holds its own observation
        (BALANCE_ENDPOINT, "hour_row", True, "scheduled", 1, 1),
        (BALANCE_ENDPOINT, "hour_row", True, "scheduled", 1, 2),
        (TOTAL_ENDPOINT, "earlier_kept", False, "manual", 2, 1),
        (BALANCE_ENDPOINT, "earlier_kept", False, "manual", 2, 1),
        (TOTAL_ENDPOINT, "not_in_hour", False, "late", 1, None),
        (BALANCE_ENDPOINT, "not_in_hour", False, "late", 1, None),
    ]
    rows = read_history(db_engine)
    assert len({row["reading_id"] for row in rows}) == len(rows) == 8
    by_outcome = {(row["endpoint"], row["outcome"], row["load_try_number"]): row for row in rows}
    kept = by_outcome[(TOTAL_ENDPOINT, "earlier_kept", 1)]
    assert kept["note"].startswith(f"the hour holds an earlier observation ({first.observed_at.isoformat()}")
    skipped_row = by_outcome[(TOTAL_ENDPOINT, "not_in_hour", None)]
    assert (skipped_row["note"], skipped_row["total_resting_order_value_cents"]) == (reason, 3)
    assert skipped_row["snapshot_hour"] == first.hour and skipped_row["observed_at"] == skipped.observed_at
    balance_row = by_outcome[(BALANCE_ENDPOINT, "hour_row", 2)]
    assert (balance_row["balance_cents"], balance_row["portfolio_value_cents"]) == (10, 250000)
    assert json.loads(balance_row["reading_json"])["balance_dollars"] == "0.100000"
    assert (
        read_snapshots(db_engine)[0]["total_resting_order_value_cents"],
        read_balances(db_engine)[0]["balance_cents"],
    ) == (1, 10)


def test_the_history_keeps_refusals_and_answers_left_out(db_engine, store):
    problem = "Kalshi's answer to GET /portfolio/balance has no 'balance_dollars' field"
    store(db_engine, make_load(not_permitted=REFUSED, balance_problem=problem))
    rows = {row["endpoint"]: row for row in read_history(db_engine)}
    total, balance = rows[TOTAL_ENDPOINT], rows[BALANCE_ENDPOINT]
    assert (total["outcome"], total["became_hour_row"], total["note"]) == ("not_permitted", False, REFUSED)
    assert json.loads(total["reading_json"]) == {"not_permitted": REFUSED}
    assert total["total_resting_order_value_cents"] is None
    assert (balance["outcome"], balance["note"], balance["balance_cents"]) == ("left_out", problem, None)
    assert read_balances(db_engine) == [] and read_snapshots(db_engine) == []


def test_the_history_values_are_exact(db_engine, store):
    load = make_load(
        cents=2**63 - 1,
        breakdown={3: "0.000001"},
        balance=make_balance(7, "0.070001", breakdown={3: "0.070001"}),
    )
    store(db_engine, load)
    rows = {row["endpoint"]: row for row in read_history(db_engine)}
    assert rows[TOTAL_ENDPOINT]["total_resting_order_value_cents"] == 2**63 - 1
    assert json.loads(rows[TOTAL_ENDPOINT]["reading_json"]) == {
        "total_cents": 2**63 - 1,
        "breakdown": [[3, "0.000001"]],
        "breakdown_problem": None,
    }
    assert json.loads(rows[BALANCE_ENDPOINT]["reading_json"])["breakdown"] == [
        {"exchange_index": 3, "dollars": "0.070001"}
    ]
    assert rows[TOTAL_ENDPOINT]["observed_at"] == load.observed_at
    assert rows[BALANCE_ENDPOINT]["observed_at"] == load.reading.balance.observed_at


def test_nothing_in_the_history_is_ever_changed_by_a_load(db_engine, store):
    store(db_engine, make_load(observed_minute=30, balance=make_balance(1)))
    before = read_history(db_engine)
    store(
        db_engine, make_load(observed_minute=5, balance=make_balance(2), dag_run_id="earlier")
    )  # replaces the hour
    after = read_history(db_engine)
    assert all(row in after for row in before)  # every earlier row, unchanged
    assert len(after) == len(before) + 2


def test_the_first_refusal_is_new_and_the_next_ones_are_not(db_engine, store):
    """What the load reports once: the account's first reading without FCM access, and the first
    again after it had access in between."""
    news = [
        store(db_engine, make_load(hour=hour, **load)).newly_not_permitted
        for hour, load in enumerate(
            [
                {"not_permitted": REFUSED, "balance": make_balance()},
                {"not_permitted": REFUSED, "balance": make_balance()},
                {"balance": make_balance()},  # FCM access granted
                {"not_permitted": REFUSED, "balance": make_balance()},  # and withdrawn
            ]
        )
    ]
    assert news == [True, False, False, True]
    other = store(db_engine, make_load(account="acct-2", not_permitted=REFUSED))
    assert other.newly_not_permitted  # per account


# --- one transaction ----------------------------------------------------------------------------------


def test_a_history_row_refused_by_the_database_writes_no_hour_row(db_engine, store):
    from tests.pipelines.warehouse.test_store import _reject

    upgrade_warehouse(db_engine)
    _reject(db_engine, f"{DEFAULT_TABLE}_history", "NEW.balance_cents = 666")
    with pytest.raises(DBAPIError, match="rejected by test"):
        store(db_engine, make_load(breakdown={0: "1"}, balance=make_balance(666, breakdown={0: "6.66"})))
    for table in warehouse_tables():
        assert _count(db_engine, table.name) == 0, table.name


def test_a_failure_computing_the_free_margin_rolls_back_the_whole_load(monkeypatch, db_engine, store):
    store(db_engine, make_load(observed_minute=30, balance=make_balance(1, breakdown={0: "0.01"})))
    snapshot = (read_snapshots(db_engine), read_balances(db_engine), read_history(db_engine))

    def failing(*args):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(store_module, "balance_minus_resting", failing)
    with pytest.raises(RuntimeError, match="injected failure"):
        store(db_engine, make_load(observed_minute=5, cents=9, balance=make_balance(2)))
    assert (read_snapshots(db_engine), read_balances(db_engine), read_history(db_engine)) == snapshot


def test_a_reading_to_store_must_be_inside_its_hour_and_late_ones_only_go_to_the_history(db_engine, store):
    load = make_load(observed_minute=5, balance=make_balance(), balance_delay=timedelta(hours=1))
    with pytest.raises(InvalidSnapshotError, match="cannot stand for the hour"):
        store(db_engine, load)  # the balance arrived in the next hour: the load must say so
    stored = store(db_engine, load, not_in_hour={BALANCE_ENDPOINT: "after that hour ended"})
    assert stored.total.held and stored.balance is None
    assert read_balances(db_engine) == []
    with pytest.raises(InvalidSnapshotError, match="not_in_hour names endpoints other than"):
        store(db_engine, load, not_in_hour={"/portfolio/positions": "x"})


# --- the two paths agree ------------------------------------------------------------------------------


def test_the_portable_path_stores_the_balance_margin_and_history_as_the_upsert_does(db_engine):
    loads = [
        make_load(
            hour=0,
            observed_minute=10,
            cents=100,
            breakdown={0: "1"},
            balance=make_balance(500, breakdown={0: "5"}),
        ),
        make_load(
            hour=0,
            observed_minute=5,
            cents=100,
            breakdown={0: "1"},
            balance=make_balance(400, breakdown={1: "4"}),
        ),
        make_load(hour=0, observed_minute=30, balance=make_balance(1)),
        make_load(hour=1, not_permitted=REFUSED, balance=make_balance(7, breakdown={0: "0.07"})),
    ]
    stored = {}
    for portable, table in ((False, "via_upsert"), (True, "via_portable")):
        stored[portable] = [
            store_reading(
                db_engine,
                load.reading,
                snapshot_hour=load.hour,
                dag_run_id="r",
                table_name=table,
                portable=portable,
            )
            for load in loads
        ]
    assert (
        [(s.total and s.total.held, s.balance.held) for s in stored[False]]
        == [(s.total and s.total.held, s.balance.held) for s in stored[True]]
        == [(True, True), (True, True), (False, False), (None, True)]
    )

    def without_load_times(rows):
        return [
            {k: v for k, v in row.items() if k not in ("loaded_at", "recorded_at", "reading_id")}
            for row in rows
        ]

    for read in (read_balances, read_history):
        assert without_load_times(read(db_engine, table_name="via_upsert")) == without_load_times(
            read(db_engine, table_name="via_portable")
        )
