"""The operators against the simulator: their XCom, what they do with Kalshi's refusals, their budget."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from kalshi_provider.exceptions import (
    KalshiConfigError,
    KalshiForeignRefusalError,
    KalshiPermissionError,
    KalshiServerError,
)
from kalshi_provider.operators.kalshi import (
    KalshiAccountReadingOperator,
    KalshiTotalRestingOrderValueOperator,
)
from kalshi_provider.readings import AccountReading, ShardAmount
from kalshi_provider.version_compat import AirflowFailException
from tests.fixtures import encrypted_keys
from tests.fixtures.simulator import signed_calls
from tests.provider.hostile import HostileServer, answer


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
    assert len(signed_calls(simulator)) == attempts_per_try
    if max_requests is not None and max_requests >= retries + 1:
        assert attempts_per_try * (retries + 1) <= max_requests


def test_a_budget_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        _operator("kalshi_default", max_requests=0)


# -- KalshiAccountReadingOperator: the total and the balance -------------------------------------------


class _TaskInstance:
    try_number = 3


def _read(conn_id: str, **kwargs) -> AccountReading:
    operator = KalshiAccountReadingOperator(task_id="fetch", kalshi_conn_id=conn_id, **kwargs)
    xcom = operator.execute({"ti": _TaskInstance()})
    return AccountReading.from_xcom(json.loads(json.dumps(xcom)))


def test_reads_the_total_then_the_balance_each_with_its_moment(kalshi_connection, simulator, kalshi_account):
    simulator.set_balance(kalshi_account.key_id, 777, portfolio_value=5, balance_dollars="7.771")
    before = datetime.now(timezone.utc)
    reading = _read(kalshi_connection("fcm_account_a"))
    assert [request.path.rpartition("/")[2] for request in signed_calls(simulator)] == [
        "total_resting_order_value",
        "balance",
        "balances",  # /portfolio/subaccounts/balances
    ]
    assert reading.resting_order_value.total_cents == 123456 and reading.not_permitted is None
    balance = reading.balance.value
    assert (balance.balance_cents, balance.portfolio_value_cents, balance.balance_dollars) == (
        777,
        5,
        Decimal("7.771"),
    )
    assert before <= reading.observed_at <= reading.balance.observed_at <= reading.subaccounts.observed_at
    assert reading.subaccounts.observed_at <= datetime.now(timezone.utc)
    # The simulator lists the primary's rows as its balance_breakdown: the two answers agree.
    primary = sum((entry.dollars for entry in balance.breakdown), Decimal(0))
    assert reading.subaccounts.value.total_by_subaccount() == {0: primary}
    assert reading.try_number == 3  # the fetch try that took it, from the task's context


TOTAL_PATH = "/portfolio/summary/total_resting_order_value"
BALANCE_PATH = "/portfolio/balance"
HOLD_SECONDS = 2


def _stamp_after_hold(stamp: datetime, request) -> float:
    """Seconds between the end of the server's hold of ``request``'s answer and ``stamp``."""
    return stamp.timestamp() - (request.received_at + HOLD_SECONDS)


@pytest.mark.slow
def test_each_answer_is_stamped_when_it_arrived_not_before_it_was_asked(kalshi_connection, simulator):
    """The simulator holds each answer back 2 s after the request arrives: the total's stamp and the
    balance's must both come after their hold ended, or the hour rule would judge an answer by a
    moment before it existed."""
    simulator.push_faults(
        [{"delay": HOLD_SECONDS, "path": TOTAL_PATH}, {"delay": HOLD_SECONDS, "path": BALANCE_PATH}]
    )
    reading = _read(kalshi_connection())
    total, balance, _ = signed_calls(simulator)
    assert total.path.endswith(TOTAL_PATH) and balance.path.endswith(BALANCE_PATH)
    assert _stamp_after_hold(reading.observed_at, total) >= 0
    assert _stamp_after_hold(reading.balance.observed_at, balance) >= 0


@pytest.mark.slow
def test_a_refusal_is_stamped_when_it_arrived(kalshi_connection, make_kalshi_account, simulator):
    account = make_kalshi_account(fcm_member=False)
    simulator.push_faults([{"delay": HOLD_SECONDS, "path": TOTAL_PATH}])
    reading = _read(kalshi_connection(login=account.key_id, password=account.private_pem.decode()))
    total, balance, _ = signed_calls(simulator)
    assert reading.not_permitted and _stamp_after_hold(reading.observed_at, total) >= 0
    assert reading.observed_at.timestamp() <= balance.received_at  # the refusal's, not a later moment


@pytest.mark.slow
def test_the_total_only_operator_stamps_the_total_when_it_arrived(kalshi_connection, simulator):
    simulator.push_faults([{"delay": HOLD_SECONDS, "path": TOTAL_PATH}])
    xcom = KalshiTotalRestingOrderValueOperator(task_id="fetch", kalshi_conn_id=kalshi_connection()).execute(
        {}
    )
    [total] = signed_calls(simulator)
    assert _stamp_after_hold(AccountReading.from_xcom(xcom).observed_at, total) >= 0


def test_a_key_that_may_not_read_the_total_still_records_its_balance(
    kalshi_connection, make_kalshi_account, simulator
):
    account = make_kalshi_account(fcm_member=False, balance=4200)
    conn_id = kalshi_connection("not_an_fcm", login=account.key_id, password=account.private_pem.decode())
    reading = _read(conn_id)  # no failure: a non-FCM key is a state, not an error
    assert reading.resting_order_value is None
    assert "only for FCM members" in reading.not_permitted
    assert reading.balance.value.balance_cents == 4200
    assert [request.status for request in signed_calls(simulator)] == [403, 200, 200]


def test_a_balance_answer_kalshi_would_not_send_is_left_out_and_never_costs_the_total(
    kalshi_connection, simulator, capsys
):
    simulator.push_faults([{"status": 200, "json": {"balance": 1}, "path": "/portfolio/balance"}])
    reading = _read(kalshi_connection())
    assert reading.resting_order_value.total_cents == 123456
    assert reading.balance.value is None
    assert "has no 'balance_dollars', 'portfolio_value', 'updated_ts' fields" in reading.balance.problem
    assert "the balance was left out, the rest is kept" in capsys.readouterr().out  # the task log


def test_a_refused_balance_fails_at_once_even_when_the_total_was_read(kalshi_connection, simulator):
    """Every key may read its balance: a 403 there is no FCM matter, and no retry fixes it."""
    simulator.push_faults([{"status": 403, "path": "/portfolio/balance"}])
    with pytest.raises(AirflowFailException, match="403") as failed:
        _read(kalshi_connection())
    assert isinstance(failed.value.__cause__, KalshiPermissionError)


@pytest.mark.parametrize("bounded", [True, False], ids=["refused-by-the-bound", "real-library-panic"])
def test_a_key_that_makes_the_crypto_library_panic_fails_the_task_at_once(
    kalshi_connection, simulator, monkeypatch, bounded
):
    """A PBKDF2 count of 2**32 makes cryptography raise a BaseException, which Airflow retried as
    any failure: it is a KalshiConfigError, failed at once, without a request."""
    if not bounded:  # the real panic, contained all the same
        monkeypatch.setattr("kalshi_provider.signing.check_key_derivation", lambda pem: None)
    conn_id = encrypted_keys.panicking_key_connection(kalshi_connection)
    with pytest.raises(
        AirflowFailException, match=re.escape(encrypted_keys.PANIC_MESSAGES[bounded])
    ) as failed:
        _read(conn_id)
    assert isinstance(failed.value.__cause__, KalshiConfigError)
    assert simulator.requests == []


# -- a 403 is "no FCM access" only when Kalshi's API says so ------------------------------------------

_BALANCE_BODY = b'{"balance": 4200, "balance_dollars": "42.00", "portfolio_value": 0, "updated_ts": 1}'


def _refusing_server(body: bytes, content_type: str) -> HostileServer:
    """Answers the total's path with a 403 carrying ``body``, and the balance as Kalshi would."""

    def script(exchange) -> None:
        request_line = exchange.head.split(b"\r\n", 1)[0]
        if b"/portfolio/summary/total_resting_order_value" in request_line:
            exchange.send(answer("403 Forbidden", body, {"Content-Type": content_type}))
        else:
            exchange.send(answer("200 OK", _BALANCE_BODY))

    return HostileServer(script)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b"<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1>"
            b"Blocked by the egress policy</body></html>",
            "text/html",
        ),
        (
            b'{"error": {"code": "forbidden", "message": "your IP address is not allowed"}}',
            "application/json",
        ),
    ],
    ids=["proxy-html-page", "json-of-another-code"],
)
def test_a_403_that_is_not_kalshis_refusal_fails_the_task_at_once(kalshi_connection, body, content_type):
    """A proxy's or firewall's 403 says nothing about FCM access: recording it as "not permitted"
    would let the task succeed and the totals stop without an alarm."""
    with _refusing_server(body, content_type) as server:
        conn_id = kalshi_connection(host=server.base_url, extra={"max_retries": 2, "timeout": 5})
        with pytest.raises(AirflowFailException, match="did not come from Kalshi's API") as failed:
            _read(conn_id)
        heads = server.requests
    assert isinstance(failed.value.__cause__, KalshiForeignRefusalError)
    assert "proxy or firewall" in str(failed.value)
    assert len(heads) == 1  # no hook retry, and no balance read for a run that fails anyway


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": {"code": "permission_denied", "message": "permission denied"}}',
        b'{"code": "permission_denied", "message": "permission denied", "details": ""}',
    ],
    ids=["wrapped-as-seen-live", "flat-as-documented"],
)
def test_kalshis_own_refusal_from_the_same_server_is_recorded_as_not_permitted(kalshi_connection, body):
    with _refusing_server(body, "application/json") as server:
        reading = _read(kalshi_connection(host=server.base_url))
        heads = server.requests
    assert reading.resting_order_value is None and "only for FCM members" in reading.not_permitted
    assert reading.balance.value.balance_cents == 4200
    assert len(heads) == 3


@pytest.mark.parametrize(
    ("max_requests", "retries", "attempts_per_call"),
    [(36, 3, 3), (24, 3, 2), (12, 3, 1), (8, 1, 1), (1, 3, 1)],
)
def test_all_three_calls_share_the_budget(
    no_backoff, kalshi_connection, simulator, max_requests, retries, attempts_per_call
):
    simulator.push_faults([{"status": 503, "path": "/portfolio/balance", "times": 100}])
    conn_id = kalshi_connection(extra={"max_retries": 4, "timeout": 2})
    operator = KalshiAccountReadingOperator(
        task_id="fetch", kalshi_conn_id=conn_id, max_requests=max_requests, retries=retries
    )
    assert operator.attempts_per_try == attempts_per_call
    with pytest.raises(KalshiServerError):
        operator.execute({})
    sent = signed_calls(simulator)
    assert [request.status for request in sent] == [200] + [503] * attempts_per_call
    if max_requests >= 3 * (retries + 1):
        assert len(sent) * (retries + 1) <= max_requests


class _Try:
    def __init__(self, try_number: int, max_tries: int) -> None:
        self.try_number, self.max_tries = try_number, max_tries


def test_a_balance_that_keeps_failing_is_retried_then_left_out_on_the_last_try(
    no_backoff, kalshi_connection, simulator
):
    """Before the last try a failing balance fails the try, so Airflow reads both again; on the last
    try the total is kept and the balance left out, with the reason: it never costs the total."""
    simulator.push_faults([{"status": 503, "path": "/portfolio/balance", "times": 100}])
    operator = KalshiAccountReadingOperator(task_id="fetch", kalshi_conn_id=kalshi_connection(), retries=3)
    with pytest.raises(KalshiServerError):
        operator.execute({"ti": _Try(try_number=3, max_tries=3)})
    xcom = operator.execute({"ti": _Try(try_number=4, max_tries=3)})
    reading = AccountReading.from_xcom(xcom)
    assert reading.resting_order_value.total_cents == 123456
    assert reading.balance.value is None
    assert reading.balance.problem.startswith("the balance could not be read on the task's last try: ")
    assert "503" in reading.balance.problem


@pytest.mark.parametrize("max_retries", [0, 4])
def test_a_paused_exchange_gives_a_reading_of_the_pause_after_one_signed_request(
    no_backoff, kalshi_connection, simulator, max_retries
):
    """Kalshi in maintenance: the total's 503 leads to /exchange/status, which says inactive; the
    balance is never asked for and the task succeeds with a record of the pause for the load."""
    simulator.exchange.start_maintenance("2026-12-10T10:00:00Z")
    conn_id = kalshi_connection(extra={"max_retries": max_retries})
    operator = KalshiAccountReadingOperator(task_id="fetch", kalshi_conn_id=conn_id, retries=3)
    payload = operator.execute({})
    reading = AccountReading.from_xcom(json.loads(json.dumps(payload)))
    assert reading.resting_order_value is None and reading.balance is None
    assert reading.exchange_paused.estimated_resume_time == datetime(2026, 12, 10, 10, tzinfo=timezone.utc)
    assert "exchange_active false" in reading.exchange_paused.reason
    assert reading.observed_at == reading.exchange_paused.observed_at
    assert len([request for request in simulator.requests if request.signature]) == 1


def test_a_pause_on_the_balance_keeps_the_total_and_sends_nothing_more(
    no_backoff, kalshi_connection, simulator, monkeypatch
):
    """Maintenance that starts between the two calls: the total stands, the balance is left out
    with the pause as its reason, and its call is not retried."""
    from kalshi_provider.hooks.kalshi import KalshiHook

    read_total = KalshiHook.get_resting_order_value

    def total_then_maintenance(hook):
        value = read_total(hook)
        simulator.exchange.start_maintenance()
        return value

    monkeypatch.setattr(KalshiHook, "get_resting_order_value", total_then_maintenance)
    conn_id = kalshi_connection(extra={"max_retries": 4})
    reading = AccountReading.from_xcom(
        KalshiAccountReadingOperator(task_id="f", kalshi_conn_id=conn_id).execute({})
    )
    assert reading.resting_order_value.total_cents == 123456
    assert reading.exchange_paused is None
    assert reading.balance.value is None and "exchange is paused" in reading.balance.problem
    assert [request.status for request in signed_calls(simulator)] == [200, 503]


# -- the third call: every subaccount's balance ----------------------------------------------------

SUBACCOUNTS_PATH = "/portfolio/subaccounts/balances"


def test_a_key_restricted_to_one_subaccount_records_the_refusal_and_keeps_its_balance(
    kalshi_connection, make_kalshi_account, simulator, capsys
):
    """Kalshi refuses a restricted key the list of subaccounts (and, in the simulator, the total):
    both refusals are recorded, the balance of its own subaccount is read, and the task succeeds."""
    account = make_kalshi_account(subaccounts={1: 250000}, restricted_subaccount=1)
    reading = _read(
        kalshi_connection("restricted", login=account.key_id, password=account.private_pem.decode())
    )
    assert [request.status for request in simulator.requests] == [403, 200, 403]
    assert reading.balance.value.balance_dollars == Decimal("2500")
    assert reading.subaccounts.value is None and reading.subaccounts.problem is None
    assert "restricted to a single sub-account" in reading.subaccounts.not_permitted
    assert reading.subaccounts.observed_at.timestamp() >= simulator.requests[2].received_at
    assert "does not let this key list subaccounts" in capsys.readouterr().out


def test_a_subaccount_answer_kalshi_would_not_send_is_left_out_and_costs_nothing_else(
    kalshi_connection, simulator, capsys
):
    bad = {
        "subaccount_balances": [
            {"subaccount_number": 64, "exchange_index": 0, "balance": "1", "updated_ts": 1}
        ]
    }
    simulator.push_faults([{"status": 200, "json": bad, "path": SUBACCOUNTS_PATH}])
    reading = _read(kalshi_connection())
    assert reading.resting_order_value.total_cents == 123456 and reading.balance.value is not None
    assert reading.subaccounts.value is None and "from 0 to 63" in reading.subaccounts.problem
    assert "the subaccounts were left out, the rest is kept" in capsys.readouterr().out


def test_subaccounts_that_keep_failing_are_retried_then_left_out_on_the_last_try(
    no_backoff, kalshi_connection, simulator
):
    simulator.push_faults([{"status": 503, "path": SUBACCOUNTS_PATH, "times": 100}])
    operator = KalshiAccountReadingOperator(task_id="fetch", kalshi_conn_id=kalshi_connection(), retries=3)
    with pytest.raises(KalshiServerError):
        operator.execute({"ti": _Try(try_number=3, max_tries=3)})
    reading = AccountReading.from_xcom(operator.execute({"ti": _Try(try_number=4, max_tries=3)}))
    assert reading.resting_order_value.total_cents == 123456 and reading.balance.value is not None
    assert reading.subaccounts.problem.startswith(
        "the subaccounts could not be read on the task's last try: "
    )
