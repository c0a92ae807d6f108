"""The fetch operator's request budget, against the simulator: all its tries together stay within it."""

from __future__ import annotations

import pytest

from kalshi_provider.exceptions import KalshiServerError
from kalshi_provider.operators.kalshi import KalshiTotalRestingOrderValueOperator


@pytest.fixture(autouse=True)
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
    kalshi_connection, simulator, max_requests, retries, connection_retries, attempts_per_try
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
