"""The driver write path (psycopg, sqlite3) against SQLAlchemy's own native upsert and the generic path."""

from __future__ import annotations

from sqlalchemy import event, text

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import read_snapshots, upsert_snapshots
from kalshi_provider.pipelines.warehouse import store as store_module


def _loads(make_snapshot):
    """Fresh hours, an older load (nothing won), a re-run (ties win), newer with a new breakdown."""
    return [
        [make_snapshot(hour=h, observed_minute=10, breakdown={0: "1.1", 1: "2"}) for h in range(4)],
        [make_snapshot(hour=1, observed_minute=5, cents=1, breakdown={7: "7"})],
        [make_snapshot(hour=2, observed_minute=10, dag_run_id="rerun", breakdown={1: "0.000001"})],
        [
            make_snapshot(hour=3, observed_minute=59, breakdown={}),
            make_snapshot(hour=0, observed_minute=30, breakdown={2: "-3.5", 5: "999999999999999999.999999"}),
            make_snapshot(account="b", hour=0, breakdown={0: "4"}),
        ],
    ]


def _stored(engine, table_name):
    rows = read_snapshots(engine, table_name=table_name, include_breakdown=True)
    return [{key: value for key, value in row.items() if key != "loaded_at"} for row in rows]


def test_driver_path_and_sqlalchemy_native_path_store_the_same(monkeypatch, db_engine, make_snapshot):
    assert (db_engine.dialect.name, db_engine.dialect.driver) in store_module._DRIVERS  # stock drivers
    loads = _loads(make_snapshot)
    counts = {"driver": [upsert_snapshots(db_engine, load, table_name="via_driver") for load in loads]}
    monkeypatch.setattr(store_module, "_DRIVERS", {})
    counts["sqlalchemy"] = [upsert_snapshots(db_engine, load, table_name="via_sqlalchemy") for load in loads]
    assert counts["driver"] == counts["sqlalchemy"] == [4, 0, 1, 3]
    assert _stored(db_engine, "via_driver") == _stored(db_engine, "via_sqlalchemy")


def test_fresh_hours_cost_no_breakdown_delete(db_engine, make_snapshot):
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.lstrip().split()[0].upper())

    upsert_snapshots(db_engine, [make_snapshot(hour=0, breakdown={0: "1"})])
    event.listen(db_engine, "before_cursor_execute", record)
    try:
        upsert_snapshots(db_engine, [make_snapshot(hour=h, breakdown={0: "1"}) for h in range(1, 50)])
        assert "DELETE" not in statements
        statements.clear()
        upsert_snapshots(db_engine, [make_snapshot(hour=h, observed_minute=30) for h in range(50)])
        assert statements.count("DELETE") == 1  # one executemany for the stored hours
    finally:
        event.remove(db_engine, "before_cursor_execute", record)
    assert all(row["breakdown"] == [] for row in read_snapshots(db_engine, include_breakdown=True))


def test_breakdown_rows_without_a_totals_row_are_still_replaced(db_engine, make_snapshot, force_generic):
    upsert_snapshots(db_engine, [make_snapshot(breakdown={0: "1", 1: "2"})], force_generic=force_generic)
    with db_engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {DEFAULT_TABLE}"))  # someone removed the total by hand
    later = make_snapshot(observed_minute=30, breakdown={1: "9"})
    assert upsert_snapshots(db_engine, [later], force_generic=force_generic) == 1
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert [(e["exchange_index"], str(e["balance_dollars"])) for e in row["breakdown"]] == [(1, "9.000000")]
