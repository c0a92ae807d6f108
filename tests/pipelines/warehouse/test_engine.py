"""warehouse_engine: an Airflow SQL connection (AIRFLOW_CONN_* JSON) when defined, else embedded
SQLite; every engine bounded in time."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import (
    WarehouseConnectionError,
    WarehouseTimeouts,
    embedded_database_path,
    read_snapshots,
    store_reading,
    upgrade_warehouse,
    warehouse_engine,
)
from tests.fixtures.gates import writers_held
from tests.pipelines.warehouse.conftest import make_load

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
        "postgresql": "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')",
        "mysql": "SELECT @@max_statement_time, @@innodb_lock_wait_timeout, @@lock_wait_timeout",
        "sqlite": "PRAGMA busy_timeout",
    }
    with engine.connect() as conn:
        found = tuple(conn.exec_driver_sql(queries[engine.dialect.name]).one())
    assert (
        found
        == {
            "postgresql": ("5s", "1s"),
            "mysql": (5.0, 1, 1),
            "sqlite": (1000,),
        }[engine.dialect.name]
    )
