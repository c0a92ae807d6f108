"""The warehouse tables as lineage: asset URIs the OpenLineage provider names as the naming spec says."""

from __future__ import annotations

from pathlib import Path

from airflow.providers.openlineage.utils.utils import translate_airflow_asset
from airflow.sdk import Asset

from kalshi_provider.pipelines.warehouse import warehouse_tables
from kalshi_provider.pipelines.warehouse.table_lineage_uris import warehouse_asset_uris


def _datasets(engine, schema=None) -> list[tuple[str, str]]:
    tables = warehouse_tables()
    uris = warehouse_asset_uris(engine, [tables.totals, tables.history], schema)
    password = engine.url.password
    assert not password or all(password not in uri for uri in uris)  # never a credential
    assert all("@" not in uri for uri in uris)  # no user info at all
    return [(d.namespace, d.name) for d in (translate_airflow_asset(Asset(uri=uri), engine) for uri in uris)]


def test_postgres_tables_are_named_host_port_then_database_schema_table(postgres_engine, postgres_schema):
    url = postgres_engine.url
    expected = [
        (
            f"postgres://{url.host}:{url.port}",
            f"{url.database}.{postgres_schema}.kalshi_total_resting_order_value",
        ),
        (
            f"postgres://{url.host}:{url.port}",
            f"{url.database}.{postgres_schema}.kalshi_total_resting_order_value_history",
        ),
    ]
    assert _datasets(postgres_engine) == expected  # the schema the server uses (search_path)
    assert (
        _datasets(postgres_engine, "analytics")[0][1]
        == f"{url.database}.analytics.kalshi_total_resting_order_value"
    )


def test_mysql_and_mariadb_tables_are_named_host_port_then_database_table(mariadb_engine, mariadb_database):
    url = mariadb_engine.url
    assert _datasets(mariadb_engine)[0] == (
        f"mysql://{url.host}:{url.port}",
        f"{mariadb_database}.kalshi_total_resting_order_value",
    )


def test_sqlite_tables_are_local_files_named_by_path_then_table(sqlite_engine):
    database = Path(sqlite_engine.url.database).resolve()
    assert _datasets(sqlite_engine) == [
        ("file", f"{database}.kalshi_total_resting_order_value"),
        ("file", f"{database}.kalshi_total_resting_order_value_history"),
    ]


def test_a_dialect_without_a_naming_rule_reports_no_table():
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")  # in memory: no file to name
    assert warehouse_asset_uris(engine, list(warehouse_tables()), None) == []
