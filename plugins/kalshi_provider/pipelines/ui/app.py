"""The "Kalshi resting orders" page and its data endpoint, served inside Airflow's API server.

The page draws the total resting order value per account and, beside it, each exchange shard's
balance minus its resting order value (a difference, not a Kalshi figure); ``/data`` serves the
same values as JSON (exact decimals as strings).

Airflow does not authenticate plugin apps: every route here depends on Airflow's own sign-in (an
API bearer token, or from 3.1 on the UI's session cookie) and asks Airflow's auth manager which
DAGs the user may read. The user sees only rows those DAGs wrote (filtered in SQL, see
``warehouse/access.py``); rows written before the DAG was recorded only if they may read the
default hourly DAG, as every user of the chart had to before. A user who may read no DAG is
refused (403). FastAPI's generated API docs are turned off: their routes would not go through
that check. Every answer, errors included, carries ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from html import escape
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

# Airflow's own sign-in on every line (3.0 reads the bearer header only, 3.1+ the UI's cookie too).
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.ui.chart import (
    DASHES,
    colour,
    margin_by_shard,
    render_margin_svg,
    render_svg,
    series_by_account,
)
from kalshi_provider.pipelines.ui.payload import refusal_json, window_json
from kalshi_provider.version_compat import AIRFLOW_V_3_1_PLUS

if TYPE_CHECKING:
    from kalshi_provider.pipelines.warehouse import ChartWindow

#: Most DAGs one user's rows may be filtered by: each goes into the queries' ``IN`` list (SQLite
#: takes 32,766 values a statement, and the balance minus resting's query names the list twice).
MAX_READABLE_DAGS = 10_000


def readable_rows(user: GetUserDep) -> Any:
    """The rows the signed-in ``user`` may see (a ``ReadableRows``): what the DAGs they may read
    wrote, as Airflow's auth manager answers on every line from 3.0 (``get_authorized_dag_ids``:
    FAB's asks its roles, the simple one its user's role), and the rows of unknown DAG when they
    may read the default hourly DAG. Refused (403) when they may read no DAG at all."""
    from airflow.api_fastapi.app import get_auth_manager

    from kalshi_provider.pipelines.warehouse import ReadableRows

    dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    if not dag_ids:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: you may read no DAG, so no account")
    if len(dag_ids) > MAX_READABLE_DAGS:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"You may read {len(dag_ids):,} DAGs; the chart filters by at most {MAX_READABLE_DAGS:,}. "
            "Ask for a role that reads fewer, or read the tables directly.",
        )
    return ReadableRows(frozenset(dag_ids), unknown_dag=HOURLY_DAG_ID in dag_ids)


Readable = Annotated[Any, Depends(readable_rows)]


WINDOWS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30, "90d": 24 * 90}
#: Most accounts one request may name (``?account=a&account=b``).
MAX_ACCOUNTS = 50

app = FastAPI(
    title="Kalshi resting order value",
    dependencies=[Depends(readable_rows)],
    # FastAPI's own /docs, /redoc and /openapi.json escape the app's dependencies: they would
    # answer anyone, and the two pages load scripts from a CDN into Airflow's origin.
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)

#: Account pages and their refusals must not stay in a browser's or a proxy's cache (a shared
#: machine, the back button after signing out): every answer of the app says so.
NOT_STORED = {"Cache-Control": "no-store"}


class _NotStored:
    """ASGI middleware: ``Cache-Control: no-store`` on every answer, whatever route or error made it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_not_stored(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(NOT_STORED)
            await send(message)

        await self.app(scope, receive, send_not_stored)


app.add_middleware(_NotStored)


@app.exception_handler(Exception)
async def _failed(request: Request, exc: Exception) -> PlainTextResponse:
    """An unexpected error's 500 is made outside every middleware (Starlette's outermost one calls
    this, then re-raises for the server's log), so it carries the header itself."""
    return PlainTextResponse("Internal Server Error", status_code=500, headers=NOT_STORED)


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
Accounts = Annotated[
    list[str] | None,
    Query(
        max_length=MAX_ACCOUNTS,
        description="Only these accounts (repeat the parameter for several); every account when absent",
    ),
]


def load_window(hours: int, accounts: Sequence[str] | None = None, readable: Any = None) -> ChartWindow:
    """The last ``hours`` hours of the warehouse the DAG writes to by default, of the rows
    ``readable`` lets the user see (every row when None), within the chart's points budget (raises
    ``TooManyPoints`` beyond it)."""
    from airflow.models.connection import Connection

    from kalshi_provider.pipelines import settings
    from kalshi_provider.pipelines.warehouse import read_window, warehouse_engine
    from kalshi_provider.pipelines.warehouse.bounds import ID_LENGTH

    if accounts is not None and any(len(account) > ID_LENGTH for account in accounts):
        raise HTTPException(422, f"an account id is at most {ID_LENGTH} characters long")
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    target = settings.warehouse_target()
    engine, _ = warehouse_engine(target.conn_id, get_connection=Connection.get_connection_from_secrets)
    try:
        return read_window(
            engine,
            since=end - timedelta(hours=hours - 1),
            until=end + timedelta(hours=1),
            accounts=accounts,
            budget=settings.CHART_POINTS_BUDGET,
            table_name=target.table,
            schema=target.schema,
            readable=readable,
        )
    finally:
        engine.dispose()


@app.get("/data")
def data(readable: Readable, hours: Hours = 24, account: Accounts = None) -> JSONResponse:
    from kalshi_provider.pipelines.warehouse import TooManyPoints

    # A JSONResponse, not a dict: FastAPI would copy every point through jsonable_encoder first.
    try:
        window = load_window(hours, account, readable)
    except TooManyPoints as refused:
        return JSONResponse(refusal_json(refused), status_code=status.HTTP_400_BAD_REQUEST)
    return JSONResponse(window_json(window))


@app.get("/chart", response_class=HTMLResponse)
def chart(readable: Readable, hours: Hours = 24, account: Accounts = None) -> HTMLResponse:
    from kalshi_provider.pipelines.warehouse import TooManyPoints

    links = " · ".join(
        f'<a href="{escape(_query(value, account))}"{" aria-current=page" if value == hours else ""}>'
        f"{label}</a>"
        for label, value in WINDOWS.items()
    )
    try:
        window = load_window(hours, account, readable)
    except TooManyPoints as refused:
        body = f"<p class=refused>This window holds too many points to draw: {escape(str(refused))}.</p>"
        return HTMLResponse(_PAGE.format(links=links, hours=hours, body=body), status.HTTP_400_BAD_REQUEST)
    series = series_by_account(window.totals)
    margins = margin_by_shard(window.balance_minus_resting)
    start, end, step = window.since, window.until - timedelta(hours=1), window.bucket_hours
    if not window.totals and not window.balances:
        body = (
            "<p class=empty>No rows in this window that you may see: the DAGs you may read have not "
            "written any yet.</p>"
        )
    else:
        body = (
            _resolution(window)
            + render_svg(series, start, end, bucket_hours=step)
            + f"<h2>Balance minus resting order value per exchange shard, last {hours} hours</h2>"
            + "<p class=note>Each shard's available balance (Kalshi's) minus the value of its resting "
            "orders (Kalshi's): a difference this page computes, not a figure Kalshi publishes. Kalshi's "
            "balance is already the available balance, so this may count resting orders twice. Where "
            "either is unknown (a key without FCM access, a breakdown that does not add up) there is no "
            "point.</p>"
            + render_margin_svg(margins, start, end, bucket_hours=step)
            + _legend(margins)
            + _latest_table(window)
        )
    return HTMLResponse(_PAGE.format(links=links, hours=hours, body=body))


def _query(hours: int, accounts: Sequence[str] | None) -> str:
    return "?" + urlencode([("hours", hours), *(("account", account) for account in accounts or ())])


def _resolution(window: ChartWindow) -> str:
    if window.bucket_hours == 1:
        return ""
    return (
        f"<p class=note>One point per {window.bucket_hours} hours (the last value of each), so that the "
        f"page stays within {window.budget:,} points; <code>/kalshi/data</code> also gives each one's "
        "minimum and maximum.</p>"
    )


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


def _latest_table(window: ChartWindow) -> str:
    """Per account: its latest hour, total, balance and balance minus resting per shard, and how many hours
    of the window have a total (rows come ordered by account and hour)."""
    latest_total = {row["account"]: row for row in window.totals}
    latest_balance = {row["account"]: row for row in window.balances}
    hours_with_total: dict[str, int] = {}
    for row in window.totals:
        hours_with_total[row["account"]] = hours_with_total.get(row["account"], 0) + row.get("hours", 1)
    cells = []
    for account in sorted(set(latest_total) | set(latest_balance)):
        total, balance = latest_total.get(account), latest_balance.get(account)
        value = f"${total['total_resting_order_value_cents'] / 100:,.2f}" if total else "—"
        if balance is not None and balance["total_refusal_reason"]:
            value = "not permitted (no FCM access)"
        hour = max(row["snapshot_hour"] for row in (total, balance) if row is not None)
        cash = f"${balance['balance_dollars']:,.2f}" if balance else "—"
        free = "—"
        if balance:
            shards = [
                row
                for row in window.balance_minus_resting
                if row["account"] == account and row["snapshot_hour"] == balance["snapshot_hour"]
            ]
            free = " · ".join(
                f"{row['exchange_index']}: {_signed_or_dash(row['shard_balance_minus_resting_dollars'])}"
                for row in shards
            )
        cells.append(
            f"<tr><td>{escape(account)}</td><td>{hour:%Y-%m-%d %H:00}</td><td class=num>{value}</td>"
            f"<td class=num>{cash}</td><td class=num>{free}</td>"
            f"<td class=num>{hours_with_total.get(account, 0)}</td></tr>"
        )
    return (
        "<table><tr><th>account</th><th>latest hour (UTC)</th><th>resting order value</th>"
        "<th>balance</th><th>balance minus resting per shard</th><th>hours with a total</th></tr>"
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
