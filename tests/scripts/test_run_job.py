"""``scripts/run_job.py`` shows every figure of the run's hour, read back from a real warehouse."""

from __future__ import annotations

import importlib.util
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine

from kalshi_provider.pipelines.warehouse import store_reading
from kalshi_provider.readings import (
    AccountReading,
    Balance,
    BalanceReading,
    RestingOrderValue,
    ShardAmount,
    SubaccountBalance,
    SubaccountBalances,
    SubaccountsReading,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_job.py"
HOUR = datetime(2026, 12, 5, 0, tzinfo=UTC)


def _script():
    spec = importlib.util.spec_from_file_location("run_job", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shards(amounts: dict[int, str]) -> tuple[ShardAmount, ...]:
    return tuple(ShardAmount(index, Decimal(amount)) for index, amount in amounts.items())


def _store(engine, account: str, hour: datetime, total: RestingOrderValue | None, refusal: str | None = None):
    observed = hour + timedelta(minutes=5)
    balance = Balance(
        500_000, 250_000, Decimal("5000.004"), 1_772_366_400, _shards({0: "3000.004", 1: "2000"})
    )
    rows = (
        SubaccountBalance(0, 0, "3000.004", 1),
        SubaccountBalance(0, 1, "2000", 1),
        SubaccountBalance(4, 1, "7.5", 1),
    )
    listed = SubaccountsReading(observed, SubaccountBalances(rows)) if refusal is None else None
    reading = AccountReading(
        account, observed, total, BalanceReading(observed, balance), not_permitted=refusal, subaccounts=listed
    )
    store_reading(engine, reading, snapshot_hour=hour, dag_run_id="run")


def test_the_latest_hours_total_balance_and_shard_figures_are_printed(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    _store(
        engine, "fcm", HOUR - timedelta(hours=1), RestingOrderValue(1, _shards({0: "0.01"}))
    )  # an older hour
    _store(engine, "fcm", HOUR, RestingOrderValue(123_456, _shards({0: "1000.56", 1: "234"})))
    _store(engine, "no_fcm", HOUR, None, refusal="Kalshi API error 403: FCM members only")
    out = io.StringIO()

    _script().print_latest_hour(engine, out)

    text = out.getvalue()
    assert text.startswith(f"Hour {HOUR.isoformat()} in kalshi_total_resting_order_value:\n")
    fcm, no_fcm = text.split("  account fcm\n")[1].split("  account no_fcm\n")
    assert "total resting order value: 123456 cents" in fcm
    assert "per shard: 0: 1000.560000, 1: 234.000000" in fcm
    assert "balance: 5000.004000 dollars (500000 cents), portfolio value 250000 cents" in fcm
    assert "per shard: 0: 3000.004000, 1: 2000.000000" in fcm
    assert "(computed here, not a Kalshi figure): 0: 1999.444000, 1: 1766.000000" in fcm
    assert "subaccounts: 2, balances summing to 5007.504000 dollars" in fcm
    assert "subaccount 0 (5000.004000 dollars) per shard: 0: 3000.004000, 1: 2000.000000" in fcm
    assert "subaccount 4 (7.500000 dollars) per shard: 1: 7.500000" in fcm
    assert "subaccounts: none stored for this hour" in no_fcm
    assert "total resting order value: none stored for this hour" in no_fcm
    assert "Kalshi refused the total: Kalshi API error 403: FCM members only" in no_fcm
    assert "(computed here, not a Kalshi figure): 0: unknown, 1: unknown" in no_fcm
    assert "0.010000" not in text  # only the latest hour


def test_an_empty_warehouse_says_so(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    out = io.StringIO()
    _script().print_latest_hour(engine, out)
    assert out.getvalue() == "No rows in kalshi_total_resting_order_value yet.\n"
