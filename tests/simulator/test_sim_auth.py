"""The simulator authenticates exactly like Kalshi: right signatures pass, each mistake gets its 401."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from kalshi_provider.signing import KalshiAuth, sign
from kalshi_simulator import generate_private_key

TOTAL = "/trade-api/v2/portfolio/summary/total_resting_order_value"
BALANCE = "/trade-api/v2/portfolio/balance"


def url(simulator, path: str) -> str:
    return simulator.root_url + path


def assert_auth_error(response: requests.Response, details: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "authentication_error"
    assert error["details"] == details
    assert error["message"]


def test_signed_request_gets_the_value(simulator, kalshi_account, headers_for):
    headers = headers_for(kalshi_account.key_id, kalshi_account.private_key, "GET", TOTAL)
    response = requests.get(url(simulator, TOTAL), headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "total_resting_order_value": 123456,
        "resting_order_value_breakdown": [  # 2026's shards 0-3, adding up to the total exactly
            {"exchange_index": 0, "balance": "493.8400"},
            {"exchange_index": 1, "balance": "370.3600"},
            {"exchange_index": 2, "balance": "246.9100"},
            {"exchange_index": 3, "balance": "123.4500"},
        ],
    }
    [record] = simulator.requests
    assert (record.method, record.path, record.key_id, record.status) == (
        "GET",
        TOTAL,
        kalshi_account.key_id,
        200,
    )
    assert record.signature_valid is True
    assert record.auth_error is None
    assert record.timestamp == headers["KALSHI-ACCESS-TIMESTAMP"]
    assert record.signature == headers["KALSHI-ACCESS-SIGNATURE"]
    assert abs(record.received_at - time.time()) < 5


def test_kalshi_auth_from_signing_module_works(simulator, kalshi_account):
    auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
    response = requests.get(simulator.base_url + "/portfolio/balance", auth=auth, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["balance"] == 500000 and body["portfolio_value"] == 250000
    assert abs(body["updated_ts"] - time.time()) < 5


def test_ed25519_account(simulator, make_kalshi_account, headers_for):
    account = make_kalshi_account("ed25519", total_resting_order_value=42)
    assert b"BEGIN PRIVATE KEY" in account.private_pem
    headers = headers_for(account.key_id, account.private_key, "GET", TOTAL)
    response = requests.get(url(simulator, TOTAL), headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.json()["total_resting_order_value"] == 42


@pytest.mark.parametrize(
    "missing", ["KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE"]
)
def test_missing_header(simulator, kalshi_account, headers_for, missing):
    headers = headers_for(kalshi_account.key_id, kalshi_account.private_key, "GET", TOTAL)
    del headers[missing]
    assert_auth_error(
        requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "signature_is_missing_from_headers"
    )


def test_no_auth_headers_at_all(simulator):
    assert_auth_error(requests.get(url(simulator, BALANCE), timeout=5), "signature_is_missing_from_headers")


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param(lambda: str(int(time.time())), id="seconds-not-milliseconds"),
        pytest.param(lambda: str(int(time.time() * 1000) - 60_000), id="a-minute-old"),
        pytest.param(lambda: str(int(time.time() * 1000) + 60_000), id="a-minute-ahead"),
        pytest.param(lambda: f"{time.time() * 1000:.3f}", id="not-digits"),
        pytest.param(lambda: "soon", id="text"),
        pytest.param(lambda: "-1", id="negative"),
        pytest.param(lambda: "9" * 5000, id="absurdly-long"),
    ],
)
def test_expired_timestamp(simulator, kalshi_account, headers_for, timestamp):
    # Correctly signed over the bad timestamp, so only the timestamp is wrong.
    headers = headers_for(
        kalshi_account.key_id, kalshi_account.private_key, "GET", TOTAL, timestamp=timestamp()
    )
    response = requests.get(url(simulator, TOTAL), headers=headers, timeout=5)
    assert_auth_error(response, "header_timestamp_expired")
    assert simulator.requests[-1].signature_valid is True


def test_timestamp_within_skew_is_accepted(simulator, kalshi_account, headers_for):
    ts = str(int(time.time() * 1000) - 3000)
    headers = headers_for(kalshi_account.key_id, kalshi_account.private_key, "GET", TOTAL, timestamp=ts)
    assert requests.get(url(simulator, TOTAL), headers=headers, timeout=5).status_code == 200


def test_unknown_key_id(simulator, kalshi_account, headers_for):
    headers = headers_for("no-such-key", kalshi_account.private_key, "GET", TOTAL)
    assert_auth_error(requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "NOT_FOUND")


def test_signature_from_another_key(simulator, kalshi_account, headers_for):
    headers = headers_for(kalshi_account.key_id, generate_private_key(), "GET", TOTAL)
    response = requests.get(url(simulator, TOTAL), headers=headers, timeout=5)
    assert_auth_error(response, "INCORRECT_API_KEY_SIGNATURE")
    assert simulator.requests[-1].signature_valid is False


def test_garbage_signature(simulator, kalshi_account, headers_for):
    headers = headers_for(
        kalshi_account.key_id, kalshi_account.private_key, "GET", TOTAL, signer=lambda m: "%%%"
    )
    assert_auth_error(
        requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "INCORRECT_API_KEY_SIGNATURE"
    )


def test_path_signed_without_api_prefix(simulator, kalshi_account, headers_for):
    headers = headers_for(
        kalshi_account.key_id,
        kalshi_account.private_key,
        "GET",
        "/portfolio/summary/total_resting_order_value",
    )
    assert_auth_error(
        requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "INCORRECT_API_KEY_SIGNATURE"
    )


def test_lowercase_method_in_message_is_the_same_message(simulator, kalshi_account, headers_for):
    # signing_message upper-cases the method, so this is a plain correct request.
    headers = headers_for(kalshi_account.key_id, kalshi_account.private_key, "get", TOTAL)
    assert requests.get(url(simulator, TOTAL), headers=headers, timeout=5).status_code == 200


def _pss_signer(key, salt_length):
    def signer(message: bytes) -> str:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)
        return base64.b64encode(key.sign(message, pss, hashes.SHA256())).decode()

    return signer


@pytest.mark.parametrize("salt_length", [padding.PSS.MAX_LENGTH, 20, 0])
def test_pss_with_other_salt_length_is_rejected(simulator, kalshi_account, headers_for, salt_length):
    key = kalshi_account.private_key
    headers = headers_for(kalshi_account.key_id, key, "GET", TOTAL, signer=_pss_signer(key, salt_length))
    assert_auth_error(
        requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "INCORRECT_API_KEY_SIGNATURE"
    )


def test_pss_with_salt_32_written_by_hand_is_accepted(simulator, kalshi_account, headers_for):
    key = kalshi_account.private_key
    headers = headers_for(kalshi_account.key_id, key, "GET", TOTAL, signer=_pss_signer(key, 32))
    assert requests.get(url(simulator, TOTAL), headers=headers, timeout=5).status_code == 200


def test_pkcs1v15_is_rejected(simulator, kalshi_account, headers_for):
    key = kalshi_account.private_key

    def signer(message: bytes) -> str:
        return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()

    headers = headers_for(kalshi_account.key_id, key, "GET", TOTAL, signer=signer)
    assert_auth_error(
        requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "INCORRECT_API_KEY_SIGNATURE"
    )


def test_query_string_is_not_signed(simulator, kalshi_account, headers_for):
    key, key_id = kalshi_account.private_key, kalshi_account.key_id
    good = headers_for(key_id, key, "GET", BALANCE)
    response = requests.get(
        url(simulator, BALANCE), params={"limit": "5", "x": "a b"}, headers=good, timeout=5
    )
    assert response.status_code == 200
    assert simulator.requests[-1].query == "limit=5&x=a+b"

    ts = good["KALSHI-ACCESS-TIMESTAMP"]
    with_query = dict(good, **{"KALSHI-ACCESS-SIGNATURE": sign(key, f"{ts}GET{BALANCE}?limit=5".encode())})
    response = requests.get(url(simulator, BALANCE), params={"limit": "5"}, headers=with_query, timeout=5)
    assert_auth_error(response, "INCORRECT_API_KEY_SIGNATURE")


def test_kalshi_auth_with_query_string(simulator, kalshi_account):
    auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
    response = requests.get(simulator.base_url + "/portfolio/balance?cursor=abc", auth=auth, timeout=5)
    assert response.status_code == 200


def test_method_is_part_of_the_message(simulator, kalshi_account, headers_for):
    headers = headers_for(kalshi_account.key_id, kalshi_account.private_key, "POST", TOTAL)
    assert_auth_error(
        requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "INCORRECT_API_KEY_SIGNATURE"
    )


def test_removed_account_is_unknown(simulator, kalshi_account, headers_for):
    simulator.remove_account(kalshi_account.key_id)
    headers = headers_for(kalshi_account.key_id, kalshi_account.private_key, "GET", TOTAL)
    assert_auth_error(requests.get(url(simulator, TOTAL), headers=headers, timeout=5), "NOT_FOUND")


def test_skew_is_configurable(simulator, kalshi_account, headers_for, monkeypatch):
    monkeypatch.setattr(simulator, "skew_seconds", 120.0)
    ts = str(int(time.time() * 1000) - 60_000)
    headers = headers_for(kalshi_account.key_id, kalshi_account.private_key, "GET", TOTAL, timestamp=ts)
    assert requests.get(url(simulator, TOTAL), headers=headers, timeout=5).status_code == 200
