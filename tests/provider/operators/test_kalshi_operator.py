"""KalshiTotalRestingOrderValueOperator against the simulator: its XCom and its request budget."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from kalshi_provider.exceptions import KalshiPermissionError, KalshiServerError
from kalshi_provider.operators.kalshi import KalshiTotalRestingOrderValueOperator
from kalshi_provider.readings import AccountReading, ShardAmount
from kalshi_provider.version_compat import AirflowFailException


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


def test_a_permanent_kalshi_error_fails_the_task_at_once_with_its_message(
    kalshi_connection, make_kalshi_account
):
    account = make_kalshi_account(fcm_member=False)
    conn_id = kalshi_connection("not_an_fcm", login=account.key_id, password=account.private_pem.decode())
    operator = KalshiTotalRestingOrderValueOperator(task_id="fetch", kalshi_conn_id=conn_id)
    with pytest.raises(AirflowFailException, match="FCM") as failed:
        operator.execute({})
    assert isinstance(failed.value.__cause__, KalshiPermissionError)


@pytest.fixture
def no_backoff(monkeypatch):
    """Counting attempts needs no waiting between them (the back-off has tests of its own)."""
    monkeypatch.setattr("kalshi_provider.hooks.kalshi._exponential_jitter", lambda state: 0.0)


def _operator(conn_id: str, **kwargs) -> KalshiTotalRestingOrderValueOperator:
    return KalshiTotalRestingOrderValueOperator(task_id="fetch", kalshi_conn_id=conn_id, **kwargs)


@pytest.mark.parametrize(
    ("max_requests", "retries", "connection_retries", "attempts_per_try"),
    [
        (12, 3, 4, 3),  # the DAG's budget caps a connection that asks for 5 attempts
        (12, 3, 1, 2),  # a connection may ask for fewer
        (6, 2, 4, 2),
        (2, 3, 4, 1),  # never fewer than one attempt per try
        (None, 3, 4, 5),  # without a budget, the connection decides
    ],
)
def test_each_try_sends_at_most_its_share_of_the_budget(
    no_backoff, kalshi_connection, simulator, max_requests, retries, connection_retries, attempts_per_try
):
    simulator.push_faults([{"status": 503, "times": 100}])
    conn_id = kalshi_connection(extra={"max_retries": connection_retries, "timeout": 2})
    operator = _operator(conn_id, max_requests=max_requests, retries=retries)
    with pytest.raises(KalshiServerError):
        operator.execute({})  # one try, as the task runner would run it
    assert len(simulator.requests) == attempts_per_try
    if max_requests is not None and max_requests >= retries + 1:
        assert attempts_per_try * (retries + 1) <= max_requests


def test_a_budget_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        _operator("kalshi_default", max_requests=0)
