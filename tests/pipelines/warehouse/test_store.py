"""store_reading / read_snapshots against a real SQLite file, PostgreSQL and MariaDB server, through
the dialect's upsert and through the portable path."""

from __future__ import annotations

from datetime import timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    InvalidIdentifierError,
    InvalidSnapshotError,
    prepare_tables,
    read_snapshots,
    store_reading,
    upgrade_warehouse,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse import store as store_module
from kalshi_provider.readings import AccountReading
from tests.pipelines.warehouse.conftest import BASE_HOUR, make_balance, make_load

BREAKDOWN_TABLE = f"{DEFAULT_TABLE}_breakdown"
PROBLEMS_TABLE = f"{DEFAULT_TABLE}_problems"


def _count(engine: Engine, table_name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(text(table_name))).scalar_one()


def _table_names(engine: Engine, schema: str | None = None) -> set[str]:
    return set(inspect(engine).get_table_names(schema))


def _reject(engine: Engine, table: str, condition: str) -> None:
    """Make the database itself refuse an INSERT into ``table`` when ``condition`` (on NEW) holds,
    with an integrity error (what a CHECK constraint or a foreign key would raise)."""
    with engine.begin() as conn:
        dialect = engine.dialect.name
        if dialect == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER reject_{table} BEFORE INSERT ON {table} "
                f"WHEN {condition} BEGIN SELECT RAISE(ABORT, 'rejected by test'); END"
            )
        elif dialect == "postgresql":
            conn.exec_driver_sql(
                f"CREATE FUNCTION reject_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {condition} THEN RAISE EXCEPTION 'rejected by test' "
                "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER reject_{table} BEFORE INSERT ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION reject_{table}()"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TRIGGER reject_{table} BEFORE INSERT ON {table} FOR EACH ROW BEGIN "
                f"IF {condition} THEN SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'rejected by test'; "
                "END IF; END"
            )


def _stored(engine: Engine, **table) -> list[dict]:
    rows = read_snapshots(engine, include_breakdown=True, **table)
    return [{key: value for key, value in row.items() if key != "loaded_at"} for row in rows]


# --- creation ------------------------------------------------------------------------------------


def test_tables_are_created_when_absent_with_their_keys(db_engine):
    assert DEFAULT_TABLE not in _table_names(db_engine)
    prepare_tables(db_engine)
    prepare_tables(db_engine)  # existing tables of the right shape pass the check
    inspector = inspect(db_engine)
    names = {table.name for table in warehouse_tables()}
    assert names == set(inspector.get_table_names())
    keys = {name: inspector.get_pk_constraint(name)["constrained_columns"] for name in names}
    hourly, shard = ["account", "snapshot_hour"], ["account", "snapshot_hour", "exchange_index"]
    assert keys == {
        DEFAULT_TABLE: hourly,
        BREAKDOWN_TABLE: shard,
        PROBLEMS_TABLE: hourly,
        f"{DEFAULT_TABLE}_balance": hourly,
        f"{DEFAULT_TABLE}_bal_shard": shard,
        f"{DEFAULT_TABLE}_bal_rest": shard,
        f"{DEFAULT_TABLE}_history": ["reading_id"],
        f"{DEFAULT_TABLE}_subacct": ["account", "snapshot_hour", "subaccount_number", "exchange_index"],
    }


def test_reading_before_any_load_gives_no_rows(db_engine):
    assert read_snapshots(db_engine) == []
    assert DEFAULT_TABLE not in _table_names(db_engine)


def test_custom_table_name_and_explicit_schema(request, db_engine, store):
    schema = {
        "postgresql": lambda: request.getfixturevalue("postgres_schema"),
        "mysql": lambda: request.getfixturevalue("mariadb_database"),
        "sqlite": lambda: "main",
    }[db_engine.dialect.name]()
    assert store(db_engine, make_load(), table_name="Custom_Totals", schema=schema).held
    assert {"Custom_Totals", "Custom_Totals_breakdown"} <= _table_names(db_engine, schema)
    assert len(read_snapshots(db_engine, table_name="Custom_Totals", schema=schema)) == 1
    assert read_snapshots(db_engine) == []


# --- identifiers ---------------------------------------------------------------------------------

BAD_IDENTIFIERS = [
    "",
    "bad-name",
    "1starts_with_digit",
    "has space",
    "x; DROP TABLE y",
    'quo"te',
    "back`tick",
    "trailing_newline\n",
    "ünïcode",
    "a" * 64,
    None,
]


@pytest.mark.parametrize("bad", BAD_IDENTIFIERS)
def test_bad_table_names_are_refused(sqlite_engine, bad):
    load = make_load()
    with pytest.raises(InvalidIdentifierError, match=r"table name .* is not a plain SQL identifier") as err:
        store_reading(sqlite_engine, load.reading, snapshot_hour=load.hour, dag_run_id=None, table_name=bad)
    assert repr(bad) in str(err.value) and "^[A-Za-z_][A-Za-z0-9_]{0,62}$" in str(err.value)
    with pytest.raises(InvalidIdentifierError):
        read_snapshots(sqlite_engine, table_name=bad)
    assert _table_names(sqlite_engine) == set()


@pytest.mark.parametrize("bad", [b for b in BAD_IDENTIFIERS if b is not None])
def test_bad_schemas_are_refused(sqlite_engine, bad):
    load = make_load()
    with pytest.raises(InvalidIdentifierError, match=r"schema .* is not a plain SQL identifier"):
        store_reading(sqlite_engine, load.reading, snapshot_hour=load.hour, dag_run_id=None, schema=bad)
    with pytest.raises(InvalidIdentifierError):
        read_snapshots(sqlite_engine, schema=bad)
    assert _table_names(sqlite_engine) == set()


def test_a_table_name_too_long_for_its_breakdown_table_is_refused():
    with pytest.raises(InvalidIdentifierError, match="breakdown table name"):
        warehouse_tables("t" * 54)  # fine alone, but "<name>_breakdown" would exceed 63 characters
    tables = warehouse_tables("t" * 53)  # the longest name accepted before the other tables existed
    assert [table.name.removeprefix("t" * 53) for table in tables] == [
        "",
        "_breakdown",
        "_problems",
        "_balance",
        "_bal_shard",
        "_bal_rest",
        "_history",
        "_subacct",
    ]
    assert max(len(table.name) for table in tables) == 63


# --- the row: exact, aware UTC -------------------------------------------------------------------


def test_a_stored_hour_reads_back_exactly_in_aware_utc(db_engine, store):
    loads = [make_load(hour=h, cents=2**63 - 1 - h, breakdown={0: "10.25"}) for h in range(3)]
    for load in loads:
        assert store(db_engine, load).held
    rows = read_snapshots(db_engine)
    assert [row["total_resting_order_value_cents"] for row in rows] == [2**63 - 1, 2**63 - 2, 2**63 - 3]
    for row, load in zip(rows, loads, strict=True):
        assert row["account"] == "acct-1" and row["dag_run_id"] == "run-1"
        for column in ("snapshot_hour", "observed_at", "loaded_at"):
            assert row[column].utcoffset() == timedelta(0)
        assert row["snapshot_hour"] == load.hour
        assert row["observed_at"] == load.observed_at


def test_microseconds_and_non_utc_input_survive(db_engine, store):
    load = make_load()
    plus_five = timezone(timedelta(hours=5))
    observed = (load.hour + timedelta(minutes=7, microseconds=123457)).astimezone(plus_five)
    reading = AccountReading(load.reading.account, observed, load.reading.resting_order_value)
    store(db_engine, type(load)(reading, load.hour.astimezone(plus_five), None))
    (row,) = read_snapshots(db_engine)
    assert row["snapshot_hour"] == BASE_HOUR and row["snapshot_hour"].tzinfo == timezone.utc
    assert row["observed_at"] == observed and row["observed_at"].microsecond == 123457
    assert row["dag_run_id"] is None


def test_accounts_differing_in_case_are_different_accounts(db_engine, store):
    # MySQL/MariaDB compare text case-insensitively unless the column is binary-collated.
    # (Their PAD SPACE collations also equate trailing spaces, which Airflow connection ids never have.)
    for account in ("acct", "ACCT", "Acct"):
        assert store(db_engine, make_load(account=account)).held
    assert sorted(row["account"] for row in read_snapshots(db_engine)) == ["ACCT", "Acct", "acct"]


EXACT_BALANCES = {
    0: "999999999999999999.999999",
    1: "0.000001",
    2: "-12.340000",
    3: "0.1",
    4: "123456789.123456",
}


def test_breakdown_balances_round_trip_exactly(db_engine, store):
    store(db_engine, make_load(breakdown=EXACT_BALANCES))
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    balances = {
        entry["exchange_index"]: entry["shard_resting_order_value_dollars"] for entry in row["breakdown"]
    }
    assert balances == {index: Decimal(value) for index, value in EXACT_BALANCES.items()}
    assert all(type(value) is Decimal and value.as_tuple().exponent == -6 for value in balances.values())
    assert row["breakdown_problem"] is None


def test_read_filters_by_account_and_half_open_hour_range(db_engine, store):
    for account in ("acct-1", "acct-2"):
        for hour in range(4):
            store(db_engine, make_load(account=account, hour=hour))
    since, until = BASE_HOUR + timedelta(hours=1), BASE_HOUR + timedelta(hours=3)
    rows = read_snapshots(db_engine, account="acct-2", since=since, until=until)
    assert [(r["account"], r["snapshot_hour"]) for r in rows] == [
        ("acct-2", BASE_HOUR + timedelta(hours=1)),
        ("acct-2", BASE_HOUR + timedelta(hours=2)),
    ]
    assert len(read_snapshots(db_engine, since=BASE_HOUR + timedelta(hours=3))) == 2
    with pytest.raises(InvalidSnapshotError, match="since must be timezone-aware"):
        read_snapshots(db_engine, since=BASE_HOUR.replace(tzinfo=None))


# --- which observation an hour keeps: the earliest -----------------------------------------------


def test_a_later_observation_leaves_the_hour_as_it_was(db_engine, store):
    first = make_load(cents=100, observed_minute=5, dag_run_id="run-1", breakdown={0: "1", 1: "3"})
    assert store(db_engine, first).held
    before = _stored(db_engine)
    later = make_load(cents=250, observed_minute=40, dag_run_id="run-2", breakdown={0: "2.5"})
    result = store(db_engine, later)
    assert not result.held
    assert (result.observed_at, result.dag_run_id) == (first.observed_at, "run-1")
    assert _stored(db_engine) == before


def test_an_earlier_observation_replaces_the_row_and_its_breakdown(db_engine, store):
    store(db_engine, make_load(cents=250, observed_minute=40, dag_run_id="run-2", breakdown={0: "1", 7: "2"}))
    earlier = make_load(cents=100, observed_minute=5, dag_run_id="run-1", breakdown={1: "9.5"})
    assert store(db_engine, earlier).held
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert row["total_resting_order_value_cents"] == 100
    assert (row["observed_at"], row["dag_run_id"]) == (earlier.observed_at, "run-1")
    assert row["breakdown"] == [{"exchange_index": 1, "shard_resting_order_value_dollars": Decimal("9.5")}]
    breakdown = warehouse_tables().breakdown
    with db_engine.connect() as conn:
        assert conn.execute(select(breakdown.c.observed_at)).scalars().all() == [earlier.observed_at]


def test_the_same_observation_again_changes_nothing(db_engine, store):
    """A retried or re-triggered load of the same reading: the row keeps its run and load time."""
    load = make_load(breakdown={0: "1"})
    store(db_engine, load)
    before = read_snapshots(db_engine, include_breakdown=True)
    again = store(db_engine, make_load(dag_run_id="run-2", breakdown={0: "1"}))
    assert again.held and again.dag_run_id == "run-1"
    assert read_snapshots(db_engine, include_breakdown=True) == before


def test_an_earlier_observation_without_breakdown_leaves_no_stale_rows(db_engine, store):
    store(db_engine, make_load(observed_minute=20, breakdown={0: "1", 1: "2"}))
    assert store(db_engine, make_load(observed_minute=5, cents=5)).held
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert row["total_resting_order_value_cents"] == 5 and row["breakdown"] == []
    assert _count(db_engine, BREAKDOWN_TABLE) == 0


def test_breakdown_of_other_hours_is_untouched(db_engine, store):
    store(db_engine, make_load(hour=0, breakdown={0: "1"}))
    store(db_engine, make_load(hour=1, observed_minute=30, breakdown={0: "2"}))
    store(db_engine, make_load(hour=1, observed_minute=3))
    assert [len(row["breakdown"]) for row in read_snapshots(db_engine, include_breakdown=True)] == [1, 0]


def test_breakdown_rows_without_a_totals_row_are_replaced(db_engine, store):
    store(db_engine, make_load(breakdown={0: "1", 1: "2"}))
    with db_engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {DEFAULT_TABLE}"))  # someone removed the total by hand
    assert store(db_engine, make_load(observed_minute=30, breakdown={1: "9"})).held
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    resting = [(e["exchange_index"], str(e["shard_resting_order_value_dollars"])) for e in row["breakdown"]]
    assert resting == [(1, "9.000000")]


def test_a_reading_observed_outside_its_hour_is_refused(db_engine, store):
    for minute in (-1, 60, 61):
        load = make_load(observed_minute=minute)
        with pytest.raises(InvalidSnapshotError, match="cannot stand for the hour"):
            store(db_engine, type(load)(load.reading, BASE_HOUR, None))
    with pytest.raises(InvalidSnapshotError, match="exactly on a UTC hour"):
        load = make_load()
        store(db_engine, type(load)(load.reading, BASE_HOUR + timedelta(seconds=1), None))
    assert read_snapshots(db_engine) == []


# --- a breakdown the fetch left out ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "dag_id", "says"),
    [
        (
            {"breakdown": {0: "1000000000000000000"}},
            None,
            "shard 0's resting order value 1000000000000000000",
        ),
        ({"balance": make_balance(1, "-1e18")}, None, "the balance's dollars"),
        ({"account": "a" * 251}, None, "the account has 251 characters; its column holds 250"),
        ({}, "d" * 251, "dag_id has 251 characters"),
    ],
    ids=["dollars", "balance", "account", "dag-id"],
)
def test_values_the_columns_cannot_hold_are_refused_before_anything_is_written(
    db_engine, store, load, dag_id, says
):
    """The reading is Kalshi's, checked by the provider for Kalshi's formats; whether it fits the
    columns is the warehouse's check, made before its first write, naming what does not fit."""
    upgrade_warehouse(db_engine)
    made = make_load(**load)
    with pytest.raises(InvalidSnapshotError, match="the warehouse's columns cannot hold") as refused:
        store(db_engine, made, dag_id=dag_id)
    assert says in str(refused.value)
    assert _count(db_engine, DEFAULT_TABLE) == _count(db_engine, f"{DEFAULT_TABLE}_history") == 0


def test_a_left_out_breakdown_keeps_the_total_and_is_recorded(db_engine, store):
    problem = "Kalshi's resting_order_value_breakdown: exchange 0's amount has more than 6 decimal places"
    assert store(db_engine, make_load(cents=777, problem=problem)).held
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert row["total_resting_order_value_cents"] == 777
    assert (row["breakdown"], row["breakdown_problem"]) == ([], problem)
    # An earlier, complete observation of the hour replaces the note with its breakdown.
    assert store(db_engine, make_load(observed_minute=1, breakdown={0: "7.77"})).held
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert row["breakdown_problem"] is None and len(row["breakdown"]) == 1
    assert _count(db_engine, PROBLEMS_TABLE) == 0


# --- nothing half-written -------------------------------------------------------------------------


def test_a_totals_row_refused_by_the_database_writes_nothing(db_engine, store):
    upgrade_warehouse(db_engine)
    _reject(db_engine, DEFAULT_TABLE, "NEW.total_resting_order_value_cents = 666")
    with pytest.raises(DBAPIError, match="rejected by test"):
        store(db_engine, make_load(cents=666, breakdown={0: "6.66"}))
    assert _count(db_engine, DEFAULT_TABLE) == _count(db_engine, BREAKDOWN_TABLE) == 0


def test_a_breakdown_row_refused_by_the_database_rolls_back_the_total(db_engine, store):
    store(db_engine, make_load(observed_minute=30, cents=1, breakdown={0: "1"}))
    stored = read_snapshots(db_engine, include_breakdown=True)
    _reject(db_engine, BREAKDOWN_TABLE, "NEW.exchange_index = 666")
    with pytest.raises(DBAPIError, match="rejected by test"):
        store(db_engine, make_load(observed_minute=5, cents=2, breakdown={0: "1", 666: "2"}))
    assert read_snapshots(db_engine, include_breakdown=True) == stored
    with pytest.raises(DBAPIError, match="rejected by test"):
        store(db_engine, make_load(hour=1, breakdown={666: "2"}))
    assert len(read_snapshots(db_engine)) == 1


def test_a_failure_after_the_total_rolls_it_back(monkeypatch, db_engine, store):
    store(db_engine, make_load(observed_minute=30, breakdown={0: "1"}))
    stored = read_snapshots(db_engine, include_breakdown=True)
    seen_inside = []

    def failing_details(load, conn, *, fresh):
        totals = load.tables.totals
        seen_inside.append(conn.execute(select(totals.c.total_resting_order_value_cents)).scalar_one())
        raise RuntimeError("injected failure")

    monkeypatch.setattr(store_module._Load, "_write_total_details", failing_details)
    with pytest.raises(RuntimeError, match="injected failure"):
        store(db_engine, make_load(observed_minute=5, cents=9))
    assert seen_inside == [9]  # the total was written inside the transaction...
    assert read_snapshots(db_engine, include_breakdown=True) == stored  # ...and rolled back


# --- the two paths agree --------------------------------------------------------------------------


def test_the_portable_path_stores_what_the_upsert_stores(db_engine):
    loads = [
        *(make_load(hour=h, observed_minute=10, breakdown={0: "1.1", 1: "2"}) for h in range(3)),
        make_load(hour=1, observed_minute=5, cents=1, breakdown={7: "7"}),  # earlier: replaces
        make_load(hour=2, observed_minute=30, cents=2),  # later: kept out
        make_load(hour=2, observed_minute=10, dag_run_id="rerun"),  # the same observation again
        make_load(hour=0, observed_minute=0, problem="left out"),
        make_load(account="b", hour=0, breakdown={0: "999999999999999999.999999"}),
    ]
    held = {}
    for portable, table in ((False, "via_upsert"), (True, "via_portable")):
        held[portable] = [
            store_reading(
                db_engine,
                load.reading,
                snapshot_hour=load.hour,
                dag_run_id=load.dag_run_id,
                table_name=table,
                portable=portable,
            ).held
            for load in loads
        ]
    assert held[False] == held[True] == [True, True, True, True, False, True, True, True]
    assert _stored(db_engine, table_name="via_upsert") == _stored(db_engine, table_name="via_portable")
