"""Tables made beforehand: used when they hold every value exactly, refused (before any write) when not.

Each table here is made by hand with the engine's own DDL, as a DBA would, then a load is tried.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import String, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url

from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    VolatileWarehouseError,
    WarehouseSchemaError,
    prepare_tables,
    read_snapshots,
    warehouse_tables,
)
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


def make_tables(
    engine: Engine,
    changes: dict[str, str] | None = None,
    *,
    keys: bool = True,
    extra: str = "",
    options: str = "",
):
    """Create the totals and breakdown tables by hand; ``changes`` maps ``table.column`` to a type,
    ``options`` are table options (MySQL's ``DEFAULT CHARSET=...``)."""
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
            conn.exec_driver_sql(f"CREATE TABLE {table} ({', '.join(body)}) {options}")


def _store(engine: Engine, schema: str | None = None, **load):
    from kalshi_provider.pipelines.warehouse import store_reading

    made = make_load(**load)
    return store_reading(
        engine, made.reading, snapshot_hour=made.hour, dag_run_id=made.dag_run_id, schema=schema
    )


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
    """Columns and primary keys of the seven tables in three catalog queries (columns; the tables'
    oids and their keys) and one for what reflection does not say (persistence), not three per
    table as per-table reflection costs."""
    prepare_tables(postgres_engine)
    statements: list[str] = []
    event.listen(postgres_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    prepare_tables(postgres_engine)
    assert len(statements) <= 4, statements


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
        f"CREATE TABLE {DEFAULT_TABLE}_bal_rest (account TEXT NOT NULL, snapshot_hour DATETIME NOT NULL, "
        "exchange_index INTEGER NOT NULL, shard_balance_dollars VARCHAR(26), "
        "shard_resting_order_value_dollars VARCHAR(26), shard_balance_minus_resting_dollars NUMERIC(24, 6), "
        "PRIMARY KEY (account, snapshot_hour, exchange_index))",
        f"{DEFAULT_TABLE}_bal_rest.shard_balance_minus_resting_dollars is NUMERIC(24, 6)",
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
    column renamed, one added; on MySQL/MariaDB their text made utf8mb4_bin, the types kept), and
    the balance, shard, margin and history tables are created beside them on the first load."""
    renamed = {"balance_dollars": "shard_resting_order_value_dollars"}

    def shape(inspector) -> dict[str, list]:
        def kind(found) -> tuple:
            return type(found).__name__, *(getattr(found, name, None) for name in ("length", "fsp", "scale"))

        return {
            table: [
                (renamed.get(c["name"], c["name"]), kind(c["type"]), c["nullable"])
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
    for suffix in ("_balance", "_bal_shard", "_bal_rest", "_history"):
        assert f"{DEFAULT_TABLE}{suffix}" in after.get_table_names()
    assert _rows_in(db_engine, f"{DEFAULT_TABLE}_history") == 1


# --- tables that would forget their rows -------------------------------------------------------------


def _volatile(engine: Engine, *expected: str, schema: str | None = None) -> str:
    with pytest.raises(VolatileWarehouseError) as refused:
        _store(engine, schema=schema)
    message = str(refused.value)
    for part in expected:
        assert part in message, message
    assert isinstance(refused.value, KalshiConfigError)  # the load fails at once, without retries
    return message


@pytest.mark.parametrize("schema", ["temp", "TEMP", "Temp"])
def test_sqlite_temp_schema_is_refused(sqlite_engine, schema):
    """SQLite's temp database is private to one connection: the load logged "Wrote the total" and
    the next session found nothing."""
    _volatile(sqlite_engine, f"the schema {schema!r} is SQLite's temporary database", schema=schema)
    assert inspect(sqlite_engine).get_table_names() == []


def test_a_sqlite_database_attached_in_memory_is_refused(tmp_path):
    """An engine made elsewhere (not by warehouse_engine) that attaches an in-memory database."""
    engine = create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    event.listen(engine, "connect", lambda dbapi, record: dbapi.execute("ATTACH DATABASE ':memory:' AS side"))
    try:
        _volatile(engine, "the SQLite database of schema 'side' is held in memory", schema="side")
        engine_in_memory = create_engine("sqlite://")
        try:
            _volatile(engine_in_memory, "the SQLite database is held in memory")
        finally:
            engine_in_memory.dispose()
    finally:
        engine.dispose()


def _permanent_tables(postgres_engine: Engine, schema: str) -> list[str]:
    with postgres_engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :schema AND c.relkind = 'r'"
                ),
                {"schema": schema},
            ).scalars()
        )


def test_postgres_pg_temp_schema_is_refused(postgres_engine, postgres_schema):
    _volatile(postgres_engine, ".kalshi_total_resting_order_value is a temporary table", schema="pg_temp")
    assert _permanent_tables(postgres_engine, postgres_schema) == []


def test_postgres_own_temp_schema_by_its_number_is_refused(postgres_url):
    """``pg_temp_N``, the session's own temporary schema by name (one pooled session throughout)."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TEMPORARY TABLE made_here (x integer)")
            own = conn.exec_driver_sql(
                "SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()"
            ).scalar_one()
            conn.commit()
        assert own.startswith("pg_temp_")
        _volatile(engine, f"{own}.kalshi_total_resting_order_value is a temporary table", schema=own)
    finally:
        engine.dispose()


def test_postgres_search_path_starting_at_pg_temp_is_refused(postgres_url, postgres_schema):
    """No 'schema' given, but the connection's search_path puts new tables in pg_temp first."""
    engine = create_engine(postgres_url, connect_args={"options": f"-csearch_path=pg_temp,{postgres_schema}"})
    try:
        message = _volatile(engine, "is a temporary table", "the connection's search_path")
        assert "pg_temp_" in message
        assert _permanent_tables(engine, postgres_schema) == []
    finally:
        engine.dispose()


def test_postgres_unlogged_table_is_refused(postgres_engine, postgres_schema):
    prepare_tables(postgres_engine)
    with postgres_engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {TOTALS} SET UNLOGGED")
    _volatile(postgres_engine, f"{postgres_schema}.{TOTALS} is UNLOGGED", "SET LOGGED")
    assert _rows_in(postgres_engine, TOTALS) == 0


# --- key columns compare exactly ---------------------------------------------------------------------

FIXED_LENGTH = {"postgresql": "char(250)", "mysql": "CHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"}


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
@pytest.mark.parametrize("column", [f"{TOTALS}.account", f"{TOTALS}.dag_run_id"])
def test_a_fixed_length_text_column_is_refused(request, engine, column):
    """CHAR(250): PostgreSQL read 'fcm_a' back with 245 spaces, and the quality check reported the
    account missing every hour."""
    db = request.getfixturevalue(ENGINES["mariadb" if engine == "mysql" else engine])
    make_tables(db, {column: FIXED_LENGTH[engine]})
    message = _refused(db, f"{column} is CHAR(250)", "a fixed-length type", "it needs")
    assert "padded with spaces" in message


def test_sqlite_char_pads_nothing_and_is_accepted(sqlite_engine):
    """SQLite ignores CHAR's length (TEXT affinity): the account reads back as written."""
    make_tables(sqlite_engine, {f"{TOTALS}.account": "CHAR(250)"})
    assert _store(sqlite_engine, account="fcm_a").held
    assert [row["account"] for row in read_snapshots(sqlite_engine)] == ["fcm_a"]


@pytest.fixture
def postgres_case_blind_collation(postgres_engine, postgres_schema):
    """An ICU collation that finds 'FCM_A' and 'fcm_a' equal (Debian's PostgreSQL 15 has ICU)."""
    with postgres_engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE COLLATION {postgres_schema}.case_blind "
            "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        )
        assert conn.exec_driver_sql("SELECT 'FCM_A' = 'fcm_a' COLLATE case_blind").scalar_one()
    return "case_blind"


def test_postgres_nondeterministic_key_collation_is_refused(postgres_engine, postgres_case_blind_collation):
    make_tables(postgres_engine, {f"{TOTALS}.account": f"text COLLATE {postgres_case_blind_collation}"})
    _refused(
        postgres_engine,
        f"{TOTALS}.account compares text with the nondeterministic collation case_blind",
        "one account's rows could take another's place",
        'COLLATE "C"',
    )


def test_postgres_nondeterministic_collation_on_the_history_key_is_refused(
    postgres_engine, postgres_case_blind_collation
):
    prepare_tables(postgres_engine)
    history = f"{DEFAULT_TABLE}_history"
    with postgres_engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {history} ALTER COLUMN endpoint TYPE text COLLATE case_blind")
    with pytest.raises(
        WarehouseSchemaError, match=f"{history}.endpoint compares text with the nondeterministic"
    ):
        _store(postgres_engine)
    assert _rows_in(postgres_engine, TOTALS) == 0


def test_postgres_deterministic_collations_are_accepted(postgres_engine):
    """ "C" and a deterministic ICU collation compare bytes when they find equality."""
    make_tables(
        postgres_engine,
        {f"{TOTALS}.account": 'text COLLATE "C"', f"{BREAKDOWN}.account": 'text COLLATE "und-x-icu"'},
    )
    assert _store(postgres_engine, account="fcm_a").held and _store(postgres_engine, account="FCM_A").held
    assert sorted(row["account"] for row in read_snapshots(postgres_engine)) == ["FCM_A", "fcm_a"]


CASE_BLIND_MYSQL = {  # (the account column's type, a table or database default, the collation in effect)
    "column": ("VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", None, "utf8mb4_general_ci"),
    "unicode": ("VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", None, "utf8mb4_unicode_ci"),
    "latin1": ("VARCHAR(250) CHARACTER SET latin1", None, "latin1_swedish_ci"),
    "table-default": (
        "VARCHAR(250)",
        "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        "utf8mb4_unicode_ci",
    ),
    "database-default": ("VARCHAR(250)", "database", "utf8mb4_general_ci"),
}


@pytest.mark.parametrize(
    ("declared", "default", "collation"), list(CASE_BLIND_MYSQL.values()), ids=list(CASE_BLIND_MYSQL)
)
def test_mariadb_case_insensitive_key_collation_is_refused(
    mariadb_engine, mariadb_database, declared, default, collation
):
    """A _ci collation, declared or inherited from the table's or the database's default."""
    if default == "database":
        with mariadb_engine.begin() as conn:
            conn.exec_driver_sql(
                f"ALTER DATABASE `{mariadb_database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
            )
    table_default = default if default and default != "database" else ""
    make_tables(mariadb_engine, {f"{TOTALS}.account": declared}, options=table_default)
    message = _refused(
        mariadb_engine,
        f"{TOTALS}.account compares text with the collation {collation} (case- or accent-insensitive)",
    )
    assert "MODIFY account VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL" in message


def test_mariadb_case_insensitive_history_endpoint_is_refused(mariadb_engine):
    prepare_tables(mariadb_engine)
    history = f"{DEFAULT_TABLE}_history"
    with mariadb_engine.begin() as conn:
        conn.exec_driver_sql(
            f"ALTER TABLE {history} MODIFY endpoint VARCHAR(250) CHARACTER SET utf8mb4 "
            "COLLATE utf8mb4_general_ci NOT NULL"
        )
    with pytest.raises(WarehouseSchemaError, match=f"{history}.endpoint compares text with the collation"):
        _store(mariadb_engine)


@pytest.mark.parametrize(
    ("collation", "says"), [("NOCASE", "case-insensitive"), ("RTRIM", "trailing spaces ignored")]
)
def test_sqlite_key_collation_other_than_binary_is_refused(sqlite_engine, collation, says):
    make_tables(sqlite_engine, {f"{TOTALS}.account": f"TEXT COLLATE {collation}"})
    _refused(sqlite_engine, f"{TOTALS}.account compares text with the collation {collation} ({says})")


@pytest.mark.parametrize("default", ["latin1_swedish_ci", "utf8mb4_general_ci"])
def test_tables_made_on_mariadb_compare_every_text_column_byte_for_byte(
    mariadb_engine, mariadb_database, default
):
    """Whatever the database's default (this server's is latin1, Debian's packaged one utf8mb4_general_ci),
    every text column the project creates is utf8mb4 with a binary collation."""
    charset = default.split("_")[0]
    with mariadb_engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE `{mariadb_database}` CHARACTER SET {charset} COLLATE {default}")
    prepare_tables(mariadb_engine)
    with mariadb_engine.connect() as conn:
        columns = conn.exec_driver_sql(
            "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL"
        ).all()
    ours = [(t.name, c.name) for t in warehouse_tables() for c in t.columns if isinstance(c.type, String)]
    assert sorted((table, column) for table, column, _, _ in columns) == sorted(ours)
    assert {(charset, collation) for _, _, charset, collation in columns} == {("utf8mb4", "utf8mb4_bin")}, (
        columns
    )
    # So two accounts whose ids differ only in case keep an hour each.
    assert _store(mariadb_engine, account="fcm_a", cents=1).held
    assert _store(mariadb_engine, account="FCM_A", cents=2).held
    rows = read_snapshots(mariadb_engine)
    assert sorted((row["account"], row["total_resting_order_value_cents"]) for row in rows) == [
        ("FCM_A", 2),
        ("fcm_a", 1),
    ]
