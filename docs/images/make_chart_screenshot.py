"""Make docs/images/kalshi-chart.png: the chart page with a day of made-up readings, in Chromium.

    .venv/bin/python docs/images/make_chart_screenshot.py

Two accounts over the last 24 hours: ``fcm_desk`` (an FCM member: totals, balances and each shard's
balance minus resting on exchange shards 0-3, shard 0's turning negative when its resting orders
exceed its cash) and ``retail_desk`` (no FCM access: Kalshi refuses its total, its balance is
stored). The rows go into a temporary SQLite warehouse through ``store_reading``, the load task's
own write; the page is rendered by the plugin's own ``chart`` route function, reading that
warehouse through the ``kalshi_warehouse`` connection as it does in Airflow, and shot with the
Chromium the stack tests use (``KALSHI_TEST_CHROMIUM``, default ``/usr/bin/chromium``). Nothing
outside a temporary directory and the PNG is written.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "kalshi-chart.png"
CHROMIUM = os.environ.get("KALSHI_TEST_CHROMIUM", "/usr/bin/chromium")
HOURS = 24
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
    """A day of hourly readings for both accounts, written as the load task writes them."""
    from sqlalchemy import create_engine

    from kalshi_provider.pipelines.warehouse import store_reading
    from kalshi_provider.readings import AccountReading, Balance, BalanceReading, RestingOrderValue

    engine = create_engine(f"sqlite:///{path}")
    try:
        for step in range(HOURS):
            hour = now - timedelta(hours=HOURS - 1 - step)
            observed = hour + timedelta(seconds=4)
            wave = math.sin(step / 3.5)
            resting = 820_000 + int(260_000 * wave) + 9_000 * step  # cents
            cash = 1_250_000 - 6_000 * step + int(40_000 * math.cos(step / 5))
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
            retail_cash = 420_000 + 2_500 * step
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
                    engine, reading, snapshot_hour=hour, dag_run_id=f"scheduled__{hour.isoformat()}"
                )
    finally:
        engine.dispose()


def render_page() -> str:
    """The chart page for the last 24 hours, from the plugin's own route function."""
    from kalshi_provider.pipelines.ui.app import chart

    return chart(hours=HOURS, account=None).body.decode()


def screenshot(html: str, output: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
            page.set_content(html)
            page.screenshot(path=str(output), full_page=True, animations="disabled")
        finally:
            browser.close()


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
        html = render_page()
        if "data-shard" not in html:
            print("the page shows no balance-minus-resting line", file=sys.stderr)
            return 1
        screenshot(html, OUTPUT)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
