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
    Read ``GET /portfolio/summary/total_resting_order_value`` for one account.

    Returns :meth:`kalshi_provider.readings.AccountReading.to_xcom`: a JSON-safe record with the
    account (the connection id), the total in cents, the per-exchange breakdown as exact decimal
    strings and ``observed_at``, when Kalshi's answer arrived (UTC). It holds no secret. The value
    is a live reading of *now*, not a figure for the run's logical date.

    Errors no retry can fix (a misconfigured connection, 401, 403, 404) fail the task at once,
    without using its retries; others (timeouts, 429, 5xx) use them.

    :param kalshi_conn_id: Kalshi connection to use; it also names the account in the record.
    :param max_requests: Most signed requests this task sends, all its tries together: each try
        gets ``max_requests // (retries + 1)`` attempts (at least one), or fewer when the
        connection's ``max_retries`` says so. None: the connection alone decides.
    """

    template_fields: Sequence[str] = ("kalshi_conn_id",)
    ui_color = "#00d991"

    def __init__(
        self, *, kalshi_conn_id: str = "kalshi_default", max_requests: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if max_requests is not None and max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}")
        self.kalshi_conn_id = kalshi_conn_id
        self.max_requests = max_requests

    @property
    def attempts_per_try(self) -> int | None:
        """The hook's attempt limit for each try, from ``max_requests`` and the task's retries."""
        if self.max_requests is None:
            return None
        return max(1, self.max_requests // ((self.retries or 0) + 1))

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported here, not at module level: DAG files import this module at every parse, and
        # the hook pulls in requests, tenacity and cryptography.
        from kalshi_provider.exceptions import failing_fast
        from kalshi_provider.hooks.kalshi import KalshiHook
        from kalshi_provider.readings import AccountReading

        hook = KalshiHook(kalshi_conn_id=self.kalshi_conn_id, max_attempts=self.attempts_per_try)
        with failing_fast():  # a refused key or a bad connection: no task retry can fix it
            value = hook.get_resting_order_value()
        reading = AccountReading(self.kalshi_conn_id, datetime.now(timezone.utc), value)
        self.log.info(
            "Kalshi account %s: total resting order value %d cents (%d exchange(s) in the breakdown)",
            self.kalshi_conn_id,
            value.total_cents,
            len(value.breakdown),
        )
        if value.breakdown_problem:
            self.log.warning(
                "Kalshi account %s: the breakdown was left out, the total is kept: %s",
                self.kalshi_conn_id,
                value.breakdown_problem,
            )
        return reading.to_xcom()
