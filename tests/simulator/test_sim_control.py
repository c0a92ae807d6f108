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
