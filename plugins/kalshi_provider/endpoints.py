"""The Kalshi endpoints this provider reads: paths below the base URL (``connection.API_PATH``).

One name each, for everything that names them: the hook calls them, a reading's answers and the
warehouse's history rows are named after them, lineage builds their asset URIs from them.
"""

from __future__ import annotations

#: ``GET /portfolio/summary/total_resting_order_value``: the total resting order value (FCM members).
TOTAL_ENDPOINT = "/portfolio/summary/total_resting_order_value"
#: ``GET /portfolio/balance``: the balance, which every key may read.
BALANCE_ENDPOINT = "/portfolio/balance"
#: ``GET /exchange/status``: whether the exchange is up (no auth); read after a retryable failure.
STATUS_ENDPOINT = "/exchange/status"
#: ``GET /exchange/schedule``: trading hours and maintenance windows (no auth).
SCHEDULE_ENDPOINT = "/exchange/schedule"
#: ``GET /portfolio/subaccounts/balances``: every subaccount's balance per shard, the primary's
#: included (``/portfolio/balance`` reads one subaccount, the primary unless asked).
SUBACCOUNT_BALANCES_ENDPOINT = "/portfolio/subaccounts/balances"
