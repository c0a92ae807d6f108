"""warehouse_engine: an Airflow SQL connection (AIRFLOW_CONN_* JSON); the embedded SQLite file only for
the default connection with local executors; no warehouse that forgets; every engine bounded in time."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    VolatileWarehouseError,
    WarehouseConnectionError,
    WarehouseTimeouts,
    embedded_database_path,
    read_balances,
    read_snapshots,
    store_reading,
    upgrade_warehouse,
    warehouse_engine,
)
from tests.fixtures.gates import writers_held
from tests.pipelines.warehouse.conftest import make_balance, make_load

CONN_ENV = "AIRFLOW_CONN_KALSHI_WAREHOUSE"


@pytest.fixture
def no_warehouse_connection(monkeypatch):
    monkeypatch.delenv(CONN_ENV, raising=False)


def _round_trip(engine, **table) -> None:
    load = make_load(breakdown={0: "0.000001"})
    assert store_reading(engine, load.reading, snapshot_hour=load.hour, dag_run_id=None, **table).held
    (row,) = read_snapshots(engine, include_breakdown=True, **table)
    assert row["breakdown"][0]["shard_resting_order_value_dollars"].as_tuple().exponent == -6


def test_sqlite_connection_as_json(monkeypatch, tmp_path):
    path = tmp_path / "dir with space" / "warehouse.db"
    path.parent.mkdir()
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "sqlite", "host": str(path)}))
    engine, description = warehouse_engine()
    try:
        assert engine.dialect.name == "sqlite"
        assert Path(engine.url.database) == path
        assert description.startswith("Airflow connection 'kalshi_warehouse' (sqlite:")
        assert str(path) in description
        _round_trip(engine)
    finally:
        engine.dispose()
    assert path.is_file()


def test_postgres_connection_as_json(monkeypatch, postgres_url, postgres_schema):
    url = make_url(postgres_url)
    password = url.password or "never-shown-in-logs"  # the test server trusts local connections
    fields = {
        "conn_type": "postgres",
        "host": url.host,
        "port": url.port,
        "login": url.username,
        "password": password,
        "schema": url.database,
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(fields))
    engine, description = warehouse_engine()
    try:
        assert engine.dialect.name == "postgresql" and engine.driver == "psycopg"
        assert password not in description and "***" in description
        assert description.startswith("Airflow connection 'kalshi_warehouse' (postgresql+psycopg://")
        _round_trip(engine, schema=postgres_schema)
    finally:
        engine.dispose()


def test_custom_connection_id(monkeypatch, tmp_path):
    path = tmp_path / "other.db"
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    engine, description = warehouse_engine("other_warehouse")
    engine.dispose()
    assert Path(engine.url.database) == path and "'other_warehouse'" in description


def test_embedded_sqlite_when_no_connection(monkeypatch, tmp_path, no_warehouse_connection):
    home = tmp_path / "airflow-home"  # does not exist yet
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    engine, description = warehouse_engine()
    try:
        expected = home / "kalshi_warehouse.db"
        assert embedded_database_path() == expected
        assert Path(engine.url.database) == expected
        assert description == f"embedded SQLite file {expected} (no 'kalshi_warehouse' connection found)"
        _round_trip(engine)
    finally:
        engine.dispose()
    assert expected.is_file()


def test_embedded_sqlite_defaults_to_home_airflow(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert embedded_database_path() == tmp_path / "airflow" / "kalshi_warehouse.db"


# -- a missing connection is an error, not a local file -------------------------------------------


@pytest.fixture
def executor(monkeypatch):
    """Set Airflow's ``[core] executor`` for this test (Airflow caches what it parsed: not here)."""
    from airflow.executors import executor_loader

    def configure(value: str) -> None:
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", value)
        monkeypatch.setattr(executor_loader, "_executor_names", [])

    return configure


@pytest.fixture(params=["task", "api-server"])
def lookup(request):
    """The connection lookup of a task (the Task SDK's), or the chart's in the API server."""
    if request.param == "task":
        return None
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets


@pytest.mark.parametrize("conn_id", ["kalshi_warehous", "KALSHI_WAREHOUSE", "analytics_db"])
def test_a_missing_connection_other_than_the_default_is_refused_not_replaced_by_a_file(
    monkeypatch, tmp_path, no_warehouse_connection, lookup, conn_id
):
    """A mistyped id used to write, without a word, to $AIRFLOW_HOME/kalshi_warehouse.db."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    with pytest.raises(WarehouseConnectionError) as refused:
        warehouse_engine(conn_id, get_connection=lookup)
    message = str(refused.value)
    assert f"No Airflow connection '{conn_id}' exists" in message
    assert f"airflow connections add {conn_id} --conn-json" in message
    assert f"AIRFLOW_CONN_{conn_id.upper()}" in message
    assert not (tmp_path / "kalshi_warehouse.db").exists()
    assert isinstance(refused.value, KalshiConfigError)  # the load fails at once, without retries


@pytest.mark.parametrize(
    "configured",
    [
        "CeleryExecutor",
        "KubernetesExecutor",  # its provider is not even installed here: not known to be local
        "LocalExecutor,CeleryExecutor",
        "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
        "queue:CeleryExecutor",
    ],
)
def test_the_default_connection_missing_is_refused_where_tasks_run_on_other_machines(
    monkeypatch, tmp_path, no_warehouse_connection, executor, lookup, configured
):
    """Celery or Kubernetes workers would each write a file of their own; the chart reads another."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    executor(configured)
    with pytest.raises(WarehouseConnectionError) as refused:
        warehouse_engine(get_connection=lookup)
    message = str(refused.value)
    assert "No Airflow connection 'kalshi_warehouse' exists" in message
    assert f"with the executor '{configured}'" in message and "LocalExecutor" in message
    assert "airflow connections add kalshi_warehouse --conn-json" in message
    assert not (tmp_path / "kalshi_warehouse.db").exists()


@pytest.mark.parametrize(
    "configured", ["LocalExecutor", "airflow.executors.local_executor.LocalExecutor", "here:LocalExecutor"]
)
def test_the_default_connection_missing_uses_the_embedded_file_with_local_executors(
    monkeypatch, tmp_path, no_warehouse_connection, executor, lookup, configured
):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    executor(configured)
    engine, description = warehouse_engine(get_connection=lookup)
    engine.dispose()
    assert Path(engine.url.database) == tmp_path / "kalshi_warehouse.db"
    assert description.startswith("embedded SQLite file")


# -- no warehouse that forgets -------------------------------------------------------------------------

IN_MEMORY = {
    "no-host": {"conn_type": "sqlite"},
    "empty-host": {"conn_type": "sqlite", "host": ""},
    "memory": {"conn_type": "sqlite", "host": ":memory:"},
    "uri-memory": {
        "conn_type": "sqlite",
        "host": "file::memory:",
        "extra": {"uri": "true", "cache": "shared"},
    },
    "uri-empty": {"conn_type": "sqlite", "host": "file:", "extra": {"uri": "true"}},
    "mode-memory": {
        "conn_type": "sqlite",
        "host": "file:{dir}/named.db",
        "extra": {"uri": "true", "mode": "memory"},
    },
    "mode-memory-in-host": {"conn_type": "sqlite", "host": "file:{dir}/named.db?mode=memory&uri=true"},
    "memdb-vfs": {"conn_type": "sqlite", "host": "file:/named.db", "extra": {"uri": "true", "vfs": "memdb"}},
}


@pytest.mark.parametrize("fields", list(IN_MEMORY.values()), ids=list(IN_MEMORY))
def test_a_sqlite_connection_held_in_memory_is_refused_for_good(monkeypatch, tmp_path, lookup, fields):
    """Every spelling of an in-memory SQLite database: the task used to log "Wrote the total" to
    a database gone when it ended."""
    fields = json.loads(json.dumps(fields).replace("{dir}", str(tmp_path)))
    monkeypatch.setenv(CONN_ENV, json.dumps(fields))
    with pytest.raises(VolatileWarehouseError) as refused:
        warehouse_engine(get_connection=lookup)
    message = str(refused.value)
    assert "opens a SQLite database held in memory" in message and "absolute path" in message
    assert isinstance(refused.value, KalshiConfigError)
    assert list(tmp_path.iterdir()) == []  # no file made on the way


@pytest.mark.parametrize("host", ["warehouse.db", "data/warehouse.db", "file::memory:?cache=shared"])
def test_a_sqlite_file_named_by_a_relative_path_is_refused(monkeypatch, tmp_path, lookup, host):
    """A relative file lands wherever each process runs (the last one is what SQLAlchemy makes of
    an in-memory URI without uri=true: a file named 'file::memory:')."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "sqlite", "host": host}))
    with pytest.raises(VolatileWarehouseError, match="names its SQLite file by a relative path"):
        warehouse_engine(get_connection=lookup)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("conn_type", "fields", "says"),
    [
        # Installed hooks that are not SQL ones: the Kalshi connection itself, and e-mail.
        ("kalshi", {"login": "key-id", "password": "secret-pem"}, "which is not a SQL database (KalshiHook)"),
        ("smtp", {"host": "localhost", "password": "secret-pw"}, "which is not a SQL database (SmtpHook)"),
        # Types whose provider is not installed here (a shell, a file server, an HTTP API).
        ("ssh", {"host": "localhost", "password": "secret-pw"}, "for which no usable hook is installed"),
        ("sftp", {"host": "localhost", "password": "secret-pw"}, "for which no usable hook is installed"),
        ("no_such_type", {"host": "localhost"}, "for which no usable hook is installed"),
    ],
)
def test_a_connection_that_is_not_a_sql_database_is_refused_for_good(monkeypatch, conn_type, fields, says):
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": conn_type, **fields}))
    with pytest.raises(WarehouseConnectionError) as refused:
        warehouse_engine()
    message = str(refused.value)
    assert f"Connection 'kalshi_warehouse' has type '{conn_type}'" in message and says in message
    assert "set 'warehouse_conn_id'" in message
    assert "secret" not in message
    assert isinstance(refused.value, KalshiConfigError)  # the DAG fails the task without retries


def test_mysql_connection_as_json_reaches_mariadb(monkeypatch, mariadb_url, mariadb_database):
    url = make_url(mariadb_url)
    fields = {
        "conn_type": "mysql",
        "host": url.host,
        "port": url.port,
        "login": url.username,
        "password": url.password,
        "schema": mariadb_database,
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(fields))
    engine, description = warehouse_engine()
    try:
        assert engine.dialect.name == "mysql" and url.password not in description
        _round_trip(engine)
        assert engine.dialect.is_mariadb  # known once connected
    finally:
        engine.dispose()


# -- every wait is bounded ---------------------------------------------------------------------------

SHORT = WarehouseTimeouts(connect=2, statement=5, lock=1)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def bounded(request, monkeypatch, tmp_path):
    """(engine made by warehouse_engine with SHORT timeouts, schema, engine of the same database)."""
    if request.param == "sqlite":
        path = tmp_path / "warehouse.db"
        fields, schema, plain = {"conn_type": "sqlite", "host": str(path)}, None, f"sqlite:///{path}"
    elif request.param == "postgresql":
        url = make_url(request.getfixturevalue("postgres_url"))
        schema, plain = request.getfixturevalue("postgres_schema"), url
        fields = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username}
        fields["schema"] = url.database
    else:
        url = make_url(request.getfixturevalue("mariadb_url"))
        schema = request.getfixturevalue("mariadb_database")
        plain = url.set(database=schema)
        fields = {"conn_type": "mysql", "host": url.host, "port": url.port, "login": url.username}
        fields.update(password=url.password, schema=schema)
    monkeypatch.setenv(CONN_ENV, json.dumps(fields))
    engine, _ = warehouse_engine(timeouts=SHORT)
    other = create_engine(plain)
    yield engine, schema, other
    engine.dispose()
    other.dispose()


LOCK_TIMEOUT = {
    "sqlite": "database is locked",
    "postgresql": "canceling statement due to lock timeout",
    "mysql": "Lock wait timeout exceeded",
}


@pytest.mark.timeout(60)
def test_a_lock_held_by_another_session_fails_the_load_after_the_lock_timeout(bounded):
    """Another session holds the table: the load gives up with the engine's lock-timeout error
    (1 s here) instead of waiting as long as the lock is held."""
    engine, schema, other = bounded
    upgrade_warehouse(other, schema=schema)
    table = f"{schema}.{DEFAULT_TABLE}" if schema and other.dialect.name == "postgresql" else DEFAULT_TABLE
    load = make_load()
    with writers_held(other, table):
        with pytest.raises(OperationalError, match=LOCK_TIMEOUT[other.dialect.name]):
            store_reading(engine, load.reading, snapshot_hour=load.hour, dag_run_id=None, schema=schema)
    assert read_snapshots(other, schema=schema) == []


@pytest.mark.timeout(60)
def test_a_postgres_server_that_stops_answering_fails_the_load_after_the_connect_timeout(
    monkeypatch, postgres_server, postgres_url, postgres_schema
):
    """A server stopped with SIGSTOP accepts TCP connections (the kernel does) but never answers:
    the load fails with libpq's connect timeout (2 s here) instead of hanging while it is stopped."""
    if postgres_server is None:
        pytest.skip("needs the tests' own PostgreSQL server, to stop and resume it")
    url = make_url(postgres_url)
    fields = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username}
    monkeypatch.setenv(CONN_ENV, json.dumps({**fields, "schema": url.database}))
    engine, _ = warehouse_engine(timeouts=SHORT)
    load = make_load()
    pid = postgres_server.postmaster_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(OperationalError, match="timeout expired"):
            store_reading(engine, load.reading, snapshot_hour=load.hour, dag_run_id=None, schema="public")
    finally:
        os.kill(pid, signal.SIGCONT)
        engine.dispose()


def test_the_bounds_reach_the_server_session(bounded):
    """What each server says its session's limits are, on a connection the warehouse engine made."""
    engine, _, _ = bounded
    queries = {
        "postgresql": "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
        "current_setting('idle_in_transaction_session_timeout')",
        "mysql": "SELECT @@max_statement_time, @@innodb_lock_wait_timeout, @@lock_wait_timeout, @@autocommit",
        "sqlite": "PRAGMA busy_timeout",
    }
    with engine.connect() as conn:
        found = tuple(conn.exec_driver_sql(queries[engine.dialect.name]).one())
    assert (
        found
        == {
            "postgresql": ("5s", "1s", "1min"),
            "mysql": (5.0, 1, 1, 0),
            "sqlite": (1000,),
        }[engine.dialect.name]
    )


def test_a_load_the_database_refuses_half_way_leaves_nothing_through_the_warehouse_engine(bounded):
    """On MySQL/MariaDB the engine's session statement also switches autocommit off (MySQLdb's own
    SET is skipped, a round trip less): a load whose last row the database refuses takes every row
    before it with it, on every engine, through the engine a load task gets."""
    from tests.pipelines.warehouse.test_store import _reject

    engine, schema, other = bounded
    if schema is not None and other.dialect.name == "postgresql":
        other = create_engine(other.url, connect_args={"options": f"-c search_path={schema}"})
    upgrade_warehouse(other, schema=schema)
    _reject(other, f"{DEFAULT_TABLE}_history", "NEW.balance_cents = 666")
    load = make_load(breakdown={0: "1"}, balance=make_balance(666, breakdown={0: "6.66"}))
    with pytest.raises(DBAPIError, match="rejected by test"):
        store_reading(engine, load.reading, snapshot_hour=load.hour, dag_run_id=None, schema=schema)
    assert read_snapshots(other, schema=schema) == [] and read_balances(other, schema=schema) == []
