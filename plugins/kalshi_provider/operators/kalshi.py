"""Operator that reads Kalshi's total resting order value for one account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class KalshiTotalRestingOrderValueOperator(BaseOperator):
    """
    Fetch ``GET /portfolio/summary/total_resting_order_value`` and return it as a small record.

    The XCom value is JSON-safe and holds no secret::

        {"account": "kalshi_default", "total_resting_order_value_cents": 123456,
         "observed_at": "2026-11-24T10:00:01.234567+00:00",
         "breakdown": [{"exchange_index": 0, "balance": "1234.5600"}]}

    ``observed_at`` is when Kalshi's answer arrived (UTC): the value is a live reading, not a
    figure for the run's logical date.

    :param kalshi_conn_id: Kalshi connection to use; it also names the account in the record.
    """

    template_fields: Sequence[str] = ("kalshi_conn_id",)
    ui_color = "#00d991"

    def __init__(self, *, kalshi_conn_id: str = "kalshi_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kalshi_conn_id = kalshi_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported here, not at module level: DAG files import this module at every parse, and
        # the hook pulls in requests, tenacity and cryptography.
        from kalshi_provider.hooks.kalshi import KalshiHook

        hook = KalshiHook(kalshi_conn_id=self.kalshi_conn_id)
        reading = hook.get_resting_order_value()
        observed_at = datetime.now(timezone.utc)
        self.log.info(
            "Kalshi account %s: total resting order value %d cents (%d exchange(s) in the breakdown)",
            self.kalshi_conn_id,
            reading.total_cents,
            len(reading.breakdown),
        )
        return {
            "account": self.kalshi_conn_id,
            "total_resting_order_value_cents": reading.total_cents,
            "observed_at": observed_at.isoformat(),
            "breakdown": [
                {"exchange_index": entry.exchange_index, "balance": str(entry.balance_dollars)}
                for entry in reading.breakdown
            ],
        }
