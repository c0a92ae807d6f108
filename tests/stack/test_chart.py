"""The "Kalshi resting orders" chart (plugins/kalshi_ui_plugin.py) in the running API server.

``/kalshi/chart`` (HTML + SVG) and ``/kalshi/data`` (JSON) are a plugin app that Airflow does not
authenticate by itself: they rely on Airflow's sign-in and its auth manager's list of the DAGs the
user may read (the stack's admin reads them all), and every answer, refusals included, says
``Cache-Control: no-store``. Checked here
with plain HTTP (no credentials, a bad or forged bearer token, a valid token, the UI's session
cookie) and in Chromium: Browse -> "Kalshi resting orders" shows the chart inside the UI, and an
anonymous browser is refused. Screenshots: ``test-artifacts/stack-ui/2*-kalshi-chart*.png``.

Before that, five earlier hours of ``kalshi_default`` are seeded into the stack's warehouse
(``dag_run_id`` "seed") so the chart draws a line rather than a single point; the triggered
run's own hour is left alone, which the other stack tests check.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from kalshi_provider.pipelines.warehouse import read_snapshots, store_reading
from kalshi_provider.readings import AccountReading, RestingOrderValue
from tests.fixtures.stack import DAG_ID, AirflowStack
from tests.stack.browser import Steps, log_in, new_context

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ACCOUNT = "kalshi_default"
SEED_RUN_ID = "seed"
# cents for the 5 hours before the triggered run's hour, oldest first: distinct, and all below
# the stack's 4,242,424 so the triggered hour is the top of the chart.
SEED_VALUES = [3_100_000, 3_650_000, 3_400_000, 3_900_000, 4_050_000]
VIEW_NAME = "Kalshi resting orders"
COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
ROUTES = ("/kalshi/chart", "/kalshi/data", "/kalshi/data?hours=168")


def _hour(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


@pytest.fixture(scope="module")
def run_hour(triggered_run: dict[str, Any]) -> datetime:
    """The UTC hour the triggered run wrote for ``kalshi_default``."""
    return _hour(triggered_run["run"]["run_after"])


@pytest.fixture(scope="module")
def seeded(airflow_stack: AirflowStack, run_hour: datetime) -> dict[datetime, int]:
    """Write ``SEED_VALUES`` for the hours before the triggered run's; return them by hour."""
    hours = [run_hour - timedelta(hours=len(SEED_VALUES) - i) for i in range(len(SEED_VALUES))]
    seeds = dict(zip(hours, SEED_VALUES, strict=True))
    engine = airflow_stack.warehouse_engine()
    try:
        for hour, cents in seeds.items():
            reading = AccountReading(ACCOUNT, hour + timedelta(minutes=1), RestingOrderValue(cents))
            assert store_reading(engine, reading, snapshot_hour=hour, dag_run_id=SEED_RUN_ID).held
    finally:
        engine.dispose()
    return seeds


def _stored(stack: AirflowStack, since: datetime, until: datetime) -> dict[datetime, int]:
    engine = stack.warehouse_engine()
    try:
        rows = read_snapshots(engine, account=ACCOUNT, since=since, until=until)
    finally:
        engine.dispose()
    return {row["snapshot_hour"]: row["total_resting_order_value_cents"] for row in rows}


def _run_ids(stack: AirflowStack) -> set[str]:
    """The ids of the DAG's runs, from Airflow's REST API."""
    answer = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")
    assert answer.status_code == 200, answer.text
    return {run["dag_run_id"] for run in answer.json()["dag_runs"]}


def _get(stack: AirflowStack, path: str, **kwargs: Any) -> requests.Response:
    """A fresh session each time: no cookie or token left over from ``stack.api``."""
    with requests.Session() as session:
        return session.get(f"{stack.base_url}{path}", timeout=30, allow_redirects=False, **kwargs)


# -- HTTP ---------------------------------------------------------------------------------------


def test_chart_routes_refuse_anonymous_and_bad_tokens(airflow_stack: AirflowStack, seeded: dict) -> None:
    stack = airflow_stack
    value = str(stack.resting_order_value)
    forged = jwt.encode(
        {**jwt.decode(stack.token(), options={"verify_signature": False}), "sub": "admin"},
        "not-the-stack-secret-" + "x" * 64,
        algorithm="HS512",
    )
    for path in ROUTES:
        anonymous = _get(stack, path)
        assert anonymous.status_code == 401, (path, anonymous.status_code, anonymous.text)
        assert anonymous.json() == {"detail": "Not authenticated"}
        assert anonymous.headers.get("Cache-Control") == "no-store"

        for bad in ("not-a-jwt", forged):
            refused = _get(stack, path, headers={"Authorization": f"Bearer {bad}"})
            assert refused.status_code in (401, 403), (path, refused.status_code, refused.text)
            assert value not in refused.text and ACCOUNT not in refused.text
            assert refused.headers.get("Cache-Control") == "no-store"

        # An explicit (bad) bearer wins over a good session cookie: still refused.
        mixed = _get(
            stack, path, headers={"Authorization": "Bearer not-a-jwt"}, cookies={COOKIE: stack.token()}
        )
        assert mixed.status_code in (401, 403), (path, mixed.status_code, mixed.text)


def test_data_with_a_token_matches_the_warehouse(
    airflow_stack: AirflowStack, triggered_run: dict[str, Any], run_hour: datetime, seeded: dict
) -> None:
    stack = airflow_stack
    before = _stored(stack, run_hour - timedelta(days=2), run_hour + timedelta(days=1))
    response = _get(stack, "/kalshi/data?hours=24", headers={"Authorization": f"Bearer {stack.token()}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("Cache-Control") == "no-store"  # account data stays in no cache
    body = response.json()
    start, end = _hour(body["start"]), _hour(body["end"])
    assert end - start == timedelta(hours=23)
    after = _stored(stack, start, end + timedelta(hours=1))

    served = {_hour(p["snapshot_hour"]): p["cents"] for p in body["series"][ACCOUNT]}
    assert served[run_hour] == stack.resting_order_value  # the value the triggered run wrote
    assert {hour: served[hour] for hour in seeded} == seeded
    assert sorted(served) == [_hour(p["snapshot_hour"]) for p in body["series"][ACCOUNT]]
    # Exactly the warehouse's rows of the window (a scheduled run may add the next hour meanwhile).
    in_window = {hour: cents for hour, cents in before.items() if start <= hour <= end}
    assert in_window.items() <= served.items() <= after.items(), (before, served, after)


def test_chart_with_a_session_cookie(airflow_stack: AirflowStack, seeded: dict) -> None:
    """The UI's session is the ``_token`` cookie; no Authorization header at all."""
    stack = airflow_stack
    response = _get(stack, "/kalshi/chart?hours=24", cookies={COOKIE: stack.token()})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers.get("Cache-Control") == "no-store"
    assert f'data-account="{ACCOUNT}"' in response.text
    assert _dollars(stack.resting_order_value) in response.text


# -- browser ------------------------------------------------------------------------------------


def test_chart_in_the_ui(
    page: Page,
    browser: Browser,
    artifacts: Path,
    airflow_stack: AirflowStack,
    run_hour: datetime,
    seeded: dict[datetime, int],
    triggered_run: dict[str, Any],
) -> None:
    stack = airflow_stack
    steps = Steps(page, artifacts, prefix="chart-")
    log_in(page, stack, steps)
    assert COOKIE in {cookie["name"] for cookie in page.context.cookies()}

    page.get_by_role("button", name="Browse").click()
    item = page.get_by_role("menuitem", name=VIEW_NAME)
    expect(item).to_be_visible()
    steps.shot("browse menu")
    item.click()
    expect(page).to_have_url(re.compile(r"/plugin/kalshi-resting-orders"))

    iframe = page.locator(f'iframe[title="{VIEW_NAME}"]')
    expect(iframe).to_have_attribute("src", re.compile(r"/kalshi/chart"))
    frame = iframe.content_frame
    expect(
        frame.get_by_role("heading", level=1, name=re.compile(r"resting order value and balance"))
    ).to_be_visible()
    line = frame.locator(f'polyline[data-account="{ACCOUNT}"]')
    expect(line).to_have_count(1)  # seeded hours + the run's hour: one unbroken line
    points = (line.get_attribute("points") or "").split()
    assert len(points) >= len(seeded) + 1, points
    rows = frame.get_by_role("row").filter(has=frame.get_by_role("cell", name=ACCOUNT, exact=True))
    expect(rows.first).to_contain_text(_dollars(stack.resting_order_value))  # newest hour first
    page.mouse.move(0, 0)
    page.screenshot(path=artifacts / "20-kalshi-chart.png", full_page=True, animations="disabled")

    # The window links navigate inside the iframe; the UI mirrors that in its own URL, so a
    # reload (or a shared link) opens the same window.
    # (the page carries the zone it shows, which its script chose from the UI's or the browser's)
    frame.get_by_role("link", name="7d").click()
    expect(frame.get_by_role("heading", level=1, name=re.compile(r"last 7 days"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"/plugin/kalshi-resting-orders/kalshi/chart\?hours=168&tz=[^&]+"))
    page.reload()
    expect(frame.get_by_role("heading", level=1, name=re.compile(r"last 7 days"))).to_be_visible()
    shard_heading = frame.get_by_role("heading", level=2, name=re.compile(r"Balance per exchange shard"))
    expect(shard_heading).to_be_visible()
    expect(frame.locator(f'polyline[data-account="{ACCOUNT}"]')).to_have_count(1)

    # The newest hour links to the run that wrote it, in Airflow's UI. The UI's frame is sandboxed
    # without allow-top-navigation (3.1-3.3), so the run's page opens inside the frame.
    link = rows.first.get_by_role("link", name=re.compile(r"^(manual|scheduled)__"))
    run_id = link.inner_text()
    assert run_id in {triggered_run["run"]["dag_run_id"], *_run_ids(stack)}, run_id
    link.click()
    expect(frame.locator("body")).to_contain_text(run_id)
    # The UI's own routing may navigate the frame again after the text shows (reading its address
    # then raced that navigation): wait for the run's address, then read it.
    run_page = iframe.element_handle().content_frame()
    run_path = f"/dags/{DAG_ID}/runs/{run_id}"
    run_page.wait_for_url(lambda url: unquote(urlsplit(url).path) == run_path, timeout=30_000)
    path = urlsplit(run_page.url).path
    assert unquote(path) == run_path, path  # the UI may show it decoded
    page.screenshot(path=artifacts / "23-kalshi-chart-run-link.png", animations="disabled")

    # The page itself, opened directly in the signed-in browser (cookie, no header).
    response = page.goto(f"{stack.base_url}/kalshi/chart?hours=24")
    assert response is not None and response.status == 200
    expect(page.locator(f'polyline[data-account="{ACCOUNT}"]')).to_have_count(1)
    page.screenshot(path=artifacts / "22-kalshi-chart-page.png", full_page=True)

    anonymous = new_context(browser)
    try:
        other = anonymous.new_page()
        for path in ("/kalshi/data", "/kalshi/chart"):
            response = other.goto(f"{stack.base_url}{path}")
            assert response is not None and response.status == 401, (path, response and response.status)
            expect(other.locator("body")).to_contain_text("Not authenticated")
            assert ACCOUNT not in other.content()
            assert str(stack.resting_order_value) not in other.content()
        other.screenshot(path=artifacts / "21-kalshi-chart-anonymous.png", full_page=True)
    finally:
        anonymous.close()
