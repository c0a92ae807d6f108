"""warehouse_engine: an Airflow connection (AIRFLOW_CONN_* JSON) when defined, else embedded SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import make_url

from kalshi_provider.pipelines.warehouse import (
    WarehouseConnectionError,
    embedded_database_path,
    read_snapshots,
    upsert_snapshots,
    warehouse_engine,
)

CONN_ENV = "AIRFLOW_CONN_KALSHI_WAREHOUSE"


@pytest.fixture
def no_warehouse_connection(monkeypatch):
    monkeypatch.delenv(CONN_ENV, raising=False)


def _round_trip(engine, make_snapshot, **table) -> None:
    assert upsert_snapshots(engine, [make_snapshot(breakdown={0: "0.000001"})], **table) == 1
    (row,) = read_snapshots(engine, include_breakdown=True, **table)
    assert row["breakdown"][0]["balance_dollars"].as_tuple().exponent == -6


def test_sqlite_connection_as_json(monkeypatch, tmp_path, make_snapshot):
    path = tmp_path / "dir with space" / "warehouse.db"
    path.parent.mkdir()
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "sqlite", "host": str(path)}))
    engine, description = warehouse_engine()
    try:
        assert engine.dialect.name == "sqlite"
        assert Path(engine.url.database) == path
        assert description.startswith("Airflow connection 'kalshi_warehouse' (sqlite:")
        assert str(path) in description
        _round_trip(engine, make_snapshot)
    finally:
        engine.dispose()
    assert path.is_file()


def test_postgres_connection_as_json(monkeypatch, postgres_url, postgres_schema, make_snapshot):
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
        _round_trip(engine, make_snapshot, schema=postgres_schema)
    finally:
        engine.dispose()


def test_custom_connection_id(monkeypatch, tmp_path):
    path = tmp_path / "other.db"
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    engine, description = warehouse_engine("other_warehouse")
    engine.dispose()
    assert Path(engine.url.database) == path and "'other_warehouse'" in description


def test_embedded_sqlite_when_no_connection(monkeypatch, tmp_path, make_snapshot, no_warehouse_connection):
    home = tmp_path / "airflow-home"  # does not exist yet
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    engine, description = warehouse_engine()
    try:
        expected = home / "kalshi_warehouse.db"
        assert embedded_database_path() == expected
        assert Path(engine.url.database) == expected
        assert description == f"embedded SQLite file {expected} (no 'kalshi_warehouse' connection found)"
        _round_trip(engine, make_snapshot)
    finally:
        engine.dispose()
    assert expected.is_file()


def test_embedded_sqlite_defaults_to_home_airflow(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert embedded_database_path() == tmp_path / "airflow" / "kalshi_warehouse.db"


def test_a_connection_type_without_sqlalchemy_support_is_refused(monkeypatch):
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "smtp", "host": "localhost", "password": "pw"}))
    with pytest.raises(WarehouseConnectionError, match="'smtp'.*cannot build an SQLAlchemy engine") as err:
        warehouse_engine()
    assert "pw" not in str(err.value)


def test_an_unknown_connection_type_is_refused(monkeypatch):
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "no_such_type", "host": "localhost"}))
    with pytest.raises(WarehouseConnectionError, match="'no_such_type'.*no usable hook"):
        warehouse_engine()
