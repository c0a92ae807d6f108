"""Paths, bodies and HTTP behaviour of the simulator outside authentication."""

from __future__ import annotations

import http.client
import json
import time
from decimal import Decimal

import pytest
import requests

from kalshi_provider.signing import KalshiAuth
from kalshi_simulator import KalshiSimulator, generate_private_key

TOTAL = "/portfolio/summary/total_resting_order_value"
BALANCE = "/portfolio/balance"


def get(simulator, account, path, **kwargs):
    auth = KalshiAuth(account.key_id, account.private_key)
    return requests.get(simulator.base_url + path, auth=auth, timeout=5, **kwargs)


def test_base_url_shape(simulator):
    assert simulator.base_url == f"http://127.0.0.1:{simulator.port}/trade-api/v2"


@pytest.mark.parametrize("path", ["/exchange/status", "/exchange/schedule"])
def test_the_exchange_endpoints_need_no_auth(simulator, path):
    response = requests.get(simulator.base_url + path, timeout=5)
    assert response.status_code == 200
    assert simulator.requests[-1].key_id is None


def test_not_fcm_member_gets_403(simulator, make_kalshi_account):
    account = make_kalshi_account(fcm_member=False)
    response = get(simulator, account, TOTAL)
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "permission_denied", "message": "permission denied"}}
    # The balance endpoint works for every key: that is what a connection test should call.
    assert get(simulator, account, "/portfolio/balance").status_code == 200


def test_custom_value_and_breakdown(simulator, make_kalshi_account):
    breakdown = [{"exchange_index": 0, "balance": "10.0000"}, {"exchange_index": 1, "balance": "2.3400"}]
    account = make_kalshi_account(
        total_resting_order_value=1234, breakdown=breakdown, balance=5, portfolio_value=7
    )
    assert get(simulator, account, TOTAL).json() == {
        "total_resting_order_value": 1234,
        "resting_order_value_breakdown": breakdown,
    }
    balance = get(simulator, account, "/portfolio/balance").json()
    assert (balance["balance"], balance["portfolio_value"]) == (5, 7)


def test_set_value_and_empty_breakdown(simulator, kalshi_account):
    simulator.set_value(kalshi_account.key_id, 0, breakdown=[])
    assert get(simulator, kalshi_account, TOTAL).json() == {
        "total_resting_order_value": 0,
        "resting_order_value_breakdown": [],
    }
    simulator.set_value(kalshi_account.key_id, 5)  # no breakdown: spread over shards 0-3, to the cent
    assert get(simulator, kalshi_account, TOTAL).json()["resting_order_value_breakdown"] == [
        {"exchange_index": 0, "balance": "0.0300"},
        {"exchange_index": 1, "balance": "0.0100"},
        {"exchange_index": 2, "balance": "0.0100"},
        {"exchange_index": 3, "balance": "0.0000"},
    ]


REQUIRED_BALANCE_FIELDS = {"balance", "balance_dollars", "portfolio_value", "updated_ts"}


def test_the_balance_answers_every_field_the_spec_requires_and_parses(simulator, kalshi_account):
    from kalshi_provider.responses import parse_balance

    body = get(simulator, kalshi_account, BALANCE).json()
    assert REQUIRED_BALANCE_FIELDS <= set(body)
    assert (body["balance"], body["balance_dollars"], body["portfolio_value"]) == (
        500000,
        "5000.0000",
        250000,
    )
    assert abs(body["updated_ts"] - time.time()) < 5
    shards = body["balance_breakdown"]
    assert [entry["exchange_index"] for entry in shards] == [0, 1, 2, 3]
    assert sum(Decimal(entry["balance"]) for entry in shards) == Decimal(body["balance_dollars"])
    balance = parse_balance(body)  # the provider's parser takes it whole, breakdown included
    assert balance.breakdown_problem is None and len(balance.breakdown) == 4


def test_the_balance_is_scriptable(simulator, make_kalshi_account):
    account = make_kalshi_account(
        balance=-250, portfolio_value=9, balance_breakdown=[], updated_ts=1_700_000_000
    )
    assert get(simulator, account, BALANCE).json() == {
        "balance": -250,
        "balance_dollars": "-2.5000",
        "portfolio_value": 9,
        "updated_ts": 1_700_000_000,
        "balance_breakdown": [],
    }
    simulator.set_balance(account.key_id, 100, balance_dollars="1.004321")
    body = get(simulator, account, BALANCE).json()
    assert (body["balance"], body["balance_dollars"], body["portfolio_value"]) == (100, "1.004321", 9)
    assert [entry["balance"] for entry in body["balance_breakdown"]] == [
        "0.4000",
        "0.3000",
        "0.2000",
        "0.1000",
    ]
    odd = [{"exchange_index": "x"}]  # served as given, so a test can send what Kalshi never would
    simulator.set_balance(account.key_id, breakdown=odd, portfolio_value=0)
    body = get(simulator, account, BALANCE).json()
    assert (body["balance_breakdown"], body["portfolio_value"], body["balance"]) == (odd, 0, 100)


def test_a_bad_change_changes_nothing(simulator, kalshi_account):
    before = get(simulator, kalshi_account, BALANCE).json()
    with pytest.raises(ValueError, match="portfolio_value must be an integer"):
        simulator.update_account(kalshi_account.key_id, balance=1, portfolio_value=True)
    with pytest.raises(ValueError, match="updated_ts"):
        simulator.update_account(kalshi_account.key_id, total_resting_order_value=1, updated_ts=-1)
    after = get(simulator, kalshi_account, BALANCE).json()
    assert (after["balance"], after["balance_breakdown"]) == (before["balance"], before["balance_breakdown"])
    assert get(simulator, kalshi_account, TOTAL).json()["total_resting_order_value"] == 123456


def test_set_value_for_unknown_key(simulator):
    with pytest.raises(KeyError, match="no-such"):
        simulator.set_value("no-such", 1)


@pytest.mark.parametrize("bad", [1.5, "100", True, None])
def test_value_must_be_integer_cents(simulator, bad):
    with pytest.raises(ValueError, match="cents"):
        simulator.add_account("k", generate_private_key("ed25519"), total_resting_order_value=bad)


def test_add_account_accepts_pem_and_private_key(simulator, kalshi_account):
    from kalshi_simulator import public_pem

    simulator.add_account(kalshi_account.key_id, public_pem(kalshi_account.private_key).decode())
    assert get(simulator, kalshi_account, TOTAL).status_code == 200
    simulator.add_account(kalshi_account.key_id, kalshi_account.private_key)
    assert get(simulator, kalshi_account, TOTAL).status_code == 200


@pytest.mark.parametrize(
    "path", ["/portfolio/nothing", "/portfolio/balance/", "/", "/trade-api/v1/exchange/status"]
)
def test_unknown_path_is_wrapped_404(simulator, kalshi_account, path):
    auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
    target = (
        simulator.base_url + path
        if not path.startswith("/trade-api") and path != "/"
        else simulator.root_url + path
    )
    response = requests.get(target, auth=auth, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405(simulator, kalshi_account, method):
    auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
    response = requests.request(method, simulator.base_url + TOTAL, auth=auth, json={"a": 1}, timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_keep_alive_serves_many_requests_on_one_connection(simulator, kalshi_account):
    conn = http.client.HTTPConnection(simulator.host, simulator.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/trade-api/v2/exchange/status")
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Connection") != "close"
            assert json.loads(response.read())["exchange_active"] is True
        # A request with a body (drained by the server) does not corrupt the next one.
        conn.request("POST", "/trade-api/v2/exchange/status", body=b'{"x": 1}')
        response = conn.getresponse()
        assert response.status == 405
        response.read()
        conn.request("GET", "/trade-api/v2/exchange/status")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_session_reuses_its_connection(simulator, kalshi_account):
    with requests.Session() as session:
        session.auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
        for _ in range(5):
            assert session.get(simulator.base_url + TOTAL, timeout=5).status_code == 200
    assert [r.status for r in simulator.requests] == [200] * 5


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])
def test_refuses_non_loopback_host(host):
    with pytest.raises(ValueError):
        KalshiSimulator(host=host)


def test_localhost_and_restart():
    with KalshiSimulator(host="localhost") as sim:
        assert sim.host == "127.0.0.1"
        assert requests.get(sim.base_url + "/exchange/status", timeout=5).status_code == 200
    assert not sim.running
    with pytest.raises(RuntimeError):
        sim.base_url  # noqa: B018 - the property raises when stopped
    sim.start()
    try:
        assert requests.get(sim.base_url + "/exchange/status", timeout=5).status_code == 200
    finally:
        sim.stop()
    sim.stop()  # idempotent


def test_stop_closes_idle_keep_alive_connections():
    sim = KalshiSimulator().start()
    session = requests.Session()
    status_url = sim.base_url + "/exchange/status"
    try:
        assert session.get(status_url, timeout=5).status_code == 200
        sim.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(status_url, timeout=5)
    finally:
        session.close()
        sim.stop()
