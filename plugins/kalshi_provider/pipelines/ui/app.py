"""The "Kalshi resting orders" page (``docs/chart.md``), its ``/data`` (JSON, exact decimals as
strings) and its ``/csv``, served inside Airflow's API server.

Airflow does not authenticate plugin apps, so every route depends on Airflow's own sign-in and asks
its auth manager which DAGs the user may read; the user sees only rows those DAGs wrote (in SQL,
``warehouse/access.py``) and one who may read none gets 403. FastAPI's API docs are off (their
routes would skip that check); every answer carries ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from html import escape
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlencode

# Airflow's own sign-in on every line (3.0 reads the bearer header only, 3.1+ the UI's cookie too).
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.ui.account_hours import (
    ACCOUNT_FIGURES,
    AccountHour,
    Figure,
    account_hours,
    run_path,
    shown_figures,
)
from kalshi_provider.pipelines.ui.axes import moment_label
from kalshi_provider.pipelines.ui.chart import Line, account_lines, legend, render_panel, shard_lines
from kalshi_provider.pipelines.ui.export import window_csv
from kalshi_provider.pipelines.ui.payload import refusal_json, window_json
from kalshi_provider.pipelines.ui.zone import FOLLOW_THE_UI_ZONE, ShownZone, shown_zone
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
Zone = Annotated[
    str | None,
    Query(max_length=64, description="IANA time zone of the page's times (the page's script sets it)"),
]
ZoneFrom = Annotated[Literal["airflow", "browser"] | None, Query(description="Where the page found tz")]


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


@app.get("/csv")
def csv_download(
    readable: Readable, hours: Hours = 24, account: Accounts = None, tz: Zone = None
) -> Response:
    """The chart's window as CSV (``export.py``): the same rows, access filter and points budget."""
    from kalshi_provider.pipelines.warehouse import TooManyPoints

    try:
        window = load_window(hours, account, readable)
    except TooManyPoints as refused:
        return JSONResponse(refusal_json(refused), status_code=status.HTTP_400_BAD_REQUEST)
    zone = shown_zone(tz, None).zone
    name = f"kalshi-{hours}h-{window.until - timedelta(hours=1):%Y%m%dT%H00Z}.csv"
    return Response(
        window_csv(window, zone),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@app.get("/chart", response_class=HTMLResponse)
def chart(
    readable: Readable,
    hours: Hours = 24,
    account: Accounts = None,
    tz: Zone = None,
    tz_from: ZoneFrom = None,
) -> HTMLResponse:
    from kalshi_provider.pipelines.warehouse import TooManyPoints

    shown = shown_zone(tz, tz_from)
    links = " · ".join(
        f'<a href="{escape(_query(value, account, shown))}"{" aria-current=page" if value == hours else ""}>'
        f"{label}</a>"
        for label, value in WINDOWS.items()
    )
    head = {"links": links, "title": escape(window_title(hours)), "zone": escape(shown.name)}
    try:
        window = load_window(hours, account, readable)
    except TooManyPoints as refused:
        body = f"<p class=refused>This window holds too many points to draw: {escape(str(refused))}.</p>"
        return HTMLResponse(_PAGE.format(body=body, **head), status.HTTP_400_BAD_REQUEST)
    if not window.totals and not window.balances:
        body = (
            "<p class=empty>No rows in this window that you may see: the DAGs you may read have not "
            "written any yet.</p>"
        )
        return HTMLResponse(_PAGE.format(body=_zone_note(shown, "") + body, **head))
    start, end, step = window.since, window.until - timedelta(hours=1), window.bucket_hours

    def panel(heading: str, lines: list[Line], aria: str, note: str = "") -> str:
        return f"<h2>{heading}</h2>{note}{legend(lines)}" + render_panel(
            lines, start, end, zone=shown.zone, aria=aria, bucket_hours=step
        )

    csv_href = escape("csv" + _query(hours, account, shown))
    csv_link = f'<a class=csv href="{csv_href}" download>Download CSV of this window</a>'
    body = (
        _zone_note(shown, csv_link)
        + _resolution(window)
        + panel(
            "Resting order value and balance per account",
            account_lines(window.totals, window.balances),
            "Total resting order value and balance per account",
            "<p class=note>Solid: the total value of the account's resting orders. Dashed, in the "
            "account's colour: its balance (primary subaccount).</p>",
        )
        + panel(
            "Balance per exchange shard (Kalshi's figure)",
            shard_lines(window.balance_minus_resting, "shard_balance_dollars"),
            "Balance per account and exchange shard",
            "<p class=note>Each shard's own balance as Kalshi's balance breakdown gives it; each "
            "shard has its own colour and dash pattern.</p>",
        )
        + panel(
            "Resting order value per exchange shard (Kalshi's figure)",
            shard_lines(window.balance_minus_resting, "shard_resting_order_value_dollars"),
            "Resting order value per account and exchange shard",
        )
        + _account_hours_table(window, shown)
    )
    return HTMLResponse(_PAGE.format(body=body, **head))


def window_title(hours: int) -> str:
    """``last 30 days`` for whole days beyond one, else ``last 24 hours``."""
    if hours > 24 and hours % 24 == 0:
        return f"last {hours // 24} days"
    return f"last {hours} hour{'s' if hours != 1 else ''}"


def _query(hours: int, accounts: Sequence[str] | None, shown: ShownZone | None = None) -> str:
    zone = [("tz", shown.name)] if shown is not None else []
    return "?" + urlencode([("hours", hours), *(("account", account) for account in accounts or ()), *zone])


def _zone_note(shown: ShownZone, extra: str) -> str:
    return (
        f"<p class=zone>Times in <strong>{escape(shown.name)}</strong>: {escape(shown.explanation)}."
        f"{' · ' + extra if extra else ''}</p>"
    )


def _resolution(window: ChartWindow) -> str:
    if window.bucket_hours == 1:
        return ""
    return (
        f"<p class=note>One point per {window.bucket_hours} hours (the last value of each), so that the "
        f"page stays within {window.budget:,} points; <code>/kalshi/data</code> also gives each one's "
        "minimum and maximum.</p>"
    )


def _account_hours_table(window: ChartWindow, shown: ShownZone) -> str:
    """Per account and hour, newest first: the figures of ``ACCOUNT_FIGURES`` that the window
    carries, and a link to the DAG run that wrote the hour."""
    rows = account_hours(window)
    figures = shown_figures(rows)
    head = "".join(f"<th>{escape(figure.heading)}</th>" for figure in figures)
    cells = []
    for row in rows:
        values = "".join(f"<td class=num>{_cell(row, figure)}</td>" for figure in figures)
        run = row.run
        link = "—"
        if run is not None:  # in the frame the UI shows the chart in: its sandbox forbids leaving it
            link = f'<a href="{escape(run_path(*run))}">{escape(run[1])}</a>'
        cells.append(
            f"<tr><td>{moment_label(row.hour, shown.zone)}</td><td>{escape(row.account)}</td>{values}"
            f"<td class=run>{link}</td></tr>"
        )
    return (
        "<h2>Per account and hour</h2><div class=scroll><table><thead><tr><th>Hour</th><th>Account</th>"
        f"{head}<th>DAG run</th></tr></thead><tbody>" + "".join(cells) + "</tbody></table></div>"
    )


def _cell(row: AccountHour, figure: Figure) -> str:
    value = figure.value(row)
    if value is None:
        return "not permitted (no FCM access)" if row.not_permitted and figure is ACCOUNT_FIGURES[0] else "—"
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


_PAGE = (
    """<!doctype html>
<html lang="en" data-zone="{zone}"><head><meta charset="utf-8"><title>Kalshi resting order value</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 1000px; }}
 h1 {{ font-size: 1.3rem; }} svg {{ max-width: 100%; height: auto; }}
 table {{ border-collapse: collapse; }}
 td, th {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }}
 thead th {{ position: sticky; top: 0; background: #f6f6f6; }}
 .scroll {{ max-height: 28rem; overflow: auto; border: 1px solid #ddd; }}
 .num {{ text-align: right; font-variant-numeric: tabular-nums; }} a[aria-current] {{ font-weight: bold; }}
 h2 {{ font-size: 1.1rem; margin: 1.6rem 0 .3rem; }} .note, .zone {{ color: #555; font-size: .9rem; }}
 .legend {{ list-style: none; padding: 0; margin: .3rem 0; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem;
   font-size: .9rem; }}
 .hour .tip {{ visibility: hidden; pointer-events: none; }}
 .hour:hover .tip, .hour:focus .tip {{ visibility: visible; }}
 .hour:focus {{ outline: none; }}
</style>
<script>"""
    + FOLLOW_THE_UI_ZONE.replace("{", "{{").replace("}", "}}")
    + """</script></head><body>
<h1>Kalshi resting order value and balance, {title}</h1>
<nav>{links}</nav>
{body}
</body></html>"""
)

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
