"""The JSON of ``/kalshi/data``: a chart window as plain values, exact decimals as strings.

Its shape is the README's ("The chart in the Airflow UI"); its keys keep their names from before
the columns were renamed (``docs/tables.md``). A bucketed window (``resolution_hours`` > 1) has
per line and bucket its last hour's fields plus ``bucket_start``, ``hours``, minimum and maximum.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kalshi_provider.pipelines.warehouse import ChartWindow, TooManyPoints


def window_json(window: ChartWindow) -> dict[str, Any]:
    """``/kalshi/data``'s answer for ``window``."""
    bucketed = window.bucket_hours > 1
    series: dict[str, list[dict[str, Any]]] = {}
    for row in window.totals:
        point = {"snapshot_hour": _iso(row["snapshot_hour"]), "cents": row["total_resting_order_value_cents"]}
        if bucketed:
            point |= _bucket(row) | {
                "cents_min": row["total_resting_order_value_cents_min"],
                "cents_max": row["total_resting_order_value_cents_max"],
            }
        series.setdefault(row["account"], []).append(point)
    balance: dict[str, list[dict[str, Any]]] = {}
    for row in window.balances:
        point = {
            "snapshot_hour": _iso(row["snapshot_hour"]),
            "balance_cents": row["balance_cents"],
            "balance_dollars": _exact(row["balance_dollars"]),
            "portfolio_value_cents": row["portfolio_value_cents"],
            "total_not_permitted": row["total_refusal_reason"] is not None,
        }
        if bucketed:
            point |= _bucket(row) | {
                "balance_dollars_min": _exact(row["balance_dollars_min"]),
                "balance_dollars_max": _exact(row["balance_dollars_max"]),
            }
        balance.setdefault(row["account"], []).append(point)
    free_margin: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in window.margins:
        point = {
            "snapshot_hour": _iso(row["snapshot_hour"]),
            "balance_dollars": _exact(row["shard_balance_dollars"]),
            "resting_order_value_dollars": _exact(row["shard_resting_order_value_dollars"]),
            "free_margin_dollars": _exact(row["shard_free_margin_dollars"]),
        }
        if bucketed:
            point |= _bucket(row) | {
                "free_margin_dollars_min": _exact(row["shard_free_margin_dollars_min"]),
                "free_margin_dollars_max": _exact(row["shard_free_margin_dollars_max"]),
            }
        shards = free_margin.setdefault(row["account"], {})
        shards.setdefault(str(row["exchange_index"]), []).append(point)
    return {
        "start": _iso(window.since),
        "end": _iso(window.until - timedelta(hours=1)),
        "resolution_hours": window.bucket_hours,
        "points": window.points,
        "points_budget": window.budget,
        "series": series,
        "balance": balance,
        "free_margin": free_margin,
    }


def refusal_json(refused: TooManyPoints) -> dict[str, Any]:
    """The 400 answer to a window that does not fit the points budget, saying what would."""
    return {
        "detail": f"Too many points: {refused}.",
        "hours": refused.hours,
        "points": refused.points,
        "points_budget": refused.budget,
        "max_hours": refused.max_hours,
    }


def _bucket(row: dict[str, Any]) -> dict[str, Any]:
    return {"bucket_start": _iso(row["bucket_start"]), "hours": row["hours"]}


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _exact(value: Any) -> str | None:
    return None if value is None else str(value)
