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
            # Beside the primary's balance: every subaccount's, summed (None: not recorded that hour).
            "subaccounts_balance_dollars": _exact(
                window.subaccount_sums.get((row["account"], row["snapshot_hour"]))
            ),
        }
        if bucketed:
            point |= _bucket(row) | {
                "balance_dollars_min": _exact(row["balance_dollars_min"]),
                "balance_dollars_max": _exact(row["balance_dollars_max"]),
            }
        balance.setdefault(row["account"], []).append(point)
    balance_minus_resting: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in window.balance_minus_resting:
        point = {
            "snapshot_hour": _iso(row["snapshot_hour"]),
            "balance_dollars": _exact(row["shard_balance_dollars"]),
            "resting_order_value_dollars": _exact(row["shard_resting_order_value_dollars"]),
            "balance_minus_resting_dollars": _exact(row["shard_balance_minus_resting_dollars"]),
        }
        if bucketed:
            point |= _bucket(row) | {
                "balance_minus_resting_dollars_min": _exact(row["shard_balance_minus_resting_dollars_min"]),
                "balance_minus_resting_dollars_max": _exact(row["shard_balance_minus_resting_dollars_max"]),
            }
        shards = balance_minus_resting.setdefault(row["account"], {})
        shards.setdefault(str(row["exchange_index"]), []).append(point)
    return {
        "start": _iso(window.since),
        "end": _iso(window.until - timedelta(hours=1)),
        "resolution_hours": window.bucket_hours,
        "points": window.points,
        "points_budget": window.budget,
        "series": series,
        "balance": balance,
        "balance_minus_resting": balance_minus_resting,
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
