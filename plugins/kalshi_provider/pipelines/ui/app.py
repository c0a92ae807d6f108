"""The "Kalshi resting orders" page and its data endpoint, served inside Airflow's API server.

The page draws the total resting order value per account and, beside it, the free margin per
account and exchange shard; ``/data`` serves the same values as JSON (exact decimals as strings).

Airflow does not authenticate plugin apps: every route here depends on Airflow's own check that
the caller may read the pipeline's DAG, so only a signed-in user who may read that DAG sees
account data (an API bearer token, or from 3.1 on the UI's session cookie). FastAPI's generated
API docs are turned off: their routes would not go through that check.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import escape
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.ui.chart import (
    DASHES,
    colour,
    margin_by_shard,
    render_margin_svg,
    render_svg,
    series_by_account,
)
from kalshi_provider.version_compat import AIRFLOW_V_3_1_PLUS

if AIRFLOW_V_3_1_PLUS:
    from airflow.api_fastapi.core_api.security import requires_access_dag

    may_read_the_dag = requires_access_dag("GET", param_dag_id=HOURLY_DAG_ID)
else:
    from airflow.api_fastapi.core_api.security import GetUserDep

    def may_read_the_dag(user: GetUserDep) -> None:
        """Airflow 3.0's ``requires_access_dag`` reads the DAG id only from the URL path: ask the
        auth manager the same question about the pipeline's DAG directly."""
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

        if not get_auth_manager().is_authorized_dag(
            method="GET", details=DagDetails(id=HOURLY_DAG_ID), user=user
        ):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")


WINDOWS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}

app = FastAPI(
    title="Kalshi resting order value",
    dependencies=[Depends(may_read_the_dag)],
    # FastAPI's own /docs, /redoc and /openapi.json escape the app's dependencies: they would
    # answer anyone, and the two pages load scripts from a CDN into Airflow's origin.
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)

if not AIRFLOW_V_3_1_PLUS:
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _ask_again_with_the_ui_token(request, exc):
        """Airflow 3.0's UI keeps its token in the browser's local storage and sends it only as a
        header, so a browser opening the chart's address sends none. Answer that 401 with a page
        that asks again with the token: it holds no data, and what it then shows comes from the
        same checked route."""
        if (
            exc.status_code == 401
            and request.url.path.endswith("/chart")
            and "authorization" not in request.headers
        ):
            return HTMLResponse(_ASK_WITH_THE_UI_TOKEN, status_code=401)
        return await http_exception_handler(request, exc)


Hours = Annotated[int, Query(ge=1, le=24 * 90, description="How many hours back to show")]


def load_rows(hours: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], datetime, datetime]:
    """Totals and balances (with the free margin) of the last ``hours`` hours, from the warehouse
    the DAG writes to by default."""
    from airflow.models.connection import Connection

    from kalshi_provider.pipelines.settings import warehouse_target
    from kalshi_provider.pipelines.warehouse import read_balances, read_snapshots, warehouse_engine

    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    target = warehouse_target()
    engine, _ = warehouse_engine(target.conn_id, get_connection=Connection.get_connection_from_secrets)
    window = {
        "since": start,
        "until": end + timedelta(hours=1),
        "table_name": target.table,
        "schema": target.schema,
    }
    try:
        rows = read_snapshots(engine, **window)
        balances = read_balances(engine, **window)
    finally:
        engine.dispose()
    return rows, balances, start, end


def _exact(value: Any) -> str | None:
    return None if value is None else str(value)


@app.get("/data")
def data(hours: Hours = 24) -> dict[str, Any]:
    rows, balances, start, end = load_rows(hours)
    balance: dict[str, list[dict[str, Any]]] = {}
    free_margin: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in balances:
        hour = row["snapshot_hour"].isoformat()
        balance.setdefault(row["account"], []).append(
            {
                "snapshot_hour": hour,
                "balance_cents": row["balance_cents"],
                "balance_dollars": _exact(row["balance_dollars"]),
                "portfolio_value_cents": row["portfolio_value_cents"],
                "total_not_permitted": row["total_refusal_reason"] is not None,
            }
        )
        for entry in row["free_margin"]:
            shards = free_margin.setdefault(row["account"], {})
            shards.setdefault(str(entry["exchange_index"]), []).append(
                {
                    "snapshot_hour": hour,
                    "balance_dollars": _exact(entry["shard_balance_dollars"]),
                    "resting_order_value_dollars": _exact(entry["shard_resting_order_value_dollars"]),
                    "free_margin_dollars": _exact(entry["shard_free_margin_dollars"]),
                }
            )
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "series": {
            account: [{"snapshot_hour": m.isoformat(), "cents": v} for m, v in points]
            for account, points in series_by_account(rows).items()
        },
        "balance": balance,
        "free_margin": free_margin,
    }


@app.get("/chart", response_class=HTMLResponse)
def chart(hours: Hours = 24) -> str:
    rows, balances, start, end = load_rows(hours)
    series = series_by_account(rows)
    margins = margin_by_shard(balances)
    links = " · ".join(
        f'<a href="?hours={value}"{" aria-current=page" if value == hours else ""}>{label}</a>'
        for label, value in WINDOWS.items()
    )
    if not series and not balances:
        body = "<p class=empty>No rows in this window yet: the hourly DAG has not written any.</p>"
    else:
        body = (
            render_svg(series, start, end)
            + f"<h2>Free margin per exchange shard, last {hours} hours</h2>"
            + "<p class=note>A shard's free margin is its balance minus the value of its resting orders. "
            "Where either is unknown (a key without FCM access, a breakdown that does not add up) "
            "there is no point.</p>"
            + render_margin_svg(margins, start, end)
            + _legend(margins)
            + _latest_table(series, balances)
        )
    return _PAGE.format(links=links, hours=hours, body=body)


def _legend(margins: dict[tuple[str, int], list[Any]]) -> str:
    accounts = sorted({account for account, _ in margins})
    items = "".join(
        f'<li><svg width="34" height="10" aria-hidden="true"><line x1="0" y1="5" x2="34" y2="5" '
        f'stroke="{colour(accounts.index(account))}" stroke-width="2"'
        + (f' stroke-dasharray="{DASHES[shard % len(DASHES)]}"' if DASHES[shard % len(DASHES)] else "")
        + f"/></svg> {escape(account)} · shard {shard}</li>"
        for account, shard in margins
    )
    return f"<ul class=legend>{items}</ul>" if items else ""


def _latest_table(series: dict[str, list[tuple[datetime, int]]], balances: list[dict[str, Any]]) -> str:
    latest_balance = {row["account"]: row for row in balances}  # rows come ordered by hour
    accounts = sorted(set(series) | set(latest_balance))
    cells = []
    for account in accounts:
        points = series.get(account, [])
        balance = latest_balance.get(account)
        value = f"${points[-1][1] / 100:,.2f}" if points else "—"
        if balance is not None and balance["total_refusal_reason"]:
            value = "not permitted (no FCM access)"
        hour = max([m for m, _ in points[-1:]] + ([balance["snapshot_hour"]] if balance else []))
        cash = f"${balance['balance_dollars']:,.2f}" if balance else "—"
        free = (
            " · ".join(
                f"{entry['exchange_index']}: {_signed_or_dash(entry['shard_free_margin_dollars'])}"
                for entry in balance["free_margin"]
            )
            if balance
            else "—"
        )
        cells.append(
            f"<tr><td>{escape(account)}</td><td>{hour:%Y-%m-%d %H:00}</td><td class=num>{value}</td>"
            f"<td class=num>{cash}</td><td class=num>{free}</td><td class=num>{len(points)}</td></tr>"
        )
    return (
        "<table><tr><th>account</th><th>latest hour (UTC)</th><th>resting order value</th>"
        "<th>balance</th><th>free margin per shard</th><th>hours with a total</th></tr>"
        + "".join(cells)
        + "</table>"
    )


def _signed_or_dash(dollars: Any) -> str:
    """Signed dollars, or a dash where the amount is unknown (NULL)."""
    return "—" if dollars is None else f"{'-' if dollars < 0 else ''}${abs(dollars):,.2f}"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kalshi resting order value</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
 h1 {{ font-size: 1.3rem; }} svg {{ max-width: 100%; height: auto; }}
 table {{ border-collapse: collapse; margin-top: 1rem; }}
 td, th {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; }}
 .num {{ text-align: right; font-variant-numeric: tabular-nums; }} a[aria-current] {{ font-weight: bold; }}
 h2 {{ font-size: 1.1rem; margin-top: 1.5rem; }} .note {{ color: #555; font-size: .9rem; }}
 .legend {{ list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; }}
</style></head><body>
<h1>Total resting order value per account, last {hours} hours</h1>
<nav>{links}</nav>
{body}
</body></html>"""

_ASK_WITH_THE_UI_TOKEN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kalshi resting order value</title></head><body>
<p id="status">Signing in with your Airflow session...</p>
<script>
(async () => {
  const status = document.getElementById("status");
  const token = localStorage.getItem("token");
  if (!token) {
    status.textContent = "Not signed in: sign in to Airflow in this browser, then open this page again.";
    return;
  }
  const response = await fetch(location.href, {headers: {Authorization: "Bearer " + token}});
  if (!response.ok) {
    status.textContent = response.status === 403
      ? "Your Airflow user may not read the Kalshi DAG."
      : "Not signed in: sign in to Airflow again.";
    return;
  }
  const page = await response.text();
  document.open();
  document.write(page);
  document.close();
})();
</script>
</body></html>"""
