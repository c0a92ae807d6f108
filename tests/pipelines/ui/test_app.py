"""The chart plugin's FastAPI app: no route answers without Airflow's access check.

FastAPI's generated ``/docs``, ``/redoc`` and ``/openapi.json`` do not go through the app's
dependencies, so they answered anonymous requests (and the two pages load scripts from a CDN
into Airflow's origin). They are off; the app's own routes keep the access check.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kalshi_provider.pipelines.ui.app import app


@pytest.fixture(scope="module")
def client():
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_fastapis_generated_docs_are_not_served(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "swagger" not in response.text.lower() and "redoc" not in response.text.lower()


def test_every_route_goes_through_airflows_access_check():
    from fastapi.routing import APIRoute

    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    assert {route.path for route in routes} >= {"/data", "/chart"}
    assert [route.path for route in app.routes if not isinstance(route, APIRoute)] == []
    assert len(app.router.dependencies) == 1  # requires_access_dag for the hourly DAG


# -- what the page and /data show, from a real warehouse (Airflow's access check stubbed) -------------

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def warehouse_with_margin(set_connection, tmp_path):
    """A SQLite warehouse (the ``kalshi_warehouse`` connection) holding this hour and the one before
    for an FCM account and a hostile-named account without FCM access."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import AccountReading, BalanceReading, RestingOrderValue
    from tests.pipelines.warehouse.conftest import make_balance, shards

    path = tmp_path / "warehouse.db"
    set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for hour in (now - timedelta(hours=1), now):
        observed = hour + timedelta(seconds=5)
        balance = BalanceReading(observed, make_balance(500000, breakdown={0: "3000", 1: "2000"}))
        total = RestingOrderValue(123456, shards({0: "1234.56"}))
        fcm = AccountReading("fcm_a", observed, total, balance)
        refused = AccountReading(HOSTILE, observed, None, balance, not_permitted="403")
        for reading in (fcm, refused):
            store_reading(engine, reading, snapshot_hour=hour, dag_run_id="r")
    engine.dispose()
    return now


@pytest.fixture
def signed_in_client(warehouse_with_margin):
    from kalshi_provider.pipelines.ui.app import may_read_the_dag

    app.dependency_overrides[may_read_the_dag] = lambda: None
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.clear()


def test_data_serves_the_free_margin_per_shard_exactly(signed_in_client, warehouse_with_margin):
    body = signed_in_client.get("/data?hours=24").json()
    assert [point["cents"] for point in body["series"]["fcm_a"]] == [123456, 123456]
    shard0 = body["free_margin"]["fcm_a"]["0"][-1]
    assert shard0 == {
        "snapshot_hour": warehouse_with_margin.isoformat(),
        "balance_dollars": "3000.000000",
        "resting_order_value_dollars": "1234.560000",
        "free_margin_dollars": "1765.440000",
    }
    assert body["free_margin"]["fcm_a"]["1"][-1]["free_margin_dollars"] == "2000.000000"  # no resting orders
    refused = body["free_margin"][HOSTILE]["0"][-1]
    assert (refused["balance_dollars"], refused["free_margin_dollars"]) == ("3000.000000", None)
    assert body["balance"][HOSTILE][-1]["total_not_permitted"] is True
    assert HOSTILE not in body["series"]


def test_the_page_shows_the_free_margin_beside_the_total_escaped_and_without_scripts(signed_in_client):
    page = signed_in_client.get("/chart?hours=24").text
    assert "<script" not in page and "src=" not in page  # nothing runs, nothing loads from elsewhere
    assert HOSTILE not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert page.count('class="margin" data-margin-account="fcm_a"') == 2  # shards 0 and 1
    assert 'data-margin-account="&lt;script&gt;' not in page  # its free margin is unknown: no line
    assert "0: $1,765.44 · 1: $2,000.00" in page
    assert "not permitted (no FCM access)" in page and "0: — · 1: —" in page


def test_the_api_server_finds_a_warehouse_connection_stored_in_the_metadata_db(airflow_home, tmp_path):
    """A connection made in the UI lives in the metadata DB, not the environment. The chart reads it
    as the API server does (a server process), without Airflow's deprecated core hook lookup."""
    import json
    import subprocess
    import sys
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import AccountReading, RestingOrderValue

    path = tmp_path / "warehouse.db"
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    engine = create_engine(f"sqlite:///{path}")
    try:
        reading = AccountReading("kalshi_default", hour + timedelta(seconds=5), RestingOrderValue(31_337))
        store_reading(engine, reading, snapshot_hour=hour, dag_run_id="seed")
    finally:
        engine.dispose()
    conn = json.dumps({"conn_type": "sqlite", "host": str(path)})
    added = airflow_home.airflow("connections", "add", "kalshi_warehouse", "--conn-json", conn)
    assert added.returncode == 0, added.stderr

    script = (  # Airflow is loaded first: its logging set-up re-routes warnings, which would hide them
        "import json, warnings\n"
        "import airflow.sdk, airflow.models.connection\n"
        "from kalshi_provider.pipelines.ui.app import load_rows\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    rows, _balances, _start, _end = load_rows(2)\n"
        "print(json.dumps({'cents': [r['total_resting_order_value_cents'] for r in rows],\n"
        "    'deprecations': [str(w.message) for w in caught if 'ProvidersManager' in str(w.message)]}))\n"
    )
    env = airflow_home.env | {"_AIRFLOW_PROCESS_CONTEXT": "server"}  # what Airflow's API server sets
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"cents": [31_337], "deprecations": []}
