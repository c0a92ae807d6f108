"""The warehouse's schema versions: 0.2.0's tables taken over in place, migrations that reach
schema.py, and a load that asks the version table, not the tables. On SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import Column, Integer, MetaData, Table, event, func, insert, inspect, select, text

from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.pipelines.warehouse import (
    WarehouseMigrationRequired,
    WarehouseVersionError,
    ensure_current,
    read_balances,
    read_history,
    read_snapshots,
    store_reading,
    upgrade_warehouse,
    versioning,
    warehouse_status,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse.migrations import (
    BASELINE,
    HEAD,
    SCRIPT_LOCATION,
    alembic_config,
    version_table_name,
)
from kalshi_provider.readings import AccountReading, Balance, BalanceReading, RestingOrderValue, ShardAmount
from tests.pipelines.warehouse.conftest import make_balance, make_load
from tests.pipelines.warehouse.migrating import (
    AFTER_BASELINE,
    Warehouse,
    drift,
    release_tables,
    renamed,
    rows,
    warehouse_fixture,  # noqa: F401 - the fixture "warehouse"
)
from tests.pipelines.warehouse.written_by_0_2_0 import HOUR_0, write_with_release_0_2_0

HOUR = datetime.fromisoformat(HOUR_0)


@pytest.fixture(scope="session")
def release_root(tmp_path_factory) -> object:
    return tmp_path_factory.mktemp("release-0.2.0")


def _store(warehouse: Warehouse, account: str, hour: int, minute: int, cents: int, shards: dict, **options):
    reading = AccountReading(
        account,
        HOUR + timedelta(hours=hour, minutes=minute),
        RestingOrderValue(cents, tuple(ShardAmount(i, Decimal(d)) for i, d in shards.items())),
    )
    return store_reading(
        warehouse.engine,
        reading,
        snapshot_hour=HOUR + timedelta(hours=hour),
        dag_run_id=f"run-{minute}",
        **warehouse.names,
        **options,
    )


# --- 0.2.0's warehouse, taken over in place ---------------------------------------------------------


def test_a_warehouse_written_by_0_2_0_is_migrated_with_every_row(warehouse, release_root):
    write_with_release_0_2_0(release_root, warehouse.url, schema=warehouse.schema, table=warehouse.table)
    before = rows(warehouse.engine, release_tables(warehouse))
    # What 0.2.0 left: several accounts, hours and shards, every table holding rows, every outcome.
    totals, breakdown, problems, balance, bal_shard, margin, history = before.values()
    assert {row["account"] for row in balance} == {"fcm_a", "fcm_b", "fcm_c", "no_fcm"}
    assert len({row["snapshot_hour"] for row in totals}) == 4
    assert (
        {row["exchange_index"] for row in breakdown}
        == {row["exchange_index"] for row in margin}
        == {0, 1, 2, 3}
    )
    assert len(problems) == 1 and len(bal_shard) > 4 and any(row["total_not_permitted"] for row in balance)
    assert {row["outcome"] for row in history} == {"hour_row", "earlier_kept", "not_permitted", "left_out"}
    assert warehouse_status(warehouse.engine, **warehouse.names).state == versioning.UNVERSIONED

    done = upgrade_warehouse(warehouse.engine, **warehouse.names)

    assert (done.stamped, done.applied, done.created) == (BASELINE, AFTER_BASELINE, ())
    assert warehouse_status(warehouse.engine, **warehouse.names).current
    assert rows(warehouse.engine, warehouse_tables(warehouse.table, warehouse.schema)) == renamed(
        before, warehouse.table
    )
    assert drift(warehouse) == []


def test_the_hour_keeps_its_earliest_reading_across_the_migration(warehouse, release_root):
    write_with_release_0_2_0(release_root, warehouse.url, schema=warehouse.schema, table=warehouse.table)
    upgrade_warehouse(warehouse.engine, **warehouse.names)
    totals = {
        (r["account"], r["snapshot_hour"]): r for r in read_snapshots(warehouse.engine, **warehouse.names)
    }
    # What 0.2.0 kept: fcm_c's hour 2 was taken over by its :03 reading, fcm_a's hour 1 kept :02.
    fcm_c = totals[("fcm_c", HOUR + timedelta(hours=2))]
    assert (fcm_c["observed_at"], fcm_c["dag_run_id"], fcm_c["dag_id"]) == (
        HOUR + timedelta(hours=2, minutes=3),
        "cleared",
        None,
    )
    assert totals[("fcm_a", HOUR + timedelta(hours=1))]["dag_run_id"] == "scheduled__h1"

    # Loads after the migration keep the rule on the migrated rows: a later reading is not kept...
    later = _store(warehouse, "fcm_a", 1, 50, 9, {0: "0.09"}, dag_id="kalshi_other")
    assert later.held is False and later.observed_at == HOUR + timedelta(hours=1, minutes=2)
    # ... an earlier one takes the hour over, with its DAG, its shards and the hour's free margin.
    earlier = _store(warehouse, "fcm_c", 2, 1, 150, {1: "1.5"}, dag_id="kalshi_other")
    assert earlier.held
    (row,) = read_snapshots(warehouse.engine, account="fcm_c", include_breakdown=True, **warehouse.names)
    assert (row["total_resting_order_value_cents"], row["dag_id"], row["dag_run_id"]) == (
        150,
        "kalshi_other",
        "run-1",
    )
    assert row["breakdown"] == [{"exchange_index": 1, "shard_resting_order_value_dollars": Decimal("1.5")}]
    (balance,) = read_balances(warehouse.engine, account="fcm_c", **warehouse.names)
    assert balance["balance_minus_resting"] == [
        {
            "exchange_index": 1,
            "shard_balance_dollars": Decimal("20"),
            "shard_resting_order_value_dollars": Decimal("1.5"),
            "shard_balance_minus_resting_dollars": Decimal("18.5"),
        }
    ]
    history = read_history(warehouse.engine, account="fcm_c", **warehouse.names)
    assert [(h["dag_id"], h["outcome"]) for h in history if h["dag_run_id"] == "run-1"] == [
        ("kalshi_other", "hour_row")
    ]
    assert {h["dag_id"] for h in history if h["dag_run_id"] != "run-1"} == {None}  # 0.2.0 did not say


def test_text_of_any_script_is_kept_exactly_after_the_migration(warehouse, release_root):
    """0.2.0 gave only its key columns utf8mb4 on MySQL/MariaDB: the others took the database's
    default, here latin1, where a refusal in another script (or an emoji) fails the load. Migrated,
    they hold it exactly, as tables created now do; the latin1 text 0.2.0 wrote is kept."""
    write_with_release_0_2_0(release_root, warehouse.url, schema=warehouse.schema, table=warehouse.table)
    upgrade_warehouse(warehouse.engine, **warehouse.names)
    refusal = "Kalshi API error 403: 只限 FCM 会员 — 🚫 nur für FCM-Mitglieder"
    hour = HOUR + timedelta(hours=5)
    reading = AccountReading(
        "no_fcm",
        hour + timedelta(minutes=4),
        None,
        BalanceReading(hour + timedelta(minutes=4, seconds=1), Balance(4200, 2100, Decimal("42"), 7)),
        not_permitted=refusal,
    )
    store_reading(warehouse.engine, reading, snapshot_hour=hour, dag_run_id="run-u", **warehouse.names)
    (balance,) = read_balances(warehouse.engine, account="no_fcm", since=hour, **warehouse.names)
    assert balance["total_refusal_reason"] == refusal
    notes = [h["note"] for h in read_history(warehouse.engine, account="no_fcm", **warehouse.names)]
    assert notes[-2] == refusal
    assert set(notes[:-2]) == {
        "Kalshi API error 403 (permission_denied): only for FCM members (réservé)",
        None,
    }


# --- the migrations and schema.py never drift apart ------------------------------------------------


def test_0_2_0s_tables_get_the_hour_indexes_and_on_mysql_utf8mb4_bin(warehouse):
    """Revision 0003 gives 0.2.0's tables what tables created since get: the index the chart's
    time-range reads search, and (MySQL/MariaDB) text that is utf8mb4_bin. The comparison sees both
    missing at 0002 (a control), and nothing missing at the head."""
    with warehouse.engine.begin() as conn:
        command.upgrade(alembic_config(warehouse.table, warehouse.schema, connection=conn), AFTER_BASELINE[0])
    before = drift(warehouse)
    indexes = sorted(entry[1].name for entry in before if entry[0] == "add_index")
    # ixh_brest_ is the index of the table revision 0004 renames (still ..._margin at 0002).
    assert indexes == sorted(f"{p}{warehouse.table}" for p in ("ixh_bal_", "ixh_brest_", "ixh_total_"))
    added = [entry[1].name for entry in before if entry[0] == "add_table"]
    assert sorted(added) == [f"{warehouse.table}_bal_rest", f"{warehouse.table}_subacct"]
    collations = {(entry[1], entry[2]) for entry in before if entry[0] == "collation"}
    if warehouse.engine.dialect.name == "mysql":  # MariaDB: the latin1 text of 0.2.0's tables
        assert (f"{warehouse.table}_history", "note") in collations
        assert (f"{warehouse.table}_history", "") in collations  # the table's default
    assert len(before) == len(indexes) + len(added) + len(collations)
    with warehouse.engine.begin() as conn:
        config = alembic_config(warehouse.table, warehouse.schema, connection=conn)
        command.upgrade(config, AFTER_BASELINE[1])
        command.stamp(config, AFTER_BASELINE[0])  # a second run finds it done (MySQL: a run cut short)
        command.upgrade(config, AFTER_BASELINE[1])
        command.upgrade(config, "head")
    assert drift(warehouse) == []


def test_0004_renames_the_derived_table_its_column_and_index_keeping_every_row(warehouse, release_root):
    """Kalshi defines no "free margin": revision 0004 names the table, its column and its index for
    what they compute, from tables holding rows, and a second run (a migration cut short on
    MySQL/MariaDB, whose DDL is not transactional) finds it done."""
    write_with_release_0_2_0(release_root, warehouse.url, schema=warehouse.schema, table=warehouse.table)
    with warehouse.engine.begin() as conn:
        config = alembic_config(warehouse.table, warehouse.schema, connection=conn)
        command.stamp(config, BASELINE)
        command.upgrade(config, AFTER_BASELINE[2 - 1])
    old = Table(
        f"{warehouse.table}_margin", MetaData(), schema=warehouse.schema, autoload_with=warehouse.engine
    )
    with warehouse.engine.connect() as conn:
        before = [dict(row._mapping) for row in conn.execute(select(old).order_by(*old.primary_key.columns))]
    assert len(before) > 4 and any(row["shard_free_margin_dollars"] is None for row in before)
    assert any(row["shard_free_margin_dollars"] is not None for row in before)

    with warehouse.engine.begin() as conn:
        command.upgrade(alembic_config(warehouse.table, warehouse.schema, connection=conn), "head")

    assert warehouse_tables(warehouse.table, warehouse.schema).balance_minus_resting.name == (
        f"{warehouse.table}_bal_rest"
    )
    new = Table(
        f"{warehouse.table}_bal_rest", MetaData(), schema=warehouse.schema, autoload_with=warehouse.engine
    )
    inspector = inspect(warehouse.engine)
    assert not inspector.has_table(old.name, schema=warehouse.schema)
    assert [i["name"] for i in inspector.get_indexes(new.name, schema=warehouse.schema)] == [
        f"ixh_brest_{warehouse.table}"
    ]
    rename = {"shard_free_margin_dollars": "shard_balance_minus_resting_dollars"}
    with warehouse.engine.connect() as conn:
        after = [dict(row._mapping) for row in conn.execute(select(new).order_by(*new.primary_key.columns))]
    assert after == [{rename.get(key, key): value for key, value in row.items()} for row in before]
    assert drift(warehouse) == []
    with warehouse.engine.begin() as conn:  # run again: every step finds itself done
        config = alembic_config(warehouse.table, warehouse.schema, connection=conn)
        command.stamp(config, AFTER_BASELINE[2 - 1])
        command.upgrade(config, "head")
    assert drift(warehouse) == []


def test_migrating_from_the_baseline_reaches_what_schema_py_defines(warehouse):
    with warehouse.engine.begin() as conn:
        command.upgrade(alembic_config(warehouse.table, warehouse.schema, connection=conn), "head")
    assert drift(warehouse) == []
    # The comparison sees a difference when there is one (a control): a column schema.py lacks.
    other = MetaData(schema=warehouse.schema)
    for table in warehouse_tables(warehouse.table, warehouse.schema):
        copy = table.to_metadata(other)
        if table.name == warehouse.table:
            copy.append_column(Column("extra", Integer))
    assert [entry[0] for entry in drift(warehouse, other)] == ["add_column"]


def test_a_new_warehouse_gets_the_heads_tables_and_its_version(warehouse):
    assert warehouse_status(warehouse.engine, **warehouse.names).state == versioning.EMPTY
    done = upgrade_warehouse(warehouse.engine, **warehouse.names)
    assert sorted(done.created) == sorted(table.name for table in warehouse_tables(warehouse.table))
    assert (done.applied, done.stamped) == ((), None)
    assert warehouse_status(warehouse.engine, **warehouse.names).revision == HEAD
    assert drift(warehouse) == []
    assert upgrade_warehouse(warehouse.engine, **warehouse.names).changed is False


def test_the_code_writes_the_revision_the_scripts_end_at():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(SCRIPT_LOCATION))
    assert script.get_heads() == [HEAD]
    assert script.get_base() == BASELINE


def test_tables_made_at_the_heads_shape_without_a_version_are_stamped_not_migrated(warehouse):
    """E.g. a version table dropped by mistake: the tables fit schema.py, so they are recorded at the
    head as they are."""
    tables = warehouse_tables(warehouse.table, warehouse.schema)
    tables.totals.metadata.create_all(warehouse.engine)
    done = upgrade_warehouse(warehouse.engine, **warehouse.names)
    assert (done.stamped, done.applied, done.created) == (HEAD, (), ())
    assert drift(warehouse) == []


def test_a_migration_cut_short_runs_again_to_the_end(warehouse):
    """MySQL/MariaDB commit each DDL statement: a migration stopped half way leaves some columns
    renamed under the baseline's version row. The next migration finishes the rest."""
    tables = release_tables(warehouse)
    tables[0].metadata.create_all(warehouse.engine)
    with warehouse.engine.begin() as conn:
        command.stamp(alembic_config(warehouse.table, warehouse.schema, connection=conn), BASELINE)
        preparer = conn.dialect.identifier_preparer
        margin = preparer.quote(f"{warehouse.table}_margin")
        if warehouse.schema:
            margin = f"{preparer.quote(warehouse.schema)}.{margin}"
        conn.exec_driver_sql(f"ALTER TABLE {margin} RENAME COLUMN balance_dollars TO shard_balance_dollars")
    assert warehouse_status(warehouse.engine, **warehouse.names).state == versioning.BEHIND
    assert upgrade_warehouse(warehouse.engine, **warehouse.names).applied == AFTER_BASELINE
    assert drift(warehouse) == []


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_a_migration_that_fails_changes_nothing(request, engine_name, monkeypatch):
    """On engines whose DDL is transactional the takeover is one transaction: a failure in its last
    step leaves the tables, their names and the missing version row as they were."""
    fixture = {"sqlite": "sqlite_engine", "postgresql": "postgres_engine"}[engine_name]
    target = Warehouse(request.getfixturevalue(fixture), None)
    tables = release_tables(target)
    tables[0].metadata.create_all(target.engine)
    with target.engine.begin() as conn:
        conn.execute(insert(tables[1]).values(account="a", snapshot_hour=HOUR, exchange_index=0,
                                              balance_dollars=Decimal("1.5"), observed_at=HOUR))  # fmt: skip
    before = rows(target.engine, tables)
    real_config = versioning.alembic_config

    def failing_config(*args, **attributes):
        def fail_after(ctx, step, heads, run_args):
            if step.up_revision_id == HEAD:
                raise RuntimeError("the last step fails")

        return real_config(*args, **(attributes | {"on_version_apply": fail_after}))

    monkeypatch.setattr(versioning, "alembic_config", failing_config)
    with pytest.raises(RuntimeError, match="the last step fails"):
        upgrade_warehouse(target.engine, **target.names)
    assert warehouse_status(target.engine, **target.names).state == versioning.UNVERSIONED
    assert version_table_name(target.table) not in inspect(target.engine).get_table_names()
    assert rows(target.engine, tables) == before  # old names, same rows


# --- refused ---------------------------------------------------------------------------------------


def test_a_revision_this_code_does_not_know_is_refused(warehouse):
    upgrade_warehouse(warehouse.engine, **warehouse.names)
    version = Table(
        version_table_name(warehouse.table), MetaData(schema=warehouse.schema), autoload_with=warehouse.engine
    )
    with warehouse.engine.begin() as conn:
        conn.execute(version.update().values(version_num="0099_from_the_future"))
    with pytest.raises(
        WarehouseVersionError, match="0099_from_the_future, which this airflow-provider-kalshi"
    ) as err:
        _store(warehouse, "fcm_a", 0, 5, 100, {})
    assert isinstance(err.value, KalshiConfigError)  # permanent: the task fails at once
    assert "install that version on every worker" in str(err.value)
    assert read_snapshots(warehouse.engine, **warehouse.names) == []


def test_a_version_table_that_is_someone_elses_is_refused(warehouse):
    name = version_table_name(warehouse.table)
    Table(name, MetaData(schema=warehouse.schema), Column("id", Integer, primary_key=True)).create(
        warehouse.engine
    )
    with pytest.raises(WarehouseVersionError, match="exists but is not a version table"):
        _store(warehouse, "fcm_a", 0, 5, 100, {})
    assert inspect(warehouse.engine).get_table_names(schema=warehouse.schema) == [name]  # nothing created


# --- what a load costs ---------------------------------------------------------------------------


def test_at_the_head_a_load_asks_nothing_before_it_writes(warehouse):
    """The version check rides on the load's first write: at the head, every statement of a load of
    a new hour is an INSERT (SQLite's BEGIN IMMEDIATE aside); ``ensure_current`` asks one query."""
    upgrade_warehouse(warehouse.engine, **warehouse.names)
    statements: list[str] = []
    event.listen(warehouse.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    load = make_load(breakdown={0: "1"}, balance=make_balance(500, breakdown={0: "5"}))
    store_reading(warehouse.engine, load.reading, snapshot_hour=load.hour, dag_run_id="r", **warehouse.names)
    writes = [s for s in statements if s != "BEGIN IMMEDIATE"]
    assert [s.split()[0] for s in writes] == ["INSERT"] * 6, statements  # 6 tables, each one statement
    assert version_table_name(warehouse.table) in writes[0]  # the first write is conditioned on it
    statements.clear()
    ensure_current(warehouse.engine, **warehouse.names)
    assert len(statements) == 1 and version_table_name(warehouse.table) in statements[0], statements
    # Behind the head (here: no version row), the tables are looked at (a control).
    with warehouse.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {_qualified(warehouse, version_table_name(warehouse.table))}"))
    statements.clear()
    ensure_current(warehouse.engine, **warehouse.names)
    assert len(statements) > 3


def test_a_warehouse_behind_the_head_takes_no_write_even_where_the_columns_fit(warehouse):
    """Revision 0002's tables have the head's columns: a load's INSERTs would go through. Its first
    write is conditioned on the head, so in manual mode nothing is written; in auto mode the load
    migrates, then writes."""
    with warehouse.engine.begin() as conn:
        command.upgrade(alembic_config(warehouse.table, warehouse.schema, connection=conn), AFTER_BASELINE[0])
    with pytest.raises(WarehouseMigrationRequired, match=f"at revision {AFTER_BASELINE[0]}, behind the head"):
        _store(warehouse, "fcm_a", 0, 5, 100, {0: "1"}, migrations="manual")
    assert read_snapshots(warehouse.engine, **warehouse.names) == []
    assert read_history(warehouse.engine, **warehouse.names) == []
    assert _store(warehouse, "fcm_a", 0, 5, 100, {0: "1"}).held
    assert warehouse_status(warehouse.engine, **warehouse.names).current
    assert len(read_history(warehouse.engine, **warehouse.names)) == 1


def _qualified(warehouse: Warehouse, name: str) -> str:
    return f"{warehouse.schema}.{name}" if warehouse.schema else name


# --- [kalshi] warehouse_migrations = manual --------------------------------------------------------


def test_manual_mode_refuses_to_change_the_tables_and_says_why(warehouse):
    tables = release_tables(warehouse)
    tables[0].metadata.create_all(warehouse.engine)
    with pytest.raises(WarehouseMigrationRequired) as refused:
        _store(warehouse, "fcm_a", 0, 5, 100, {0: "1"}, migrations="manual")
    message = str(refused.value)
    assert "without a version row" in message and "'manual'" in message and HEAD in message
    assert isinstance(refused.value, KalshiConfigError)
    assert warehouse_status(warehouse.engine, **warehouse.names).state == versioning.UNVERSIONED
    columns = {
        c["name"] for c in inspect(warehouse.engine).get_columns(tables[1].name, schema=warehouse.schema)
    }
    assert "balance_dollars" in columns  # not renamed
    with warehouse.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables[0])).scalar() == 0


def test_manual_mode_writes_once_the_tables_are_at_the_head(warehouse):
    upgrade_warehouse(warehouse.engine, **warehouse.names)
    assert _store(warehouse, "fcm_a", 0, 5, 100, {0: "1"}, migrations="manual").held


def test_a_new_warehouse_in_manual_mode_is_not_created_either(warehouse):
    with pytest.raises(WarehouseMigrationRequired, match="not created yet"):
        _store(warehouse, "fcm_a", 0, 5, 100, {}, migrations="manual")
    assert inspect(warehouse.engine).get_table_names(schema=warehouse.schema) == []
