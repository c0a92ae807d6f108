"""The warehouse through a connection pooler: a real PgBouncer in transaction pooling mode.

PgBouncer refuses the ``options`` startup parameter by default, and in transaction mode hands each
transaction whichever server connection is free: the bounds must be set per transaction, and
must not stay behind on a server connection another client gets next.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from kalshi_provider.pipelines.warehouse import (
    WarehouseTimeouts,
    read_history,
    read_snapshots,
    store_reading,
    warehouse_engine,
)
from tests.pipelines.warehouse.conftest import make_load

CONN_ENV = "AIRFLOW_CONN_KALSHI_WAREHOUSE"
SHORT = WarehouseTimeouts(connect=2, statement=1, lock=1, idle_in_transaction=3)
BOUNDS = (
    "current_setting('statement_timeout'), current_setting('lock_timeout'), "
    "current_setting('idle_in_transaction_session_timeout')"
)
SETTINGS = f"SELECT {BOUNDS}"


def _postgres_connection(monkeypatch, url: str, **extra) -> None:
    parsed = make_url(url)
    fields = {"conn_type": "postgres", "host": parsed.host, "port": parsed.port, "login": parsed.username}
    fields["schema"] = parsed.database
    if extra:
        fields["extra"] = extra
    monkeypatch.setenv(CONN_ENV, json.dumps(fields))


@pytest.mark.timeout(120)
def test_loads_through_pgbouncer_in_transaction_mode_are_written(
    monkeypatch, pgbouncer_url, postgres_url, postgres_schema
):
    """Two engines, interleaved, 12 loads each: more than psycopg's threshold for preparing a
    statement on the server, whose prepared statements a transaction pooler cannot follow."""
    _postgres_connection(monkeypatch, pgbouncer_url)
    engines = [warehouse_engine()[0], warehouse_engine()[0]]
    try:
        for hour in range(12):
            for number, engine in enumerate(engines):
                load = make_load(account=f"acct-{number}", hour=hour, cents=1000 * hour + number)
                stored = store_reading(
                    engine, load.reading, snapshot_hour=load.hour, dag_run_id="run-1", schema=postgres_schema
                )
                assert stored.held
    finally:
        for engine in engines:
            engine.dispose()
    direct = create_engine(postgres_url)
    try:
        rows = read_snapshots(direct, schema=postgres_schema)
        assert [(row["account"], row["total_resting_order_value_cents"]) for row in rows] == [
            (f"acct-{number}", 1000 * hour + number) for number in range(2) for hour in range(12)
        ]
        assert len(read_history(direct, schema=postgres_schema)) == 24
    finally:
        direct.dispose()


@pytest.mark.timeout(60)
def test_a_statement_repeated_in_committed_transactions_works_through_pgbouncer(monkeypatch, pgbouncer_url):
    """Two clients, each running one query in 12 committed transactions: psycopg would prepare it
    on the server connection of the fifth, which PgBouncer hands the other client next."""
    _postgres_connection(monkeypatch, pgbouncer_url)
    engines = [warehouse_engine()[0], warehouse_engine()[0]]
    try:
        for number in range(12):
            for engine in engines:
                with engine.begin() as conn:
                    assert (
                        conn.execute(text("SELECT CAST(:n AS integer) + 1"), {"n": number}).scalar_one()
                        == number + 1
                    )
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.timeout(60)
def test_the_statement_timeout_fires_through_pgbouncer(monkeypatch, pgbouncer_url):
    _postgres_connection(monkeypatch, pgbouncer_url)
    engine, _ = warehouse_engine(timeouts=SHORT)
    try:
        with engine.connect() as conn:
            assert tuple(conn.exec_driver_sql(SETTINGS).one()) == ("1s", "1s", "3s")
        with pytest.raises(OperationalError, match="canceling statement due to statement timeout"):
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT pg_sleep(5)")
    finally:
        engine.dispose()


def test_the_bounds_end_with_their_transaction_and_reach_no_other_client(monkeypatch, pgbouncer_url):
    """After our transaction, a plain client that PgBouncer gives the same server connection sees
    the server's defaults: nothing of ours was set for the session."""
    _postgres_connection(monkeypatch, pgbouncer_url)
    engine, _ = warehouse_engine(timeouts=SHORT)
    plain = create_engine(pgbouncer_url)
    try:
        with engine.connect() as conn:
            ours = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        seen = set()
        for _ in range(20):  # the pool has 4 server connections: ours comes round
            with plain.connect() as conn:
                pid, *settings = conn.exec_driver_sql(f"SELECT pg_backend_pid(), {BOUNDS}").one()
            seen.add(pid)
            assert tuple(settings) == ("0", "0", "0"), pid
        assert ours in seen
    finally:
        engine.dispose()
        plain.dispose()


def test_a_connections_own_settings_win_over_the_defaults(monkeypatch, postgres_url):
    """Straight to PostgreSQL (no pooler), a connection that sets its own statement timeout in its
    startup options keeps it; the bounds it does not set are ours."""
    _postgres_connection(monkeypatch, postgres_url, sqlalchemy_query={"options": "-c statement_timeout=7s"})
    engine, _ = warehouse_engine(timeouts=SHORT)
    try:
        with engine.connect() as conn:
            assert tuple(conn.exec_driver_sql(SETTINGS).one()) == ("7s", "1s", "3s")
    finally:
        engine.dispose()
