"""The chart window as CSV: what ``/kalshi/csv`` serves (the page's "Download CSV").

One row per account and hour (per bucket on a long window, as the chart draws it), exact decimal
dollars, hours in UTC (ISO 8601) and in the zone the page shows. Names from the warehouse (an
account, a DAG or run id) are text a spreadsheet could take for a formula: a cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's advice for
CSV injection). The numbers are written by this module from Decimals, so they are left as numbers.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kalshi_provider.pipelines.ui.account_hours import SHARD_FIGURES, account_hours, shown_figures

if TYPE_CHECKING:
    from kalshi_provider.pipelines.warehouse import ChartWindow

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(text: str | None) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _number(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def window_csv(window: ChartWindow, zone: ZoneInfo) -> str:
    """The CSV text of ``window``, local hours in ``zone``."""
    rows = account_hours(window)
    figures = shown_figures(rows)
    shards = sorted({index for row in rows for index in row.shards})
    header = [
        "account",
        "hour_utc",
        f"hour_local ({zone.key})",
        "hours_in_point",
        *(figure.csv_name for figure in figures),
        "total_not_permitted",
        *(f"shard_{index}_{suffix}" for index in shards for suffix, _ in SHARD_FIGURES),
        "dag_id",
        "dag_run_id",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        run: Any = row.run or (None, None)
        writer.writerow(
            [
                text_cell(row.account),
                row.hour.isoformat(),
                row.hour.astimezone(zone).isoformat(),
                row.hours,
                *(_number(figure.value(row)) for figure in figures),
                "true" if row.not_permitted else "false",
                *(
                    _number(row.shards[index][name]) if index in row.shards else ""
                    for index in shards
                    for _, name in SHARD_FIGURES
                ),
                text_cell(run[0]),
                text_cell(run[1]),
            ]
        )
    return out.getvalue()
