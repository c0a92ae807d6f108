"""Scripted faults: consumed in order, one per matching request, before auth."""

from __future__ import annotations

import json
import time

import pytest
import requests

from kalshi_provider.signing import KalshiAuth

TOTAL = "/portfolio/summary/total_resting_order_value"
BALANCE = "/portfolio/balance"


@pytest.fixture
def session(kalshi_account):
    with requests.Session() as s:
        s.auth = KalshiAuth(kalshi_account.key_id, kalshi_account.private_key)
        yield s


def test_faults_apply_in_order_then_normal_answers(simulator, session):
    simulator.push_faults(
        [
            {"status": 503, "body": "<html><body>Service Unavailable</body></html>"},
            {"status": 429},
            {"status": 500, "json": {"code": "internal", "message": "flat shape", "details": ""}},
        ]
    )
    assert simulator.pending_faults == 3
    first = session.get(simulator.base_url + TOTAL, timeout=5)
    assert first.status_code == 503
    assert first.text.startswith("<html>")
    assert first.headers["Content-Type"].startswith("text/html")

    second = session.get(simulator.base_url + TOTAL, timeout=5)
    assert second.status_code == 429
    assert second.json() == {"error": "too many requests"}  # Kalshi's own 429 body
    assert "Retry-After" not in second.headers

    third = session.get(simulator.base_url + TOTAL, timeout=5)
    assert third.status_code == 500
    assert third.json()["message"] == "flat shape"

    assert session.get(simulator.base_url + TOTAL, timeout=5).status_code == 200
    assert simulator.pending_faults == 0
    records = simulator.requests
    assert [(r.status, r.fault) for r in records] == [(503, True), (429, True), (500, True), (200, False)]
    assert all(r.signature_valid for r in records)


def test_default_error_body_for_a_bare_status(simulator, session):
    simulator.push_faults([{"status": 502}])
    response = session.get(simulator.base_url + TOTAL, timeout=5)
    assert response.status_code == 502
    assert response.json() == {"error": {"code": "bad_gateway", "message": "bad gateway", "details": ""}}


def test_a_bare_403_is_kalshis_live_refusal(simulator, session):
    """The provider takes a 403 as "no FCM access" only with this body, so the simulator's default
    403 must be what Kalshi really sends (wrapped, code permission_denied, no details)."""
    simulator.push_faults([{"status": 403}])
    response = session.get(simulator.base_url + TOTAL, timeout=5)
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "permission_denied", "message": "permission denied"}}


def test_empty_body_and_200_with_a_broken_body(simulator, session):
    simulator.push_faults([{"status": 504, "body": ""}, {"json": {"unexpected": True}}, {"body": "not json"}])
    empty = session.get(simulator.base_url + TOTAL, timeout=5)
    assert (empty.status_code, empty.content) == (504, b"")
    odd = session.get(simulator.base_url + TOTAL, timeout=5)
    assert (odd.status_code, odd.json()) == (200, {"unexpected": True})
    text = session.get(simulator.base_url + TOTAL, timeout=5)
    assert (text.status_code, text.text) == (200, "not json")
    assert text.headers["Content-Type"].startswith("text/plain")


def test_retry_after_header(simulator, session):
    simulator.push_faults([{"status": 429, "headers": {"Retry-After": "2"}}])
    response = session.get(simulator.base_url + TOTAL, timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"


def test_headers_only_fault_decorates_the_normal_answer(simulator, session):
    simulator.push_faults([{"headers": {"X-Ratelimit-Remaining": "0"}}])
    response = session.get(simulator.base_url + TOTAL, timeout=5)
    assert response.status_code == 200
    assert response.headers["X-Ratelimit-Remaining"] == "0"
    assert response.json()["total_resting_order_value"] == 123456


def test_delay_then_normal_answer(simulator, session):
    simulator.push_faults([{"delay": 0.6}])
    started = time.monotonic()
    response = session.get(simulator.base_url + TOTAL, timeout=5)
    assert time.monotonic() - started >= 0.6
    assert response.status_code == 200


@pytest.mark.slow
def test_delay_longer_than_client_timeout(simulator, session):
    simulator.push_faults([{"delay": 1.5, "status": 200}])
    with pytest.raises(requests.ReadTimeout):
        session.get(simulator.base_url + TOTAL, timeout=0.3)
    # The same session recovers on a new connection.
    time.sleep(1.3)
    assert session.get(simulator.base_url + TOTAL, timeout=5).status_code == 200


def test_drop_closes_without_answer(simulator, session):
    simulator.push_faults([{"drop": True}])
    with pytest.raises(requests.ConnectionError):
        session.get(simulator.base_url + TOTAL, timeout=5)
    assert session.get(simulator.base_url + TOTAL, timeout=5).status_code == 200
    dropped, ok = simulator.requests
    assert (dropped.status, dropped.fault, dropped.signature_valid) == (None, True, True)
    assert ok.status == 200


def test_path_filter(simulator, session):
    simulator.push_faults([{"status": 500, "path": "/portfolio/balance"}, {"status": 418}])
    # The first fault only matches the balance path; the second matches anything.
    assert session.get(simulator.base_url + TOTAL, timeout=5).status_code == 418
    assert session.get(simulator.base_url + TOTAL, timeout=5).status_code == 200
    assert session.get(simulator.base_url + BALANCE, timeout=5).status_code == 500
    assert session.get(simulator.base_url + BALANCE, timeout=5).status_code == 200


def test_times(simulator, session):
    simulator.push_faults([{"status": 503, "times": 3}, {"status": 429}])
    statuses = [session.get(simulator.base_url + TOTAL, timeout=5).status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 429, 200]


def test_faults_come_before_auth_but_record_signature_validity(simulator):
    simulator.push_faults([{"status": 503, "times": 2}])
    assert requests.get(simulator.base_url + TOTAL, timeout=5).status_code == 503
    assert requests.get(simulator.base_url + "/nowhere", timeout=5).status_code == 503
    unsigned, unknown_path = simulator.requests
    assert unsigned.signature_valid is False
    assert unsigned.auth_error == "signature_is_missing_from_headers"
    assert unknown_path.path == "/trade-api/v2/nowhere"


def test_clear_faults(simulator, session):
    simulator.push_faults([{"status": 500, "times": 4}])
    assert simulator.faults == [{"status": 500, "times": 4}]
    simulator.clear_faults()
    assert simulator.pending_faults == 0
    assert session.get(simulator.base_url + TOTAL, timeout=5).status_code == 200


@pytest.mark.parametrize(
    "fault",
    [
        {"stauts": 500},
        {"status": 700},
        {"status": "500"},
        {"json": {}, "body": ""},
        {"body": b"bytes"},
        {"delay": -1},
        {"times": 0},
        {"drop": True, "status": 500},
        {"drop": "yes"},
        {"headers": {"Content-Length": "5"}},
        {"path": ""},
        {"json": {1, 2}},
    ],
)
def test_bad_fault_is_refused_and_nothing_queued(simulator, fault):
    with pytest.raises((ValueError, TypeError)):
        simulator.push_faults([{"status": 500}, fault])
    assert simulator.pending_faults == 0


def test_push_faults_wants_a_list(simulator):
    with pytest.raises(ValueError, match="list"):
        simulator.push_faults({"status": 500})


@pytest.mark.slow
def test_a_trickle_fault_sends_the_answer_one_byte_at_a_time(simulator, session):
    import socket

    simulator.push_faults([{"trickle": 0.01}])
    request = session.prepare_request(requests.Request("GET", simulator.base_url + TOTAL))
    head = f"GET {request.path_url} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in request.headers.items()
    )
    with socket.create_connection((simulator.host, simulator.port), timeout=5) as sock:
        sock.sendall((head + "\r\n").encode())
        reads = []
        while chunk := sock.recv(65536):
            reads.append(chunk)
    answer = b"".join(reads)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["total_resting_order_value"] == 123456 and len(body["resting_order_value_breakdown"]) == 4
    assert len(reads) > len(answer) // 2  # byte by byte, not in one send


def test_a_gzip_bomb_fault_inflates_a_thousandfold(simulator, session):
    import zlib

    simulator.push_faults([{"gzip_bomb_mib": 8}])
    response = session.get(simulator.base_url + TOTAL, timeout=5, stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    compressed = response.raw.read(decode_content=False)
    assert len(compressed) < 8 * 1024 * 16  # about 1 KiB per MiB
    inflated, rest = 0, compressed
    while rest:  # member by member, never the whole inflated body at once
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        inflated += len(member.decompress(rest, 0))
        rest = member.unused_data
    assert inflated == 8 << 20


@pytest.mark.parametrize(
    "fault",
    [
        {"trickle": -1},
        {"trickle": 11},
        {"gzip_bomb_mib": 5000},
        {"gzip_bomb_mib": 1, "body": "x"},
        {"drop": True, "trickle": 1},
        {"headers": {"Content-Encoding": "gzip"}},
    ],
)
def test_bad_trickle_and_bomb_faults_are_refused(simulator, fault):
    with pytest.raises(ValueError):
        simulator.push_faults([fault])
