"""upsert_snapshots / read_snapshots against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    InvalidIdentifierError,
    InvalidSnapshotError,
    ensure_tables,
    read_snapshots,
    upsert_snapshots,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse import store as store_module

BASE_HOUR = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)  # as in conftest's make_snapshot
BREAKDOWN_TABLE = f"{DEFAULT_TABLE}_breakdown"


def _count(engine: Engine, table_name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(text(table_name))).scalar_one()


def _table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _without_loaded_at(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "loaded_at"} for row in rows]


def _reject_account_trigger(engine: Engine, table_name: str, column: str, value: str) -> None:
    """Make the database itself refuse rows whose ``column`` equals ``value`` (a DB-level failure)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER reject_{table_name} BEFORE INSERT ON {table_name} "
                f"WHEN NEW.{column} = {value} BEGIN SELECT RAISE(ABORT, 'rejected by test'); END"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE FUNCTION reject_{table_name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.{column} = {value} THEN RAISE EXCEPTION 'rejected by test'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER reject_{table_name} BEFORE INSERT OR UPDATE ON {table_name} "
                f"FOR EACH ROW EXECUTE FUNCTION reject_{table_name}()"
            )


# --- creation ------------------------------------------------------------------------------


def test_tables_are_created_when_absent_and_creation_is_idempotent(db_engine):
    assert DEFAULT_TABLE not in _table_names(db_engine)
    ensure_tables(db_engine)
    ensure_tables(db_engine)
    assert upsert_snapshots(db_engine, []) == 0
    inspector = inspect(db_engine)
    assert {DEFAULT_TABLE, BREAKDOWN_TABLE} <= set(inspector.get_table_names())
    assert inspector.get_pk_constraint(DEFAULT_TABLE)["constrained_columns"] == [
        "account",
        "snapshot_hour",
    ]
    assert inspector.get_pk_constraint(BREAKDOWN_TABLE)["constrained_columns"] == [
        "account",
        "snapshot_hour",
        "exchange_index",
    ]
    columns = {column["name"] for column in inspector.get_columns(DEFAULT_TABLE)}
    assert columns == {
        "account",
        "snapshot_hour",
        "total_resting_order_value_cents",
        "observed_at",
        "dag_run_id",
        "loaded_at",
    }


def test_first_upsert_creates_the_tables(db_engine, make_snapshot, force_generic):
    assert upsert_snapshots(db_engine, [make_snapshot()], force_generic=force_generic) == 1
    assert {DEFAULT_TABLE, BREAKDOWN_TABLE} <= _table_names(db_engine)


def test_reading_before_any_load_gives_no_rows(db_engine):
    assert read_snapshots(db_engine) == []
    assert DEFAULT_TABLE not in _table_names(db_engine)


def test_custom_table_name_and_explicit_schema(request, db_engine, make_snapshot, force_generic):
    schema = request.getfixturevalue("postgres_schema") if db_engine.dialect.name == "postgresql" else "main"
    written = upsert_snapshots(
        db_engine, [make_snapshot()], table_name="Custom_Totals", schema=schema, force_generic=force_generic
    )
    assert written == 1
    assert {"Custom_Totals", "Custom_Totals_breakdown"} <= set(inspect(db_engine).get_table_names(schema))
    assert len(read_snapshots(db_engine, table_name="Custom_Totals", schema=schema)) == 1
    assert read_snapshots(db_engine) == []


# --- identifiers ---------------------------------------------------------------------------

BAD_IDENTIFIERS = [
    "",
    "bad-name",
    "1starts_with_digit",
    "has space",
    "x; DROP TABLE y",
    'quo"te',
    "trailing_newline\n",
    "ünïcode",
    "a" * 64,
    None,
]


@pytest.mark.parametrize("bad", BAD_IDENTIFIERS)
def test_bad_table_names_are_refused(db_engine, make_snapshot, bad):
    with pytest.raises(InvalidIdentifierError, match=r"table name .* is not a plain SQL identifier") as err:
        upsert_snapshots(db_engine, [make_snapshot()], table_name=bad)
    assert repr(bad) in str(err.value) and "^[A-Za-z_][A-Za-z0-9_]{0,62}$" in str(err.value)
    with pytest.raises(InvalidIdentifierError):
        read_snapshots(db_engine, table_name=bad)
    with pytest.raises(ValueError):
        ensure_tables(db_engine, table_name=bad)
    assert _table_names(db_engine) == set()


@pytest.mark.parametrize("bad", [b for b in BAD_IDENTIFIERS if b is not None])
def test_bad_schemas_are_refused(db_engine, make_snapshot, bad):
    with pytest.raises(InvalidIdentifierError, match=r"schema .* is not a plain SQL identifier") as err:
        upsert_snapshots(db_engine, [make_snapshot()], schema=bad)
    assert repr(bad) in str(err.value)
    with pytest.raises(InvalidIdentifierError):
        read_snapshots(db_engine, schema=bad)
    assert _table_names(db_engine) == set()


def test_a_table_name_too_long_for_its_breakdown_table_is_refused():
    name = "t" * 60  # fine alone, but "<name>_breakdown" would exceed 63 characters
    with pytest.raises(InvalidIdentifierError, match="breakdown table name"):
        warehouse_tables(name)
    assert warehouse_tables("t" * 53)[1].name == "t" * 53 + "_breakdown"


# --- insert, replace, keep -----------------------------------------------------------------


def test_insert_and_read_back_aware_utc(db_engine, make_snapshot, force_generic):
    snapshots = [make_snapshot(hour=h, cents=1000 + h, breakdown={0: "10.25"}) for h in range(3)]
    before = datetime.now(timezone.utc)
    assert upsert_snapshots(db_engine, snapshots, force_generic=force_generic) == 3
    rows = read_snapshots(db_engine)
    assert [row["total_resting_order_value_cents"] for row in rows] == [1000, 1001, 1002]
    for row, snapshot in zip(rows, snapshots, strict=True):
        assert row["account"] == "acct-1" and row["dag_run_id"] == "run-1"
        for column in ("snapshot_hour", "observed_at", "loaded_at"):
            assert row[column].tzinfo is not None and row[column].utcoffset() == timedelta(0)
        assert row["snapshot_hour"] == snapshot.snapshot_hour
        assert row["observed_at"] == snapshot.observed_at
        assert row["loaded_at"] >= before - timedelta(seconds=1)


def test_non_utc_input_is_stored_as_utc(db_engine, make_snapshot, force_generic):
    plus_five = timezone(timedelta(hours=5))
    local = make_snapshot()
    shifted = type(local)(
        account=local.account,
        snapshot_hour=local.snapshot_hour.astimezone(plus_five),
        total_resting_order_value_cents=1,
        observed_at=local.observed_at.astimezone(plus_five),
        dag_run_id=None,
    )
    upsert_snapshots(db_engine, [shifted], force_generic=force_generic)
    (row,) = read_snapshots(db_engine)
    assert row["snapshot_hour"] == BASE_HOUR and row["snapshot_hour"].tzinfo == timezone.utc
    assert row["dag_run_id"] is None


def test_a_later_observation_replaces_the_row(db_engine, make_snapshot, force_generic):
    upsert_snapshots(db_engine, [make_snapshot(cents=100, observed_minute=5)], force_generic=force_generic)
    later = make_snapshot(cents=250, observed_minute=40, dag_run_id="run-2")
    assert upsert_snapshots(db_engine, [later], force_generic=force_generic) == 1
    (row,) = read_snapshots(db_engine)
    assert row["total_resting_order_value_cents"] == 250
    assert row["observed_at"] == later.observed_at and row["dag_run_id"] == "run-2"


def test_an_older_observation_does_not_overwrite(db_engine, make_snapshot, force_generic):
    newer = make_snapshot(cents=250, observed_minute=40, dag_run_id="run-2", breakdown={0: "2.5"})
    upsert_snapshots(db_engine, [newer], force_generic=force_generic)
    stored = read_snapshots(db_engine, include_breakdown=True)
    older = make_snapshot(cents=100, observed_minute=5, dag_run_id="run-1", breakdown={0: "1", 1: "3"})
    assert upsert_snapshots(db_engine, [older], force_generic=force_generic) == 0
    assert read_snapshots(db_engine, include_breakdown=True) == stored


def test_a_rerun_gives_one_row_carrying_the_rerun(db_engine, make_snapshot, force_generic):
    first = make_snapshot(dag_run_id="scheduled__1")
    assert upsert_snapshots(db_engine, [first], force_generic=force_generic) == 1
    rerun = make_snapshot(dag_run_id="manual__2")  # same observation, loaded again
    assert upsert_snapshots(db_engine, [rerun], force_generic=force_generic) == 1
    rows = read_snapshots(db_engine)
    assert len(rows) == 1 and rows[0]["dag_run_id"] == "manual__2"


def test_duplicates_within_one_batch_collapse_to_the_latest(db_engine, make_snapshot, force_generic):
    batch = [
        make_snapshot(cents=2, observed_minute=30, dag_run_id="b"),
        make_snapshot(cents=1, observed_minute=10, dag_run_id="a"),
        make_snapshot(account="acct-2", cents=7),
    ]
    assert upsert_snapshots(db_engine, batch, force_generic=force_generic) == 2
    rows = read_snapshots(db_engine)
    assert [(r["account"], r["total_resting_order_value_cents"]) for r in rows] == [
        ("acct-1", 2),
        ("acct-2", 7),
    ]


def test_mixed_batch_counts_only_the_hours_we_won(db_engine, make_snapshot, force_generic):
    upsert_snapshots(db_engine, [make_snapshot(hour=0, observed_minute=50)], force_generic=force_generic)
    batch = [make_snapshot(hour=0, observed_minute=10), make_snapshot(hour=1), make_snapshot(hour=2)]
    assert upsert_snapshots(db_engine, batch, force_generic=force_generic) == 2
    assert len(read_snapshots(db_engine)) == 3


def test_invalid_input_is_refused_before_writing(db_engine, make_snapshot):
    with pytest.raises(InvalidSnapshotError, match="expected Snapshot objects"):
        upsert_snapshots(db_engine, [make_snapshot(), {"account": "x"}])
    assert read_snapshots(db_engine) == []


def test_read_filters_by_account_and_half_open_hour_range(db_engine, make_snapshot):
    upsert_snapshots(
        db_engine, [make_snapshot(account=a, hour=h) for a in ("acct-1", "acct-2") for h in range(4)]
    )
    rows = read_snapshots(
        db_engine,
        account="acct-2",
        since=BASE_HOUR + timedelta(hours=1),
        until=BASE_HOUR + timedelta(hours=3),
    )
    assert [(r["account"], r["snapshot_hour"]) for r in rows] == [
        ("acct-2", BASE_HOUR + timedelta(hours=1)),
        ("acct-2", BASE_HOUR + timedelta(hours=2)),
    ]
    assert len(read_snapshots(db_engine, since=BASE_HOUR + timedelta(hours=3))) == 2
    with pytest.raises(InvalidSnapshotError, match="since must be timezone-aware"):
        read_snapshots(db_engine, since=datetime(2026, 3, 1))


# --- breakdown -----------------------------------------------------------------------------

EXACT_BALANCES = {
    0: "999999999999999999.999999",
    1: "0.000001",
    2: "-12.340000",
    3: "0.1",
    4: "123456789.123456",
}


def test_breakdown_balances_round_trip_exactly(db_engine, make_snapshot, force_generic):
    upsert_snapshots(db_engine, [make_snapshot(breakdown=EXACT_BALANCES)], force_generic=force_generic)
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    balances = {entry["exchange_index"]: entry["balance_dollars"] for entry in row["breakdown"]}
    assert balances == {index: Decimal(value) for index, value in EXACT_BALANCES.items()}
    assert all(type(value) is Decimal for value in balances.values())
    assert [entry["exchange_index"] for entry in row["breakdown"]] == sorted(EXACT_BALANCES)


def test_breakdown_is_replaced_by_a_later_observation(db_engine, make_snapshot, force_generic):
    upsert_snapshots(
        db_engine,
        [make_snapshot(observed_minute=5, breakdown={0: "1", 1: "2", 2: "3"})],
        force_generic=force_generic,
    )
    upsert_snapshots(
        db_engine, [make_snapshot(observed_minute=20, breakdown={1: "9.5"})], force_generic=force_generic
    )
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert row["breakdown"] == [{"exchange_index": 1, "balance_dollars": Decimal("9.5")}]
    with db_engine.connect() as conn:
        (_, breakdown) = warehouse_tables()
        observed = conn.execute(select(breakdown.c.observed_at)).scalars().all()
    assert observed == [row["observed_at"]]


def test_a_later_observation_without_breakdown_leaves_no_stale_rows(db_engine, make_snapshot, force_generic):
    upsert_snapshots(
        db_engine, [make_snapshot(observed_minute=5, breakdown={0: "1", 1: "2"})], force_generic=force_generic
    )
    assert (
        upsert_snapshots(db_engine, [make_snapshot(observed_minute=20, cents=5)], force_generic=force_generic)
        == 1
    )
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert row["total_resting_order_value_cents"] == 5 and row["breakdown"] == []
    assert _count(db_engine, BREAKDOWN_TABLE) == 0


def test_breakdown_of_other_hours_is_untouched(db_engine, make_snapshot, force_generic):
    upsert_snapshots(
        db_engine, [make_snapshot(hour=0, breakdown={0: "1"}), make_snapshot(hour=1, breakdown={0: "2"})]
    )
    upsert_snapshots(db_engine, [make_snapshot(hour=1, observed_minute=30)], force_generic=force_generic)
    rows = read_snapshots(db_engine, include_breakdown=True)
    assert [len(row["breakdown"]) for row in rows] == [1, 0]


# --- atomicity -----------------------------------------------------------------------------


def test_a_row_refused_by_the_database_rolls_back_the_whole_batch(db_engine, make_snapshot, force_generic):
    upsert_snapshots(db_engine, [make_snapshot(hour=0, cents=1, breakdown={0: "1"})])
    stored = read_snapshots(db_engine, include_breakdown=True)
    _reject_account_trigger(db_engine, DEFAULT_TABLE, "account", "'boom'")
    batch = [
        make_snapshot(hour=0, cents=2, observed_minute=30, breakdown={0: "2"}),  # would replace
        make_snapshot(account="boom", hour=1),  # refused by the database
        make_snapshot(hour=2),
    ]
    with pytest.raises(DBAPIError, match="rejected by test"):
        upsert_snapshots(db_engine, batch, force_generic=force_generic)
    assert read_snapshots(db_engine, include_breakdown=True) == stored


def test_a_breakdown_row_refused_by_the_database_rolls_back_the_totals(
    db_engine, make_snapshot, force_generic
):
    ensure_tables(db_engine)
    _reject_account_trigger(db_engine, BREAKDOWN_TABLE, "exchange_index", "666")
    batch = [make_snapshot(hour=0, breakdown={0: "1"}), make_snapshot(hour=1, breakdown={0: "1", 666: "2"})]
    with pytest.raises(DBAPIError, match="rejected by test"):
        upsert_snapshots(db_engine, batch, force_generic=force_generic)
    assert _count(db_engine, DEFAULT_TABLE) == 0
    assert _count(db_engine, BREAKDOWN_TABLE) == 0


def test_a_failure_between_totals_and_breakdown_rolls_back(
    monkeypatch, db_engine, make_snapshot, force_generic
):
    upsert_snapshots(db_engine, [make_snapshot(hour=0, breakdown={0: "1"})])
    stored = read_snapshots(db_engine, include_breakdown=True)
    written_before_failure = []

    def failing_breakdown(conn, breakdown, snapshots):
        written_before_failure.append(
            conn.execute(select(func.count()).select_from(text(DEFAULT_TABLE))).scalar()
        )
        raise RuntimeError("injected failure")

    monkeypatch.setattr(store_module, "_replace_breakdown", failing_breakdown)
    batch = [make_snapshot(hour=0, observed_minute=30, cents=9), make_snapshot(hour=1), make_snapshot(hour=2)]
    with pytest.raises(RuntimeError, match="injected failure"):
        upsert_snapshots(db_engine, batch, force_generic=force_generic)
    assert written_before_failure == [3]  # the totals were written inside the transaction...
    assert read_snapshots(db_engine, include_breakdown=True) == stored  # ...and rolled back


# --- the two write paths agree -------------------------------------------------------------


def test_generic_fallback_gives_the_same_results_as_the_native_upsert(db_engine, make_snapshot):
    loads = [
        [make_snapshot(hour=h, observed_minute=10, breakdown={0: "1.1", 1: "2"}) for h in range(4)],
        [
            make_snapshot(hour=1, observed_minute=5, cents=1),
            make_snapshot(hour=2, observed_minute=30, cents=2),
        ],
        [make_snapshot(hour=3, observed_minute=10, dag_run_id="rerun"), make_snapshot(account="b", hour=0)],
        [
            make_snapshot(hour=0, observed_minute=59, breakdown={}),
            make_snapshot(account="b", observed_minute=1),
        ],
    ]
    counts = {}
    for generic, table in ((False, "native_path"), (True, "generic_path")):
        counts[generic] = [
            upsert_snapshots(db_engine, load, table_name=table, force_generic=generic) for load in loads
        ]
    assert counts[False] == counts[True] == [4, 1, 2, 1]
    native = read_snapshots(db_engine, table_name="native_path", include_breakdown=True)
    generic = read_snapshots(db_engine, table_name="generic_path", include_breakdown=True)
    assert _without_loaded_at(native) == _without_loaded_at(generic)


# --- volume --------------------------------------------------------------------------------


def test_ten_thousand_rows_in_one_call(db_engine, make_snapshot, force_generic):
    snapshots = [
        make_snapshot(account=f"acct-{i % 10}", hour=i // 10, cents=i, breakdown={0: f"{i}.5"})
        for i in range(10_000)
    ]
    assert upsert_snapshots(db_engine, snapshots, force_generic=force_generic) == 10_000
    assert _count(db_engine, DEFAULT_TABLE) == 10_000
    assert _count(db_engine, BREAKDOWN_TABLE) == 10_000
    rows = read_snapshots(db_engine, account="acct-7")
    assert len(rows) == 1000 and rows[-1]["total_resting_order_value_cents"] == 9_997


def test_totals_are_written_in_batches_not_a_round_trip_per_row(db_engine, make_snapshot):
    snapshots = [make_snapshot(account=f"acct-{i}", hour=i % 24) for i in range(2_500)]
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if DEFAULT_TABLE in statement and statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    ensure_tables(db_engine)
    event.listen(db_engine, "before_cursor_execute", record)
    try:
        for _ in range(2):  # fresh inserts, then a re-run that updates every row
            statements.clear()
            assert upsert_snapshots(db_engine, snapshots) == 2_500
            assert 0 < len(statements) <= 5
    finally:
        event.remove(db_engine, "before_cursor_execute", record)
