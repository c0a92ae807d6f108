"""The chart page in a real (headless) Chromium, served over HTTP by uvicorn (Airflow's access check
stubbed): what a risk analyst sees and does.

The zone follows Airflow's UI: its choice in local storage (``timezone``, JSON, as Airflow 3.0-3.3's
UI writes it), else the browser's. The hover box, the legends, the round ticks, the run links and
the CSV download are checked in the browser, not in the HTML text. Screenshots of each step land
in ``test-artifacts/chart-ui/`` (gitignored).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.ui.app import app, readable_rows
from tests.fixtures.stack import REPO
from tests.stack.browser import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = REPO / "test-artifacts" / "chart-ui"
HOURS = 6
ZONE_NY = ZoneInfo("America/New_York")


def run_id(hour: datetime) -> str:
    return f"scheduled__{hour.isoformat()}"


@pytest.fixture
def warehouse(set_connection, tmp_path):
    """Six hours of an FCM account (shards 0 and 1) written by the default hourly DAG's runs."""
    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import AccountReading, BalanceReading, RestingOrderValue
    from tests.pipelines.warehouse.conftest import make_balance, shards

    path = tmp_path / "warehouse.db"
    set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    hours = [now - timedelta(hours=HOURS - 1 - step) for step in range(HOURS)]
    for step, hour in enumerate(hours):
        observed = hour + timedelta(seconds=5)
        cents = 100_000 * (step + 1) + 4_321  # $1,043.21, $2,043.21, ...
        balance = BalanceReading(observed, make_balance(900_000, breakdown={0: "6000", 1: "3000"}))
        reading = AccountReading("fcm_a", observed, RestingOrderValue(cents, shards({0: "100"})), balance)
        store_reading(engine, reading, snapshot_hour=hour, dag_run_id=run_id(hour), dag_id=HOURLY_DAG_ID)
    engine.dispose()
    return hours


@pytest.fixture
def chart_url(served, warehouse):
    from kalshi_provider.pipelines.warehouse import ReadableRows

    app.dependency_overrides[readable_rows] = lambda: ReadableRows(
        frozenset({HOURLY_DAG_ID}), unknown_dag=True
    )
    try:
        yield f"{served}/chart?hours=24"
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/test.sh does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # The browser's own zone is New York's: the page's fallback when the UI chose none.
            context = browser.new_context(
                viewport={"width": 1100, "height": 900}, timezone_id="America/New_York", accept_downloads=True
            )
            context.set_default_timeout(20_000)
            yield context.new_page()
        finally:
            browser.close()


def x_labels(page: Page) -> list[str]:
    return page.locator("svg[role=img]").first.locator("text.x-tick").all_text_contents()


def test_the_chart_in_chromium(browser_page: Page, chart_url: str, warehouse: list[datetime]) -> None:
    page = browser_page
    last = warehouse[-1]

    # No zone chosen in the Airflow UI: the browser's zone, said on the page.
    page.goto(chart_url)
    expect(page).to_have_url(re.compile(r"tz=America%2FNew_York&tz_from=browser$"))
    expect(page.locator("p.zone")).to_contain_text("Times in America/New_York: your browser's zone")
    new_york = x_labels(page)
    assert len(new_york) >= 6 and all(
        re.fullmatch(r"\d\d:00|[A-Z][a-z]{2} \d+ [A-Z][a-z]{2}", t) for t in new_york
    )
    page.screenshot(path=ARTIFACTS / "01-browser-zone.png", full_page=True)

    # A legend per panel, naming each line.
    legends = page.locator("ul.legend")
    expect(legends).to_have_count(3)
    expect(legends.nth(0).locator("li")).to_have_text(["fcm_a · resting order value", "fcm_a · balance"])
    expect(legends.nth(1).locator("li")).to_have_text(["fcm_a · shard 0", "fcm_a · shard 1"])

    # Round money ticks: every step between labels is 1, 2 or 5 times a power of ten.
    for panel in page.locator("svg[role=img]").all():
        values = [
            Decimal(t.replace("$", "").replace(",", ""))
            for t in panel.locator("text.y-tick").all_text_contents()
        ]
        steps = {b - a for a, b in pairwise(values)}
        assert len(steps) == 1 and values[0] == 0, values
        (step,) = steps
        assert step.normalize().as_tuple().digits in ((1,), (2,), (5,)), values

    # Hovering the last hour shows its values (exact, to the cent) and its time in the zone.
    column = page.locator(f'svg[role=img] >> nth=0 >> g.hour[data-moment="{last.isoformat()}"]')
    tip = column.locator("g.tip")
    expect(tip).to_be_hidden()
    column.locator("rect.hit").hover()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("fcm_a · resting order value: $6,043.21")
    expect(tip).to_contain_text("fcm_a · balance: $9,000.00")
    expect(tip).to_contain_text(f"{last.astimezone(ZONE_NY):%H:%M} E")  # EST or EDT
    page.screenshot(path=ARTIFACTS / "02-hover.png")

    # Each hour links to the DAG run that wrote it, in Airflow's UI.
    link = page.get_by_role("link", name=run_id(last), exact=True)
    origin = chart_url.split("/chart")[0]
    expected = f"{origin}/dags/{HOURLY_DAG_ID}/runs/{quote(run_id(last), safe='')}"
    assert link.evaluate("a => a.href") == expected

    # The CSV of the window downloads, with one row per hour and the page's zone.
    with page.expect_download() as started:
        page.get_by_role("link", name="Download CSV of this window").click()
    download = started.value
    assert re.fullmatch(r"kalshi-24h-\d{8}T\d{4}Z\.csv", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert [row["hour_utc"] for row in rows] == [hour.isoformat() for hour in reversed(warehouse)]
    assert rows[0]["total_resting_order_value_dollars"] == "6043.21"
    assert rows[0]["hour_local (America/New_York)"] == last.astimezone(ZONE_NY).isoformat()

    # The user picks Kolkata in Airflow's UI (stored as JSON): the labels move to its round hours.
    page.evaluate("localStorage.setItem('timezone', JSON.stringify('Asia/Kolkata'))")
    page.reload()
    expect(page).to_have_url(re.compile(r"tz=Asia%2FKolkata&tz_from=airflow$"))
    expect(page.locator("p.zone")).to_contain_text(
        "Times in Asia/Kolkata: the zone chosen in your Airflow UI"
    )
    kolkata = page.locator("svg[role=img]").first.locator("text.x-tick")
    moments = {datetime.fromisoformat(m) for m in kolkata.evaluate_all("ts => ts.map(t => t.dataset.moment)")}
    assert moments and all(moment.minute == 30 for moment in moments)  # 5:30 ahead of UTC
    assert x_labels(page) != new_york
    page.screenshot(path=ARTIFACTS / "03-airflow-zone.png", full_page=True)
