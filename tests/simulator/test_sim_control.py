"""The /_simulator control API, used when the simulator runs in another process."""

from __future__ import annotations

import pytest
import requests

from kalshi_provider.signing import KalshiAuth
from kalshi_simulator import generate_private_key, public_pem

TOTAL = "/portfolio/summary/total_resting_order_value"


def test_health(simulator):
    response = requests.get(simulator.control_url + "/health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["base_url"] == simulator.base_url


def test_register_account_then_call_it(simulator, make_kalshi_account):
    make_kalshi_account()  # only for its cleanup of faults and requests
    key = generate_private_key()
    key_id = "control-registered"
    response = requests.post(
        simulator.control_url + "/accounts",
        json={
            "key_id": key_id,
            "public_key_pem": public_pem(key).decode(),
            "total_resting_order_value": 777,
            "breakdown": [],
            "fcm_member": True,
        },
        timeout=5,
    )
    try:
        assert response.status_code == 201, response.text
        value = requests.get(simulator.base_url + TOTAL, auth=KalshiAuth(key_id, key), timeout=5)
        assert value.json() == {"total_resting_order_value": 777, "resting_order_value_breakdown": []}

        patch = requests.patch(
            simulator.control_url + f"/accounts/{key_id}", json={"total_resting_order_value": 5}, timeout=5
        )
        assert patch.status_code == 200
        value = requests.get(simulator.base_url + TOTAL, auth=KalshiAuth(key_id, key), timeout=5)
        assert value.json()["total_resting_order_value"] == 5

        requests.patch(simulator.control_url + f"/accounts/{key_id}", json={"fcm_member": False}, timeout=5)
        assert (
            requests.get(simulator.base_url + TOTAL, auth=KalshiAuth(key_id, key), timeout=5).status_code
            == 403
        )
    finally:
        assert requests.delete(simulator.control_url + f"/accounts/{key_id}", timeout=5).status_code == 200
    gone = requests.get(simulator.base_url + TOTAL, auth=KalshiAuth(key_id, key), timeout=5)
    assert gone.json()["error"]["details"] == "NOT_FOUND"


def test_both_endpoints_values_are_scriptable_over_http(simulator, make_kalshi_account):
    account = make_kalshi_account()
    auth = KalshiAuth(account.key_id, account.private_key)
    change = {
        "total_resting_order_value": 300,
        "breakdown": [{"exchange_index": 2, "balance": "3.0000"}],
        "balance": 1000,
        "portfolio_value": 5,
        "balance_breakdown": [{"exchange_index": 2, "balance": "10.0000"}],
        "updated_ts": 1_800_000_000,
    }
    patch = requests.patch(simulator.control_url + f"/accounts/{account.key_id}", json=change, timeout=5)
    assert patch.status_code == 200, patch.text
    total = requests.get(simulator.base_url + TOTAL, auth=auth, timeout=5).json()
    assert total == {"total_resting_order_value": 300, "resting_order_value_breakdown": change["breakdown"]}
    balance = requests.get(simulator.base_url + "/portfolio/balance", auth=auth, timeout=5).json()
    assert balance == {
        "balance": 1000,
        "balance_dollars": "10.0000",
        "portfolio_value": 5,
        "updated_ts": 1_800_000_000,
        "balance_breakdown": change["balance_breakdown"],
    }
    # A bad value refuses the whole change: nothing of it is applied.
    bad = {"balance": 7, "portfolio_value": "5"}
    refused = requests.patch(simulator.control_url + f"/accounts/{account.key_id}", json=bad, timeout=5)
    assert refused.status_code == 400 and "portfolio_value" in refused.json()["error"]["message"]
    again = requests.get(simulator.base_url + "/portfolio/balance", auth=auth, timeout=5).json()
    assert again == balance
    # The control API's guards hold for these changes too: JSON only, and a loopback Host.
    as_text = requests.patch(
        simulator.control_url + f"/accounts/{account.key_id}",
        data='{"balance": 1}',
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    foreign = requests.patch(
        simulator.control_url + f"/accounts/{account.key_id}",
        json={"balance": 1},
        headers={"Host": "attacker.example"},
        timeout=5,
    )
    assert (as_text.status_code, foreign.status_code) == (415, 403)
    assert requests.get(simulator.base_url + "/portfolio/balance", auth=auth, timeout=5).json() == balance


@pytest.mark.parametrize(
    "body",
    [
        {"key_id": "x"},
        {"key_id": "x", "public_key_pem": "not a pem"},
        {"key_id": "x", "public_key_pem": "", "colour": "red"},
        ["not", "a", "dict"],
    ],
)
def test_bad_account_body_is_400(simulator, body):
    response = requests.post(simulator.control_url + "/accounts", json=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_faults_and_requests_over_http(simulator, kalshi_account):
    control = simulator.control_url
    queued = requests.post(
        control + "/faults", json=[{"status": 503}, {"status": 429, "times": 2}], timeout=5
    )
    assert queued.json() == {"pending_faults": 3}
    assert requests.get(control + "/faults", timeout=5).json()["faults"][1] == {"status": 429, "times": 2}

    auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
    assert requests.get(simulator.base_url + TOTAL, auth=auth, timeout=5).status_code == 503
    assert requests.delete(control + "/faults", timeout=5).json() == {"pending_faults": 0}
    assert requests.get(simulator.base_url + TOTAL, auth=auth, timeout=5).status_code == 200

    recorded = requests.get(control + "/requests", timeout=5).json()["requests"]
    assert [(r["path"], r["status"], r["fault"], r["signature_valid"]) for r in recorded] == [
        ("/trade-api/v2" + TOTAL, 503, True, True),
        ("/trade-api/v2" + TOTAL, 200, False, True),
    ]
    assert recorded[0]["key_id"] == kalshi_account.key_id
    assert {"method", "query", "timestamp", "signature", "received_at", "auth_error"} <= set(recorded[0])

    assert requests.delete(control + "/requests", timeout=5).json() == {"requests": []}
    assert simulator.requests == []


def test_control_requests_are_not_recorded_and_not_faulted(simulator, kalshi_account):
    simulator.push_faults([{"status": 500}])
    assert requests.get(simulator.control_url + "/health", timeout=5).status_code == 200
    assert simulator.requests == []
    assert simulator.pending_faults == 1


def test_bad_fault_over_http_is_400(simulator, kalshi_account):
    response = requests.post(simulator.control_url + "/faults", json=[{"statuss": 500}], timeout=5)
    assert response.status_code == 400
    assert "statuss" in response.json()["error"]["message"]
    assert simulator.pending_faults == 0


def test_invalid_json_is_400(simulator):
    response = requests.post(
        simulator.control_url + "/faults",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400


def test_unknown_control_path_and_method(simulator):
    assert requests.get(simulator.control_url + "/nothing", timeout=5).status_code == 404
    assert requests.put(simulator.control_url + "/faults", json=[], timeout=5).status_code == 405


# -- a web page in the developer's browser cannot script the control API ---------------------------


def _raw_request(simulator, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (a browser's request, foreign Host and all); status and raw answer."""
    import socket

    with socket.create_connection((simulator.host, simulator.port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def _post_faults(simulator, *, host: str, content_type: str) -> int:
    body = b'[{"status": 500, "times": 3}]'
    head = (
        f"POST /_simulator/faults HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return _raw_request(simulator, head.encode() + body)[0]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_cross_site_form_post_queues_nothing(simulator, kalshi_account, content_type):
    """What a form on any web page can send without a CORS preflight: refused, nothing queued."""
    status = _post_faults(simulator, host=f"127.0.0.1:{simulator.port}", content_type=content_type)
    assert status == 415
    assert simulator.pending_faults == 0


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",  # DNS rebinding: a foreign name that resolves to 127.0.0.1
        "evil.example",
        "127.0.0.1.nip.io:{port}",
        "127.0.0.1:{other}",  # another port: another service's origin
        "127.0.0.1",
        "",
    ],
)
def test_a_foreign_host_header_is_refused(simulator, kalshi_account, host):
    host = host.format(port=simulator.port, other=simulator.port + 1)
    status = _post_faults(simulator, host=host, content_type="application/json")
    assert status == 403
    assert simulator.pending_faults == 0
    # Reading is refused too: recorded requests carry key IDs and signatures.
    status, _ = _raw_request(
        simulator,
        f"GET /_simulator/requests HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert status == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_loopback_host_headers_with_json_bodies_work(simulator, kalshi_account, host):
    status = _post_faults(simulator, host=host.format(port=simulator.port), content_type="application/json")
    assert status == 200
    assert simulator.pending_faults == 3


def test_the_kalshi_paths_are_not_affected(simulator, kalshi_account):
    """Only the control API checks Host: the provider's requests (any Host a proxy sets) still work."""
    auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
    response = requests.get(simulator.base_url + TOTAL, auth=auth, headers={"Host": "example.com"}, timeout=5)
    assert response.status_code == 200
