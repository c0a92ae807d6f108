"""Make the chart's screenshots in docs/images/ (see docs/chart.md), in Chromium.

    .venv/bin/python docs/images/make_chart_screenshot.py

Thirty days of made-up hourly readings for two accounts: ``fcm_desk`` (an FCM member: totals,
balances and exchange shards 0-3) and ``retail_desk`` (no FCM access: Kalshi refuses its total,
its balance is stored). The rows go into a temporary SQLite warehouse through ``store_reading``,
the load task's own write, as the default hourly DAG's scheduled runs. The plugin's own app is
served by uvicorn on loopback (Airflow's access check replaced by "every row") and opened in the
Chromium the tests use (``KALSHI_TEST_CHROMIUM``, default ``/usr/bin/chromium``), with a time zone
chosen the way Airflow's UI stores it (local storage ``timezone``). Nothing outside a temporary
directory and the PNGs is written.

- ``kalshi-chart.png``: the last 24 hours in America/New_York, the pointer on an hour.
- ``kalshi-chart-30d.png``: the last 30 days in Europe/London, the pointer on a day.
- ``kalshi-chart-csv.png``: the first rows of the CSV the page's link downloads.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from pathlib import Path

IMAGES = Path(__file__).resolve().parent
sys.path.insert(0, str(IMAGES.parents[1]))  # tests.fixtures: the app served as the tests serve it
CHROMIUM = os.environ.get("KALSHI_TEST_CHROMIUM", "/usr/bin/chromium")
DAYS = 30
#: Each shard's share of the FCM account's balance and of its resting orders, in percent.
BALANCE_SHARES = {0: 40, 1: 30, 2: 20, 3: 10}
RESTING_SHARES = {0: 60, 1: 15, 2: 20, 3: 5}
REFUSED = "403 permission_denied: This endpoint is only for FCM members (Futures Commission Merchants)"


def split(cents: int, shares: dict[int, int]):
    """``cents`` over the shards, shard 0 taking what the others leave: adds up to the cent."""
    from kalshi_provider.readings import ShardAmount

    parts = {index: cents * share // 100 for index, share in shares.items() if index}
    parts[0] = cents - sum(parts.values())
    return tuple(ShardAmount(index, Decimal(parts[index]).scaleb(-2)) for index in sorted(parts))


def seed(path: Path, now: datetime) -> None:
    """``DAYS`` days of hourly readings for both accounts, written as the load task writes them."""
    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import AccountReading, Balance, BalanceReading, RestingOrderValue

    hours = DAYS * 24
    engine = create_engine(f"sqlite:///{path}")
    try:
        for step in range(hours):
            hour = now - timedelta(hours=hours - 1 - step)
            observed = hour + timedelta(seconds=4)
            resting = 820_000 + int(260_000 * math.sin(step / 3.5)) + int(200_000 * math.sin(step / 90))
            cash = 1_250_000 + int(150_000 * math.cos(step / 120)) + int(40_000 * math.cos(step / 5))
            fcm = AccountReading(
                "fcm_desk",
                observed,
                RestingOrderValue(resting, split(resting, RESTING_SHARES)),
                BalanceReading(
                    observed + timedelta(seconds=1),
                    Balance(
                        cash, 310_000, Decimal(cash).scaleb(-2), 1_800_000_000, split(cash, BALANCE_SHARES)
                    ),
                ),
                try_number=1,
                source="https://external-api.kalshi.com/trade-api/v2",
            )
            retail_cash = 420_000 + 250 * step
            retail = AccountReading(
                "retail_desk",
                observed,
                None,
                BalanceReading(
                    observed + timedelta(seconds=1),
                    Balance(
                        retail_cash,
                        0,
                        Decimal(retail_cash).scaleb(-2),
                        1_800_000_000,
                        split(retail_cash, BALANCE_SHARES),
                    ),
                ),
                not_permitted=REFUSED,
                try_number=1,
                source="https://external-api.kalshi.com/trade-api/v2",
            )
            for reading in (fcm, retail):
                store_reading(
                    engine,
                    reading,
                    snapshot_hour=hour,
                    dag_run_id=f"scheduled__{hour.isoformat()}",
                    dag_id=HOURLY_DAG_ID,
                )
    finally:
        engine.dispose()


def shoot(base: str, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            for zone, hours, output, column in (
                ("America/New_York", 24, "kalshi-chart.png", 16),
                ("Europe/London", DAYS * 24, "kalshi-chart-30d.png", -9),
            ):
                context = browser.new_context(viewport={"width": 1000, "height": 900}, accept_downloads=True)
                # As Airflow's UI stores the user's choice of zone (JSON in local storage).
                context.add_init_script(f"localStorage.setItem('timezone', {json.dumps(json.dumps(zone))})")
                page = context.new_page()
                page.goto(f"{base}/chart?hours={hours}")
                page.wait_for_url(f"**tz={zone.replace('/', '%2F')}**")
                page.locator("svg[role=img]").first.locator("g.hour rect.hit").nth(column).hover()
                if hours == 24:
                    page.screenshot(path=IMAGES / output, full_page=True, animations="disabled")
                    with page.expect_download() as started:
                        page.get_by_role("link", name="Download CSV of this window").click()
                    shoot_csv(page, Path(started.value.path()), started.value.suggested_filename)
                else:
                    box = page.locator("svg[role=img]").first.bounding_box()
                    assert box is not None
                    page.screenshot(
                        path=IMAGES / output,
                        clip={"x": 0, "y": 0, "width": 1000, "height": box["y"] + box["height"] + 10},
                        animations="disabled",
                    )
                context.close()
        finally:
            browser.close()


def shoot_csv(page, path: Path, name: str) -> None:
    """The downloaded CSV's first rows, one column per row (its columns are many), as a
    spreadsheet would show them."""
    header, *rows = list(csv.reader(path.read_text().splitlines()))[:5]
    cells = "".join(
        f"<tr><th>{escape(field)}</th>" + "".join(f"<td>{escape(row[i])}</td>" for row in rows) + "</tr>"
        for i, field in enumerate(header)
    )
    page.set_viewport_size({"width": 1000, "height": 300})
    page.set_content(
        "<style>body{font-family:system-ui,sans-serif;margin:1rem;font-size:12px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;white-space:nowrap}"
        "th{background:#eee;text-align:left}</style>"
        f"<p>Downloaded <b>{escape(name)}</b>: its first rows, one per column.</p><table>{cells}</table>"
    )
    page.screenshot(path=IMAGES / "kalshi-chart-csv.png", full_page=True)


def main() -> int:
    if not Path(CHROMIUM).is_file():
        print(
            f"no Chromium at {CHROMIUM}: install Debian's chromium or set KALSHI_TEST_CHROMIUM",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="kalshi-chart-") as work:
        warehouse = Path(work) / "warehouse.db"
        # Before Airflow is imported: its home and the warehouse connection the chart reads.
        os.environ["AIRFLOW_HOME"] = work
        os.environ["AIRFLOW_CONN_KALSHI_WAREHOUSE"] = json.dumps(
            {"conn_type": "sqlite", "host": str(warehouse)}
        )
        now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        seed(warehouse, now)
        from kalshi_provider.pipelines.ui.app import app, readable_rows
        from tests.fixtures.served_app import served_app

        app.dependency_overrides[readable_rows] = lambda: None  # no filter: every row
        with served_app(app) as base:
            shoot(base, Path(work))
    print(f"wrote {', '.join(p.name for p in sorted(IMAGES.glob('kalshi-chart*.png')))} in {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
