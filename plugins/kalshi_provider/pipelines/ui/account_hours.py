"""The chart window per account and hour: the table under the chart and the CSV download.

One row per account and hour (or bucket, on a long window): the total resting order value, the
primary balance, each exchange shard's figures as Kalshi gives them, and the DAG run that wrote
the hour. The table and the CSV take their columns from :data:`ACCOUNT_FIGURES`, so a figure added
there (one line) appears in both; a figure no row of the window carries is left out of both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from kalshi_provider.pipelines.warehouse import ChartWindow


@dataclass
class AccountHour:
    """What the window holds for one account at one hour (or bucket)."""

    account: str
    hour: datetime  # the last hour with a row (a bucket's last)
    hours: int  # hours of the window this row stands for: 1, or a bucket's hours with a row
    total: dict[str, Any] | None = None
    balance: dict[str, Any] | None = None
    shards: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Every subaccount's balance summed (``…_subacct``), at the balance row's hour; None if unrecorded.
    subaccounts_sum: Decimal | None = None

    @property
    def not_permitted(self) -> bool:
        """Kalshi refused the total for this key (no FCM access)."""
        return self.balance is not None and self.balance.get("total_refusal_reason") is not None

    @property
    def run(self) -> tuple[str, str] | None:
        """(dag_id, run id) of the run that wrote the hour, when the rows recorded both."""
        for row in (self.total, self.balance):
            if row is not None and row.get("dag_id") and row.get("dag_run_id"):
                return row["dag_id"], row["dag_run_id"]
        return None


def _total(row: AccountHour) -> Decimal | None:
    return None if row.total is None else Decimal(row.total["total_resting_order_value_cents"]) / 100


def _balance_field(name: str) -> Callable[[AccountHour], Decimal | None]:
    """A figure of the balance row; absent when the row does not carry the field."""
    return lambda row: None if row.balance is None else row.balance.get(name)


@dataclass(frozen=True)
class Figure:
    heading: str  # the table's
    csv_name: str
    value: Callable[[AccountHour], Decimal | None]


#: The account-level figures of the table and the CSV, in their order.
ACCOUNT_FIGURES = (
    Figure("Resting order value", "total_resting_order_value_dollars", _total),
    Figure("Balance (primary)", "balance_dollars", _balance_field("balance_dollars")),
    Figure("Subaccounts (sum)", "subaccounts_balance_dollars", lambda row: row.subaccounts_sum),
)

#: Kalshi's own per-shard figures in the CSV: (column suffix, the balance_minus_resting row's field).
SHARD_FIGURES = (
    ("balance_dollars", "shard_balance_dollars"),
    ("resting_order_value_dollars", "shard_resting_order_value_dollars"),
)


def account_hours(window: ChartWindow) -> list[AccountHour]:
    """The window's rows merged per account and hour (per bucket on a long window), newest first,
    then by account."""
    found: dict[tuple[str, datetime], AccountHour] = {}

    def entry(row: dict[str, Any]) -> AccountHour:
        key = (row["account"], row.get("bucket_start", row["snapshot_hour"]))
        if key not in found:
            found[key] = AccountHour(row["account"], row["snapshot_hour"], row.get("hours", 1))
        at = found[key]
        at.hour, at.hours = max(at.hour, row["snapshot_hour"]), max(at.hours, row.get("hours", 1))
        return at

    for row in window.totals:
        entry(row).total = row
    for row in window.balances:
        at = entry(row)
        at.balance = row
        at.subaccounts_sum = window.subaccount_sums.get((row["account"], row["snapshot_hour"]))
    for row in window.balance_minus_resting:
        entry(row).shards[row["exchange_index"]] = row
    return sorted(found.values(), key=lambda at: (-at.hour.timestamp(), at.account))


def shown_figures(rows: list[AccountHour]) -> list[Figure]:
    """The figures at least one row carries."""
    return [figure for figure in ACCOUNT_FIGURES if any(figure.value(row) is not None for row in rows)]


def run_path(dag_id: str, run_id: str) -> str:
    """The Airflow UI's page of a DAG run (``/dags/<dag_id>/runs/<run_id>`` on 3.0-3.3), relative
    to the chart's own address (``<base>/kalshi/chart``), so it holds under a base URL too."""
    return f"../dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
