"""The chart plugin's FastAPI app: no route answers without Airflow's access check.

FastAPI's generated ``/docs``, ``/redoc`` and ``/openapi.json`` do not go through the app's
dependencies, so they answered anonymous requests (and the two pages load scripts from a CDN
into Airflow's origin). They are off; the app's own routes keep the access check.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.ui.app import app, readable_rows


def _every_row():
    """What a reader of the default hourly DAG may see of rows written without a DAG id (the test
    warehouses' rows): all of them."""
    from kalshi_provider.pipelines.warehouse import ReadableRows

    return ReadableRows(frozenset({HOURLY_DAG_ID}), unknown_dag=True)


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
    assert {route.path for route in routes} >= {"/data", "/chart", "/csv"}
    assert [route.path for route in app.routes if not isinstance(route, APIRoute)] == []
    assert [d.dependency for d in app.router.dependencies] == [
        readable_rows
    ]  # Airflow's sign-in, then its auth manager


# -- what the page and /data show, from a real warehouse (Airflow's access check stubbed) -------------

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def warehouse_with_margin(set_connection, tmp_path):
    """A SQLite warehouse (the ``kalshi_warehouse`` connection) holding this hour and the one before
    for an FCM account and a hostile-named account without FCM access."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import (
        AccountReading,
        BalanceReading,
        RestingOrderValue,
        SubaccountBalance,
        SubaccountBalances,
        SubaccountsReading,
    )
    from tests.pipelines.warehouse.conftest import make_balance, shards

    path = tmp_path / "warehouse.db"
    set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for hour in (now - timedelta(hours=1), now):
        observed = hour + timedelta(seconds=5)
        balance = BalanceReading(observed, make_balance(500000, breakdown={0: "3000", 1: "2000"}))
        total = RestingOrderValue(123456, shards({0: "1234.56"}))
        listed = None
        if hour == now:  # the hour before has no subaccount rows (a key that may not list them)
            amounts = {(0, 0): "3000", (0, 1): "2000", (1, 0): "0.000001", (5, 2): "12345678901.5"}
            rows = tuple(SubaccountBalance(n, i, amount, 1) for (n, i), amount in amounts.items())
            listed = SubaccountsReading(observed, SubaccountBalances(rows))
        fcm = AccountReading("fcm_a", observed, total, balance, subaccounts=listed)
        refused = AccountReading(HOSTILE, observed, None, balance, not_permitted="403")
        for reading in (fcm, refused):
            store_reading(engine, reading, snapshot_hour=hour, dag_run_id="r")
    engine.dispose()
    return now


@pytest.fixture
def signed_in_client(warehouse_with_margin):
    app.dependency_overrides[readable_rows] = _every_row
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.clear()


def test_data_serves_the_sum_over_subaccounts_beside_the_primarys_balance(signed_in_client):
    body = signed_in_client.get("/data?hours=24").json()
    points = body["balance"]["fcm_a"]
    assert [(p["balance_dollars"], p["subaccounts_balance_dollars"]) for p in points] == [
        ("5000.000000", None),  # no subaccount rows that hour
        ("5000.000000", "12345683901.500001"),  # exactly: 3000 + 2000 + 0.000001 + 12345678901.5
    ]
    assert [p["subaccounts_balance_dollars"] for p in body["balance"][HOSTILE]] == [None, None]


def test_data_serves_the_free_margin_per_shard_exactly(signed_in_client, warehouse_with_margin):
    body = signed_in_client.get("/data?hours=24").json()
    assert [point["cents"] for point in body["series"]["fcm_a"]] == [123456, 123456]
    shard0 = body["balance_minus_resting"]["fcm_a"]["0"][-1]
    assert shard0 == {
        "snapshot_hour": warehouse_with_margin.isoformat(),
        "balance_dollars": "3000.000000",
        "resting_order_value_dollars": "1234.560000",
        "balance_minus_resting_dollars": "1765.440000",
    }
    assert (
        body["balance_minus_resting"]["fcm_a"]["1"][-1]["balance_minus_resting_dollars"] == "2000.000000"
    )  # no resting orders
    refused = body["balance_minus_resting"][HOSTILE]["0"][-1]
    assert (refused["balance_dollars"], refused["balance_minus_resting_dollars"]) == ("3000.000000", None)
    assert body["balance"][HOSTILE][-1]["total_not_permitted"] is True
    assert HOSTILE not in body["series"]


def test_the_page_draws_kalshis_figures_escaped_with_one_script_and_nothing_loaded(signed_in_client):
    from kalshi_provider.pipelines.ui.zone import FOLLOW_THE_UI_ZONE

    page = signed_in_client.get("/chart?hours=24").text
    assert page.count("<script") == 1 and FOLLOW_THE_UI_ZONE in page  # only the zone's, inline
    assert "src=" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert HOSTILE not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    # Per shard, Kalshi's own figures: the balance for both accounts, the resting value for fcm_a.
    assert page.count('data-figure="shard_balance_dollars"') == 4  # two accounts x shards 0 and 1
    assert page.count('data-shard-account="fcm_a" data-shard="0" data-figure="shard_resting') == 1
    assert "free margin" not in page.lower()  # the derived difference is not drawn
    assert page.count('class="balance" data-balance-account=') == 2  # the balance, drawn
    assert "not permitted (no FCM access)" in page and "$1,234.56" in page and "$5,000.00" in page
    assert "Times in <strong>UTC</strong>" in page


def test_the_csv_holds_the_windows_rows_exactly_with_formulas_neutralised(
    signed_in_client, warehouse_with_margin, set_connection, tmp_path
):
    import csv
    import io
    from datetime import timedelta

    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import AccountReading, RestingOrderValue

    engine = create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    formula = '=HYPERLINK("http://evil.test","x")'
    reading = AccountReading(formula, warehouse_with_margin, RestingOrderValue(0))
    store_reading(
        engine, reading, snapshot_hour=warehouse_with_margin, dag_run_id="@SUM(A1)", dag_id=HOURLY_DAG_ID
    )
    engine.dispose()

    answer = signed_in_client.get("/csv?hours=24&tz=America/New_York")
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="kalshi-24h-')
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["account"], r["hour_utc"]) for r in rows] == [
        (HOSTILE, warehouse_with_margin.isoformat()),
        ("'" + formula, warehouse_with_margin.isoformat()),  # neutralised: text, not a formula
        ("fcm_a", warehouse_with_margin.isoformat()),
        (HOSTILE, (warehouse_with_margin - timedelta(hours=1)).isoformat()),
        ("fcm_a", (warehouse_with_margin - timedelta(hours=1)).isoformat()),
    ]
    assert (rows[1]["dag_id"], rows[1]["dag_run_id"]) == (HOURLY_DAG_ID, "'@SUM(A1)")
    fcm = rows[2]
    assert fcm["hour_local (America/New_York)"].endswith("-05:00")
    assert (fcm["total_resting_order_value_dollars"], fcm["balance_dollars"]) == ("1234.56", "5000.000000")
    assert (fcm["shard_0_balance_dollars"], fcm["shard_0_resting_order_value_dollars"]) == (
        "3000.000000",
        "1234.560000",
    )
    assert (fcm["shard_1_resting_order_value_dollars"], fcm["total_not_permitted"]) == ("0.000000", "false")
    assert rows[0]["shard_0_resting_order_value_dollars"] == ""  # unknown: Kalshi refused the total
    assert (rows[0]["total_resting_order_value_dollars"], rows[0]["total_not_permitted"]) == ("", "true")
    assert not any("free_margin" in name for name in rows[0])  # the derived difference is not exported
    only = signed_in_client.get("/csv", params={"hours": 24, "account": "fcm_a"}).text
    assert HOSTILE not in only and only.count("\r\n") == 3  # the header and fcm_a's two hours


def test_the_api_server_finds_a_warehouse_connection_stored_in_the_metadata_db(airflow_home, tmp_path):
    """A connection made in the UI lives in the metadata DB, not the environment. The chart reads it
    as the API server does (a server process), without Airflow's deprecated core hook lookup."""
    import json
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
        "from kalshi_provider.pipelines.ui.app import load_window\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    window = load_window(2)\n"
        "print(json.dumps({'cents': [r['total_resting_order_value_cents'] for r in window.totals],\n"
        "    'deprecations': [str(w.message) for w in caught if 'ProvidersManager' in str(w.message)]}))\n"
    )
    server = {"_AIRFLOW_PROCESS_CONTEXT": "server"}  # what Airflow's API server sets
    done = airflow_home.python("-c", script, env=server, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"cents": [31_337], "deprecations": []}


# -- each user sees the accounts the DAGs they may read wrote (issue 18, item 3) ---------------------

TWO_DESKS = '''"""Two hourly DAGs of the factory, as a team with two desks deploys them (Airflow dags)."""

from kalshi_provider.pipelines.hourly import hourly_dag

desk_a = hourly_dag()
desk_b = hourly_dag("kalshi_desk_b", kalshi_conn_ids=("desk_b",))
'''

ASK_AS_EACH_USER = """
import json
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient

client = TestClient(create_app())  # Airflow's API server app, the chart plugin mounted in it
found = {}
for name in ("desk_a", "desk_b", "both", "outsider"):
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role="viewer"))
    response = client.get("/kalshi/data?hours=24", headers={"Authorization": f"Bearer {token}"})
    page = client.get("/kalshi/chart?hours=24", headers={"Authorization": f"Bearer {token}"})
    table = client.get("/kalshi/csv?hours=24", headers={"Authorization": f"Bearer {token}"})
    found[name] = {"status": response.status_code, "body": response.json(), "page": page.text,
                   "csv": [table.status_code, table.text]}
print("ANSWERS " + json.dumps(found))
"""


def test_each_user_sees_only_the_accounts_the_dags_they_may_read_wrote(airflow_home, tmp_path):
    """Two DAGs of the factory write to one warehouse; Airflow's own API server app asks its auth
    manager which DAGs each user may read (here the simple one, with DAG-level reads per user as
    FAB roles give them). Rows written before DAG ids were recorded go with the default DAG."""
    import json
    import subprocess
    import sys
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import AccountReading, RestingOrderValue
    from tests.pipelines.ui.dag_scoped_auth import DESK_B_DAG_ID

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "two_desks.py").write_text(TWO_DESKS)
    airflow_home.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    registered = airflow_home.airflow("dags", "reserialize")  # as the dag-processor puts them in the DB
    assert registered.returncode == 0, registered.stderr[-3000:]
    listed = airflow_home.airflow("dags", "list", "--output", "json")
    assert {dag["dag_id"] for dag in json.loads(listed.stdout.splitlines()[-1])} == {
        HOURLY_DAG_ID,
        DESK_B_DAG_ID,
    }
    path = tmp_path / "warehouse.db"
    airflow_home.set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for account, dag_id, cents in (
        ("fcm_a", HOURLY_DAG_ID, 100),
        ("desk_b", DESK_B_DAG_ID, 200),
        ("legacy", None, 300),
    ):
        reading = AccountReading(account, hour + timedelta(seconds=5), RestingOrderValue(cents))
        store_reading(engine, reading, snapshot_hour=hour, dag_run_id="r", dag_id=dag_id)
    engine.dispose()

    repo = Path(__file__).resolve().parents[3]
    env = airflow_home.env | {
        "_AIRFLOW_PROCESS_CONTEXT": "server",
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.pipelines.ui.dag_scoped_auth.DagScopedAuthManager",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-secret-" + "x" * 64,
        "PYTHONPATH": f"{repo}:{airflow_home.env['PYTHONPATH']}",
    }
    done = subprocess.run(
        [sys.executable, "-c", ASK_AS_EACH_USER], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("ANSWERS ")]
    answers = json.loads(line.removeprefix("ANSWERS "))

    def served(name):
        assert answers[name]["status"] == 200, answers[name]
        return {
            account: [p["cents"] for p in points]
            for account, points in answers[name]["body"]["series"].items()
        }

    assert served("desk_a") == {"fcm_a": [100], "legacy": [300]}  # the default DAG: also the unrecorded rows
    assert served("desk_b") == {"desk_b": [200]}
    assert served("both") == {"fcm_a": [100], "desk_b": [200], "legacy": [300]}
    assert "fcm_a" not in answers["desk_b"]["page"] and "desk_b" in answers["desk_b"]["page"]
    assert answers["desk_b"]["csv"][0] == 200 and "desk_b" in answers["desk_b"]["csv"][1]
    assert "fcm_a" not in answers["desk_b"]["csv"][1] and "legacy" not in answers["desk_b"]["csv"][1]
    assert answers["outsider"]["csv"][0] == 403
    assert answers["outsider"]["status"] == 403 and "fcm_a" not in json.dumps(answers["outsider"])


# -- the cost of an answer is bounded by the points budget (issue 17, class 2) -----------------------


@pytest.fixture
def signed_in():
    """The app with Airflow's access check stubbed, over whatever warehouse the test set up."""
    app.dependency_overrides[readable_rows] = _every_row
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def ninety_days_of_ten_accounts(set_connection, tmp_path):
    """91 days of 10 accounts with 4 exchange shards each, up to the current hour: 60 lines."""
    from datetime import datetime, timezone

    from sqlalchemy import create_engine

    from tests.pipelines.warehouse.conftest import seed_chart_tables

    path = tmp_path / "warehouse.db"
    set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    seed_chart_tables(engine, accounts=10, hours=24 * 91, end=end, shards=4)
    engine.dispose()


def served_points(body):
    return (
        sum(len(points) for points in body["series"].values())
        + sum(len(points) for points in body["balance"].values())
        + sum(len(points) for shards in body["balance_minus_resting"].values() for points in shards.values())
    )


@pytest.mark.slow
def test_ninety_days_of_ten_accounts_come_in_buckets_within_the_points_budget(
    signed_in, ninety_days_of_ten_accounts
):
    """Hourly, 60 lines x 2160 hours is 129,600 points (some 18 MiB of JSON); 6-hour buckets
    (60 x 361 = 21,660) are the finest within the 30,000 budget."""
    response = signed_in.get("/data?hours=2160")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["resolution_hours"], body["points_budget"]) == (6, 30_000)
    assert served_points(body) == body["points"] <= 30_000
    point = body["balance_minus_resting"]["acct_3"]["2"][-1]
    assert set(point) == {
        "snapshot_hour",
        "balance_dollars",
        "resting_order_value_dollars",
        "balance_minus_resting_dollars",
        "bucket_start",
        "hours",
        "balance_minus_resting_dollars_min",
        "balance_minus_resting_dollars_max",
    }
    assert set(body["series"]["acct_3"][-1]) == {
        "snapshot_hour",
        "cents",
        "bucket_start",
        "hours",
        "cents_min",
        "cents_max",
    }
    assert all(
        isinstance(p["balance_dollars_max"], str) for p in body["balance"]["acct_3"]
    )  # exact, never a float
    # Every hour of the window is in one bucket (an hour may have turned since the seeding).
    assert 2159 <= sum(p["hours"] for p in body["series"]["acct_0"]) <= 2160

    page = signed_in.get("/chart?hours=2160")
    assert page.status_code == 200
    assert "One point per 6 hours" in page.text
    assert page.text.count("<circle") <= 30_000


@pytest.fixture
def small_budget(monkeypatch):
    """A budget of 6 points, so that the two accounts of ``warehouse_with_margin`` exceed it even at
    one point a day (7 lines)."""
    from kalshi_provider.pipelines import settings

    monkeypatch.setattr(settings, "CHART_POINTS_BUDGET", 6)


def test_a_window_beyond_the_budget_is_refused_with_what_to_ask_instead(
    signed_in, warehouse_with_margin, small_budget
):
    refused = signed_in.get("/data?hours=24")
    assert refused.status_code == 400
    body = refused.json()
    assert body["points_budget"] == 6 and body["points"] > 6 and body["max_hours"] == 0
    assert body["detail"].startswith("Too many points: the last 24 hours hold 7 lines")
    assert "ask for fewer accounts" in body["detail"]
    # What it says to ask for is answered: one account (4 lines), the last hour.
    fewer = signed_in.get("/data", params={"hours": 1, "account": "fcm_a"})
    assert fewer.status_code == 200 and fewer.json()["points"] == 4
    page = signed_in.get("/chart?hours=24")
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    table = signed_in.get("/csv?hours=24")
    assert table.status_code == 400 and table.json()["points_budget"] == 6
    assert "too many points to draw" in page.text and "ask for fewer accounts" in page.text


def test_data_for_some_accounts(signed_in, warehouse_with_margin):
    body = signed_in.get("/data", params={"hours": 24, "account": ["fcm_a"]}).json()
    assert list(body["series"]) == list(body["balance"]) == list(body["balance_minus_resting"]) == ["fcm_a"]
    both = signed_in.get("/data", params={"hours": 24, "account": ["fcm_a", HOSTILE]}).json()
    assert sorted(both["balance"]) == sorted(["fcm_a", HOSTILE])
    too_many = signed_in.get("/data", params={"account": [f"a{i}" for i in range(51)]})
    assert too_many.status_code == 422
    too_long = signed_in.get("/data", params={"account": "a" * 251})
    assert too_long.status_code == 422 and "at most 250 characters" in too_long.text


# -- no answer is cached (issue 17, class 11) -------------------------------------------------------


def get(url, **kwargs):
    import requests

    return requests.request(kwargs.pop("method", "GET"), url, timeout=30, allow_redirects=False, **kwargs)


def test_no_answer_of_the_app_may_be_stored_not_even_a_refusal(served, warehouse_with_margin):
    """Anonymous (Airflow's real check), then signed in: pages, data, errors of every kind."""
    answers = {path: get(served + path) for path in ("/data", "/chart?hours=24", "/csv")}
    app.dependency_overrides[readable_rows] = _every_row
    try:
        answers |= {
            "signed in /data": get(served + "/data?hours=24"),
            "signed in /chart": get(served + "/chart?hours=24"),
            "signed in /csv": get(served + "/csv?hours=24"),
            "hours out of range": get(served + "/data?hours=0"),
            "no such page": get(served + "/nothing-here"),
            "wrong method": get(served + "/data", method="POST"),
        }
    finally:
        app.dependency_overrides.clear()
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "/data": 401,
        "/chart?hours=24": 401,
        "/csv": 401,
        "signed in /data": 200,
        "signed in /chart": 200,
        "signed in /csv": 200,
        "hours out of range": 422,
        "no such page": 404,
        "wrong method": 405,
    }
    assert {name: answer.headers.get("Cache-Control") for name, answer in answers.items()} == dict.fromkeys(
        answers, "no-store"
    )
    assert "fcm_a" in answers["signed in /chart"].text


def test_a_refusal_over_the_budget_and_a_failure_are_not_stored_either(
    served, signed_in, warehouse_with_margin, small_budget, set_connection, tmp_path
):
    refused = get(served + "/chart?hours=24")
    assert (refused.status_code, refused.headers.get("Cache-Control")) == (400, "no-store")
    set_connection("kalshi_warehouse", "sqlite", host=str(tmp_path))  # a folder: SQLite cannot open it
    failed = get(served + "/data?hours=24")
    assert (failed.status_code, failed.headers.get("Cache-Control")) == (500, "no-store")
    assert failed.text == "Internal Server Error"  # nothing of the error itself
