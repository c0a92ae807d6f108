"""KalshiTotalRestingOrderValueOperator over real HTTP against the simulator."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from kalshi_provider.exceptions import KalshiPermissionError
from kalshi_provider.operators.kalshi import KalshiTotalRestingOrderValueOperator
from kalshi_provider.readings import AccountReading, ShardAmount


def test_execute_returns_the_reading_as_its_xcom(kalshi_connection, simulator, kalshi_account):
    simulator.set_value(
        kalshi_account.key_id,
        5000,
        [{"exchange_index": 0, "balance": "30.0000"}, {"exchange_index": 1, "balance": "20.0000"}],
    )
    conn_id = kalshi_connection("fcm_account_a")
    before = datetime.now(timezone.utc)
    xcom = KalshiTotalRestingOrderValueOperator(task_id="fetch", kalshi_conn_id=conn_id).execute({})
    reading = AccountReading.from_xcom(json.loads(json.dumps(xcom)))
    assert reading.account == "fcm_account_a"  # the connection id names the account
    assert reading.resting_order_value.total_cents == 5000
    assert reading.resting_order_value.breakdown == (
        ShardAmount(0, Decimal("30")),
        ShardAmount(1, Decimal("20")),
    )
    assert before <= reading.observed_at <= datetime.now(timezone.utc)
    assert kalshi_account.private_pem.decode().splitlines()[1] not in json.dumps(xcom)


def test_kalshi_errors_reach_the_task(kalshi_connection, make_kalshi_account):
    account = make_kalshi_account(fcm_member=False)
    conn_id = kalshi_connection("not_an_fcm", login=account.key_id, password=account.private_pem.decode())
    operator = KalshiTotalRestingOrderValueOperator(task_id="fetch", kalshi_conn_id=conn_id)
    with pytest.raises(KalshiPermissionError, match="FCM"):
        operator.execute({})
