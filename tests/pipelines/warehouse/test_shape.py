"""Tables made beforehand: used when they hold every value exactly, refused (before any write) when not.

Each table here is made by hand with the engine's own DDL, as a DBA would, then a load is tried.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url

from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import WarehouseSchemaError, prepare_tables, read_snapshots
from tests.pipelines.warehouse.conftest import ENGINES, make_load

TOTALS, BREAKDOWN, PROBLEMS = DEFAULT_TABLE, f"{DEFAULT_TABLE}_breakdown", f"{DEFAULT_TABLE}_problems"

#: Column types a DBA would pick that hold the values exactly, per dialect.
GOOD = {
    "postgresql": {
        "account": "text",
        "hour": "timestamptz",
        "cents": "bigint",
        "text": "text",
        "index": "integer",
        "dollars": "numeric(24, 6)",
    },
    "sqlite": {
        "account": "TEXT",
        "hour": "DATETIME",
        "cents": "BIGINT",
        "text": "TEXT",
        "index": "INTEGER",
        "dollars": "VARCHAR(26)",
    },
    "mysql": {
        "account": "VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        "hour": "DATETIME(6)",
        "cents": "BIGINT",
        "text": "TEXT",
        "index": "INT",
        "dollars": "DECIMAL(24, 6)",
    },
}
COLUMNS = {
    TOTALS: [
        ("account", "account"),
        ("snapshot_hour", "hour"),
        ("total_resting_order_value_cents", "cents"),
        ("observed_at", "hour"),
        ("dag_run_id", "text"),
        ("loaded_at", "hour"),
    ],
    BREAKDOWN: [
        ("account", "account"),
        ("snapshot_hour", "hour"),
        ("exchange_index", "index"),
        ("balance_dollars", "dollars"),
        ("observed_at", "hour"),
    ],
}
KEYS = {TOTALS: "account, snapshot_hour", BREAKDOWN: "account, snapshot_hour, exchange_index"}


def make_tables(engine: Engine, changes: dict[str, str] | None = None, *, keys: bool = True, extra: str = ""):
    """Create the totals and breakdown tables by hand; ``changes`` maps ``table.column`` to a type."""
    changes = changes or {}
    types = GOOD[engine.dialect.name]
    with engine.begin() as conn:
        for table, columns in COLUMNS.items():
            body = [
                f"{name} {changes.get(f'{table}.{name}', types[kind])} NOT NULL" for name, kind in columns
            ]
            if extra and table == TOTALS:
                body.append(extra)  # before the key: SQLite wants columns before table constraints
            if keys:
                body.append(f"PRIMARY KEY ({KEYS[table]})")
            conn.exec_driver_sql(f"CREATE TABLE {table} ({', '.join(body)})")


def _store(engine: Engine, **load):
    from kalshi_provider.pipelines.warehouse import store_reading

    made = make_load(**load)
    return store_reading(engine, made.reading, snapshot_hour=made.hour, dag_run_id=made.dag_run_id)


def _rows_in(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _refused(engine: Engine, *expected: str, **load) -> str:
    with pytest.raises(WarehouseSchemaError) as refused:
        _store(engine, **load)
    message = str(refused.value)
    for part in expected:
        assert part in message, message
    assert "set the DAG's 'table' param" in message
    assert _rows_in(engine, TOTALS) == _rows_in(engine, BREAKDOWN) == 0  # refused before writing
    assert PROBLEMS not in inspect(engine).get_table_names()  # nothing created either
    return message


@pytest.fixture
def chicago_engine(postgres_url, postgres_schema):
    """A PostgreSQL session whose time zone is not UTC (America/Chicago), as a server's default may be."""
    engine = create_engine(
        make_url(postgres_url),
        connect_args={"options": f"-csearch_path={postgres_schema} -ctimezone=America/Chicago"},
    )
    yield engine
    engine.dispose()


# --- PostgreSQL -------------------------------------------------------------------------------------


def test_postgres_timestamp_without_time_zone_in_a_non_utc_session_is_refused(chicago_engine):
    make_tables(chicago_engine, {f"{TOTALS}.snapshot_hour": "timestamp"})
    _refused(
        chicago_engine,
        f"{TOTALS}.snapshot_hour is TIMESTAMP WITHOUT TIME ZONE",
        "it needs TIMESTAMP WITH TIME ZONE",
    )


def test_postgres_timestamps_that_drop_microseconds_are_refused(postgres_engine):
    make_tables(postgres_engine, {f"{BREAKDOWN}.observed_at": "timestamptz(0)"})
    _refused(postgres_engine, f"{BREAKDOWN}.observed_at is TIMESTAMP(0) WITH TIME ZONE")


def test_postgres_numeric_10_0_breakdown_is_refused_not_rounded(postgres_engine):
    make_tables(postgres_engine, {f"{BREAKDOWN}.balance_dollars": "numeric(10, 0)"})
    _refused(
        postgres_engine,
        f"{BREAKDOWN}.balance_dollars is NUMERIC(10, 0)",
        "NUMERIC(24, 6) or wider",
        breakdown={0: "1.50"},
    )


def test_postgres_double_precision_total_is_refused(postgres_engine):
    make_tables(postgres_engine, {f"{TOTALS}.total_resting_order_value_cents": "double precision"})
    _refused(
        postgres_engine,
        f"{TOTALS}.total_resting_order_value_cents is DOUBLE PRECISION",
        "BIGINT",
        cents=2**60 + 1,  # a double holds 2**60, not 2**60 + 1
    )


# --- each engine ------------------------------------------------------------------------------------

WRONG = {
    "sqlite": [
        ("breakdown-numeric", {f"{BREAKDOWN}.balance_dollars": "NUMERIC(24, 6)"}, "TEXT affinity"),
        ("total-real", {f"{TOTALS}.total_resting_order_value_cents": "REAL"}, "is REAL"),
        ("index-text", {f"{BREAKDOWN}.exchange_index": "TEXT"}, "exchange_index is TEXT"),
        ("hour-integer", {f"{TOTALS}.snapshot_hour": "INTEGER"}, "snapshot_hour is INTEGER"),
    ],
    "postgresql": [
        ("total-integer", {f"{TOTALS}.total_resting_order_value_cents": "integer"}, "is INTEGER"),
        ("index-smallint", {f"{BREAKDOWN}.exchange_index": "smallint"}, "is SMALLINT"),
        ("account-short", {f"{TOTALS}.account": "varchar(20)"}, "account is VARCHAR(20)"),
    ],
    "mysql": [
        ("hour-timestamp", {f"{TOTALS}.snapshot_hour": "TIMESTAMP(6)"}, "snapshot_hour is TIMESTAMP(6)"),
        ("hour-no-fsp", {f"{TOTALS}.observed_at": "DATETIME"}, "observed_at is DATETIME,"),
        ("breakdown-decimal-10-0", {f"{BREAKDOWN}.balance_dollars": "DECIMAL(10, 0)"}, "is DECIMAL(10, 0)"),
        ("total-double", {f"{TOTALS}.total_resting_order_value_cents": "DOUBLE"}, "is DOUBLE"),
        ("index-mediumint", {f"{BREAKDOWN}.exchange_index": "MEDIUMINT"}, "is MEDIUMINT"),
    ],
}
WRONG_CASES = [
    pytest.param(engine, changes, expected, id=f"{engine}-{case}")
    for engine, cases in WRONG.items()
    for case, changes, expected in cases
]


@pytest.mark.parametrize(("engine", "changes", "expected"), WRONG_CASES)
def test_a_column_that_cannot_hold_its_values_is_refused(request, engine, changes, expected):
    db = request.getfixturevalue(ENGINES["mariadb" if engine == "mysql" else engine])
    make_tables(db, changes)
    message = _refused(db, expected)
    (column,) = changes
    assert f"{column} is " in message


def test_a_table_without_the_primary_key_is_refused(db_engine):
    make_tables(db_engine, keys=False)
    needs = "it needs PRIMARY KEY (account, snapshot_hour)"
    message = _refused(db_engine, f"{TOTALS} has primary key (none); {needs}")
    assert f"{BREAKDOWN} has primary key (none)" in message


def test_a_primary_key_on_other_columns_is_refused(db_engine):
    make_tables(db_engine, keys=False, extra="UNIQUE (account, snapshot_hour), PRIMARY KEY (account)")
    _refused(db_engine, f"{TOTALS} has primary key (account); it needs PRIMARY KEY (account, snapshot_hour)")


def test_a_missing_column_and_a_required_column_of_its_own_are_refused(db_engine):
    make_tables(db_engine, extra="owner_id INTEGER NOT NULL")
    _refused(db_engine, f"{TOTALS}.owner_id is not one of ours and is NOT NULL without a default")
    with db_engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {BREAKDOWN}")
        conn.exec_driver_sql(
            f"CREATE TABLE {BREAKDOWN} (account TEXT, snapshot_hour {GOOD[db_engine.dialect.name]['hour']})"
        )
    with pytest.raises(
        WarehouseSchemaError, match=f"{BREAKDOWN} has no column shard_resting_order_value_dollars"
    ):
        prepare_tables(db_engine)


def test_the_refusal_is_permanent_for_the_dag():
    """A KalshiConfigError: the load task fails at once (AirflowFailException) instead of retrying."""
    assert issubclass(WarehouseSchemaError, KalshiConfigError)


def test_a_hand_made_table_that_holds_the_values_exactly_is_used(request, db_engine):
    """Wider exact types and an extra nullable column are fine, and stay so through the migration
    that renames the column; the problems table of a deployment made before it existed is created
    on the first load."""
    wider = {
        "postgresql": "numeric(30, 8)",
        "mysql": "DECIMAL(30, 8)",
        "sqlite": "TEXT",
    }[db_engine.dialect.name]
    make_tables(db_engine, {f"{BREAKDOWN}.balance_dollars": wider}, extra="note TEXT")
    assert _store(db_engine, cents=2**60 + 1, breakdown={0: "999999999999999999.999999", 1: "-0.000001"}).held
    (row,) = read_snapshots(db_engine, include_breakdown=True)
    assert row["total_resting_order_value_cents"] == 2**60 + 1
    assert [entry["shard_resting_order_value_dollars"] for entry in row["breakdown"]] == [
        Decimal("999999999999999999.999999"),
        Decimal("-0.000001"),
    ]
    assert PROBLEMS in inspect(db_engine).get_table_names()


def test_a_non_utc_postgres_session_stores_and_reads_utc(chicago_engine):
    make_tables(chicago_engine)
    load = make_load()
    _store(chicago_engine)
    (row,) = read_snapshots(chicago_engine)
    assert (row["snapshot_hour"], row["observed_at"]) == (load.hour, load.observed_at)


def test_the_check_reflects_all_tables_at_once_on_postgres(postgres_engine):
    """Columns and primary keys of the three tables in three catalog queries (columns; the tables'
    oids and their keys), not three per table as per-table reflection costs."""
    prepare_tables(postgres_engine)
    statements: list[str] = []
    event.listen(postgres_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    prepare_tables(postgres_engine)
    assert len(statements) <= 3, statements


# --- the tables the balance brought -----------------------------------------------------------------

NEW_TABLE_CHANGES = {
    "postgresql": (
        f"ALTER TABLE {DEFAULT_TABLE}_balance ALTER COLUMN balance_dollars TYPE double precision",
        f"{DEFAULT_TABLE}_balance.balance_dollars is DOUBLE PRECISION",
    ),
    # TEXT holds 64 KiB; a reading's JSON may need more.
    "mysql": (
        f"ALTER TABLE {DEFAULT_TABLE}_history MODIFY reading_json TEXT NOT NULL",
        f"{DEFAULT_TABLE}_history.reading_json is TEXT, which cannot hold its values exactly: it needs "
        "MEDIUMTEXT or LONGTEXT",
    ),
    "sqlite": (
        f"CREATE TABLE {DEFAULT_TABLE}_margin (account TEXT NOT NULL, snapshot_hour DATETIME NOT NULL, "
        "exchange_index INTEGER NOT NULL, balance_dollars VARCHAR(26), resting_order_value_dollars "
        "VARCHAR(26), free_margin_dollars NUMERIC(24, 6), "
        "PRIMARY KEY (account, snapshot_hour, exchange_index))",
        f"{DEFAULT_TABLE}_margin.free_margin_dollars is NUMERIC(24, 6)",
    ),
}


def test_a_new_table_made_with_an_inexact_column_is_refused_before_any_write(db_engine):
    statement, expected = NEW_TABLE_CHANGES[db_engine.dialect.name]
    if db_engine.dialect.name == "sqlite":
        with db_engine.begin() as conn:
            conn.exec_driver_sql(statement)
    else:
        prepare_tables(db_engine)
        with db_engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with pytest.raises(WarehouseSchemaError) as refused:
        _store(db_engine)
    assert expected in str(refused.value)
    if TOTALS in inspect(db_engine).get_table_names():
        assert _rows_in(db_engine, TOTALS) == 0


def test_a_deployment_from_before_the_balance_gets_the_new_tables_and_keeps_its_own(db_engine):
    """The totals and breakdown tables as an earlier version made them: kept, only migrated (a
    column renamed, one added), and the balance, shard, margin and history tables are created
    beside them on the first load."""
    renamed = {"balance_dollars": "shard_resting_order_value_dollars"}

    def shape(inspector) -> dict[str, list]:
        return {
            table: [
                (renamed.get(c["name"], c["name"]), repr(c["type"]), c["nullable"])
                for c in inspector.get_columns(table)
                if c["name"] != "dag_id"
            ]
            + [inspector.get_pk_constraint(table)["constrained_columns"]]
            for table in (TOTALS, BREAKDOWN)
        }

    make_tables(db_engine)
    before = shape(inspect(db_engine))
    assert _store(db_engine).held
    after = inspect(db_engine)
    assert shape(after) == before
    assert [c["nullable"] for c in after.get_columns(TOTALS) if c["name"] == "dag_id"] == [True]
    for suffix in ("_balance", "_bal_shard", "_margin", "_history"):
        assert f"{DEFAULT_TABLE}{suffix}" in after.get_table_names()
    assert _rows_in(db_engine, f"{DEFAULT_TABLE}_history") == 1
