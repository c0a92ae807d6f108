"""KalshiHook over real HTTP against the simulator, which verifies signatures as Kalshi does."""

from __future__ import annotations

import logging
import socket
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization

from kalshi_provider import signing
from kalshi_provider.exceptions import (
    PERMANENT_ERRORS,
    KalshiAPIError,
    KalshiAuthError,
    KalshiConfigError,
    KalshiError,
    KalshiExchangePausedError,
    KalshiNotFoundError,
    KalshiPermissionError,
    KalshiRateLimitError,
    KalshiResponseError,
    KalshiServerError,
    KalshiTransportError,
)
from kalshi_provider.hooks.kalshi import KalshiHook
from tests.fixtures import encrypted_keys
from tests.fixtures.simulator import signed_calls

VALUE_PATH = "/trade-api/v2/portfolio/summary/total_resting_order_value"
#: A fault's ``path`` (the end of the request's path) for the total only.
TOTAL_PATH = "/portfolio/summary/total_resting_order_value"


def test_reads_the_value_with_a_signature_kalshi_accepts(kalshi_connection, simulator):
    hook = KalshiHook(kalshi_connection())
    assert hook.get_total_resting_order_value() == 123456
    [request] = signed_calls(simulator)
    assert (request.method, request.path, request.status) == ("GET", VALUE_PATH, 200)
    assert request.signature_valid and request.auth_error is None


def test_breakdown_and_unknown_fields_are_accepted(kalshi_connection, simulator, kalshi_account):
    simulator.set_value(
        kalshi_account.key_id,
        5000,
        [{"exchange_index": 0, "balance": "30.0000"}, {"exchange_index": 1, "balance": "20.0000"}],
    )
    reading = KalshiHook(kalshi_connection()).get_resting_order_value()
    assert reading.total_cents == 5000
    assert [(entry.exchange_index, str(entry.dollars)) for entry in reading.breakdown] == [
        (0, "30.000000"),
        (1, "20.000000"),
    ]


def test_reads_the_balance_exactly(kalshi_connection, simulator, kalshi_account):
    simulator.set_balance(kalshi_account.key_id, 123, balance_dollars="1.234567", portfolio_value=-9)
    balance = KalshiHook(kalshi_connection()).get_balance()
    assert (balance.balance_cents, balance.portfolio_value_cents) == (123, -9)
    assert str(balance.balance_dollars) == "1.234567"
    assert [entry.exchange_index for entry in balance.breakdown] == [0, 1, 2, 3]
    [request] = signed_calls(simulator)
    assert request.path == "/trade-api/v2/portfolio/balance" and request.signature_valid


@pytest.mark.slow
def test_every_value_and_every_error_about_an_answer_carries_when_the_answer_arrived(
    kalshi_connection, simulator
):
    """The stamp is the transport's, taken after the whole answer was read: a value or an error
    about an answer held back 1 s is stamped after the hold, whichever endpoint it came from."""
    hook = KalshiHook(kalshi_connection(extra={"max_retries": 0}))
    simulator.push_faults(
        [
            {"delay": 1, "path": "/portfolio/summary/total_resting_order_value"},
            {"delay": 1, "path": "/portfolio/balance"},
            {"delay": 1, "status": 404},
            {"delay": 1, "status": 200, "json": {"balance": 1}, "path": "/portfolio/balance"},
        ]
    )
    stamps = [hook.get_resting_order_value().received_at, hook.get_balance().received_at]
    with pytest.raises(KalshiNotFoundError) as refused:
        hook.get_resting_order_value()
    with pytest.raises(KalshiResponseError) as unusable:
        hook.get_balance()
    stamps += [refused.value.received_at, unusable.value.received_at]
    requests = signed_calls(simulator)
    assert len(requests) == len(stamps) == 4
    for stamp, request in zip(stamps, requests, strict=True):
        assert stamp.tzinfo is not None and stamp.timestamp() >= request.received_at + 1


@pytest.fixture
def lineage_collector(monkeypatch):
    """Airflow's real hook lineage collector, as a lineage reader (OpenLineage) gets it, fresh for
    the test (the process-wide one is a no-op unless OpenLineage is configured)."""
    from airflow.providers.common.compat.lineage import hook as compat_lineage
    from airflow.sdk.lineage import HookLineageCollector

    collector = HookLineageCollector()
    monkeypatch.setattr(compat_lineage, "get_hook_lineage_collector", lambda: collector)
    return collector


def test_each_endpoint_read_is_reported_as_hook_lineage_that_openlineage_names(
    lineage_collector, kalshi_connection, simulator, kalshi_account
):
    """The hook reports each endpoint it read to Airflow's hook lineage collector; the OpenLineage
    provider names it through the converter this provider registers (a web API: scheme and host,
    then the URL path). A refused call reports nothing."""
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    hook = KalshiHook(kalshi_connection())
    hook.get_balance()
    hook.get_resting_order_value()
    simulator.set_fcm_member(kalshi_account.key_id, False)
    with pytest.raises(KalshiPermissionError):
        hook.get_resting_order_value()
    collected = lineage_collector.collected_assets
    assert collected.outputs == []
    mine = [info for info in collected.inputs if info.context is hook]
    assert sorted((info.asset.uri, info.count) for info in mine) == [
        (f"kalshi+http://127.0.0.1:{simulator.port}/trade-api/v2/portfolio/balance", 1),
        (f"kalshi+http://127.0.0.1:{simulator.port}{VALUE_PATH}", 1),
    ]
    named = sorted((d.namespace, d.name) for d in (translate_airflow_asset(i.asset, hook) for i in mine))
    assert named == [
        (f"http://127.0.0.1:{simulator.port}", "/trade-api/v2/portfolio/balance"),
        (f"http://127.0.0.1:{simulator.port}", VALUE_PATH),
    ]


def test_generic_request_signs_path_without_query(kalshi_connection, simulator):
    body = KalshiHook(kalshi_connection()).request("GET", "/portfolio/balance", params={"subaccount": "0"})
    assert body["balance"] == 500000
    [request] = signed_calls(simulator)
    assert request.query == "subaccount=0" and request.signature_valid


@pytest.mark.parametrize("fmt", ["pkcs8", "ed25519", "encrypted", "file", "private_key_extra"])
def test_key_formats(make_kalshi_account, set_connection, simulator, tmp_path, fmt):
    account = make_kalshi_account("ed25519" if fmt == "ed25519" else "rsa")
    fields = {"login": account.key_id, "host": simulator.base_url, "extra": {}}
    encryption = serialization.NoEncryption()
    if fmt == "encrypted":
        encryption = serialization.BestAvailableEncryption(b"pass-phrase-123")
        fields["extra"]["private_key_passphrase"] = "pass-phrase-123"
    pem = account.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()
    if fmt == "file":
        key_file = tmp_path / "key.pem"
        key_file.write_text(pem)
        fields["extra"]["private_key_path"] = str(key_file)
    elif fmt == "private_key_extra":
        fields["extra"]["private_key"] = pem
    else:
        fields["password"] = pem
    hook = KalshiHook(set_connection("kalshi_fmt", "kalshi", **fields))
    assert hook.get_total_resting_order_value() == 123456
    assert all(request.signature_valid for request in signed_calls(simulator))


@pytest.mark.slow
def test_retries_recover_and_every_attempt_is_signed_afresh(kalshi_connection, simulator, capfd):
    simulator.push_faults(
        [
            # Each on the total: the unsigned /exchange/status read after each failure takes none.
            {"status": 503, "body": "<html>Service Unavailable</html>", "path": TOTAL_PATH},
            {"status": 429, "json": {"error": "too many requests"}, "path": TOTAL_PATH},
            {"drop": True, "path": TOTAL_PATH},
        ]
    )
    assert KalshiHook(kalshi_connection()).get_total_resting_order_value() == 123456
    requests = signed_calls(simulator)
    assert [request.status for request in requests] == [503, 429, None, 200]
    assert len({request.timestamp for request in requests}) == 4
    assert len({request.signature for request in requests}) == 4
    assert all(request.signature_valid for request in requests)
    # Outside a task, Airflow's structlog setup prints hook logs to the console.
    output = capfd.readouterr()
    assert (output.out + output.err).count("retrying in") == 3


@pytest.mark.slow
def test_retry_after_is_honoured(kalshi_connection, simulator):
    simulator.push_faults(
        [{"status": 429, "json": {"error": "too many requests"}, "headers": {"Retry-After": "2"}}]
    )
    assert KalshiHook(kalshi_connection()).get_total_resting_order_value() == 123456
    first, second = signed_calls(simulator)
    assert second.received_at - first.received_at >= 2.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "kind", "expected"),
    [
        ({"status": 502, "body": "bad gateway"}, KalshiServerError, "502"),
        ({"status": 429, "json": {"error": "too many requests"}}, KalshiRateLimitError, "rate limit"),
    ],
)
def test_retries_are_bounded(kalshi_connection, simulator, fault, kind, expected):
    simulator.push_faults([{**fault, "times": 10}])
    hook = KalshiHook(kalshi_connection(extra={"max_retries": 2}))
    with pytest.raises(kind, match=expected):
        hook.get_total_resting_order_value()
    assert len(signed_calls(simulator)) == 3


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (
            {"status": 401, "json": {"error": {"code": "authentication_error", "message": "x"}}},
            KalshiAuthError,
        ),
        (
            {"status": 403, "json": {"error": {"code": "permission_denied", "message": "permission denied"}}},
            KalshiPermissionError,
        ),
        ({"status": 404, "json": {"code": "not_found", "message": "not found"}}, KalshiNotFoundError),
        ({"status": 400, "json": {"code": "bad_request", "message": "bad request"}}, KalshiAPIError),
    ],
    ids=["401", "403", "404", "400"],
)
def test_client_errors_are_not_retried(kalshi_connection, simulator, fault, kind):
    simulator.push_faults([fault, fault])
    with pytest.raises(kind):
        KalshiHook(kalshi_connection()).get_total_resting_order_value()
    assert len(signed_calls(simulator)) == 1


def test_non_fcm_key_gets_a_message_about_fcm_membership(make_kalshi_account, kalshi_connection, simulator):
    account = make_kalshi_account(fcm_member=False)
    hook = KalshiHook(kalshi_connection(login=account.key_id, password=account.private_pem.decode()))
    with pytest.raises(KalshiPermissionError, match="only for FCM members") as caught:
        hook.get_total_resting_order_value()
    assert caught.value.status == 403 and caught.value.code == "permission_denied"


def test_wrong_key_unknown_key_and_clock_skew(make_kalshi_account, kalshi_connection, monkeypatch):
    other = make_kalshi_account()
    with pytest.raises(KalshiAuthError, match="does not belong to this key ID"):
        KalshiHook(
            kalshi_connection(password=other.private_pem.decode(), login=make_kalshi_account().key_id)
        ).get_total_resting_order_value()
    with pytest.raises(KalshiAuthError, match="does not know this API key ID"):
        KalshiHook(kalshi_connection(login="no-such-key")).get_total_resting_order_value()
    # A machine clock a minute behind: Kalshi (and the simulator) allow only a few seconds.
    real_now = signing.now_ms
    monkeypatch.setattr(signing, "now_ms", lambda: str(int(real_now()) - 60_000))
    with pytest.raises(KalshiAuthError, match="clock is off"):
        KalshiHook(kalshi_connection()).get_total_resting_order_value()


def test_wrong_base_path_is_a_404_with_a_hint(kalshi_connection, simulator):
    hook = KalshiHook(kalshi_connection(host=simulator.base_url.replace("/trade-api/v2", "/trade-api/v1")))
    with pytest.raises(KalshiNotFoundError, match="should end in /trade-api/v2"):
        hook.get_total_resting_order_value()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 200, "body": "<html>maintenance</html>"}, "is not JSON"),
        ({"status": 200, "json": {"total_resting_order_value": "123"}}, "whole number of cents"),
        ({"status": 200, "json": {"total_resting_order_value": -5}}, "outside 0"),
    ],
)
def test_bad_bodies(kalshi_connection, simulator, fault, expected):
    simulator.push_faults([fault])
    with pytest.raises(KalshiResponseError, match=expected):
        KalshiHook(kalshi_connection()).get_total_resting_order_value()


@pytest.mark.slow
def test_timeout_then_unreachable(kalshi_connection, simulator):
    simulator.push_faults([{"delay": 3, "times": 2, "path": TOTAL_PATH}])
    hook = KalshiHook(kalshi_connection(extra={"timeout": 0.5, "max_retries": 1}))
    with pytest.raises(KalshiTransportError, match="did not answer"):
        hook.get_total_resting_order_value()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    hook = KalshiHook(kalshi_connection(host=f"http://127.0.0.1:{port}", extra={"max_retries": 0}))
    with pytest.raises(KalshiTransportError, match="Could not reach Kalshi .*refused"):
        hook.get_total_resting_order_value()


def test_plain_http_to_a_remote_host_is_refused_before_any_request(kalshi_connection):
    hook = KalshiHook(kalshi_connection(host="http://api.elections.kalshi.com"))
    with pytest.raises(KalshiConfigError, match="must use https"):
        hook.get_total_resting_order_value()


def test_key_is_parsed_once_and_session_reused(kalshi_connection, simulator, monkeypatch):
    hook = KalshiHook(kalshi_connection())
    calls = []
    real_load = signing.load_private_key
    monkeypatch.setattr(
        "kalshi_provider.signing.load_private_key", lambda *a: calls.append(1) or real_load(*a)
    )
    for _ in range(3):
        hook.get_total_resting_order_value()
    assert len(calls) == 1
    assert hook.get_conn() is hook.get_conn()


def test_test_connection_reports_success_and_actionable_failures(make_kalshi_account, kalshi_connection):
    ok, message = KalshiHook(kalshi_connection()).test_connection()
    assert ok and "accepted" in message
    ok, message = KalshiHook(kalshi_connection(login="unknown-key")).test_connection()
    assert not ok and "does not know this API key ID" in message
    ok, message = KalshiHook(kalshi_connection(password="not a key")).test_connection()
    assert not ok and "not a PEM private key" in message


@pytest.mark.parametrize("bounded", [True, False], ids=["refused-by-the-bound", "real-library-panic"])
def test_the_test_button_answers_for_a_key_that_makes_the_crypto_library_panic(
    kalshi_connection, simulator, monkeypatch, bounded
):
    """It runs in the API server: a BaseException there was a 500, not an answer. Without the
    bound (``real-library-panic``) the library's real panic happens and is contained."""
    if not bounded:
        monkeypatch.setattr(signing, "check_key_derivation", lambda pem: None)
    hook = KalshiHook(encrypted_keys.panicking_key_connection(kalshi_connection))
    ok, message = hook.test_connection()
    assert not ok and encrypted_keys.PANIC_MESSAGES[bounded] in message and "kalshi_costly_key" in message
    assert simulator.requests == []


def test_no_key_material_or_signature_in_logs_or_errors(
    kalshi_connection, simulator, kalshi_account, caplog, capfd
):
    simulator.push_faults(
        [
            {"status": 500, "body": "oops", "path": TOTAL_PATH},
            {"status": 401, "json": {"error": {"code": "x"}}, "path": TOTAL_PATH},
        ]
    )
    hook = KalshiHook(kalshi_connection())
    with caplog.at_level(logging.DEBUG), pytest.raises(KalshiAuthError) as caught:
        hook.get_total_resting_order_value()
    output = capfd.readouterr()
    text = (
        output.out
        + output.err
        + caplog.text
        + str(caught.value)
        + repr(caught.value)
        + repr(hook.get_conn().auth)
    )
    key_lines = [line for line in kalshi_account.private_pem.decode().splitlines() if "-----" not in line]
    assert "retrying in" in text  # the capture did see the hook's log
    assert key_lines and not any(line in text for line in key_lines)
    assert not any(request.signature in text for request in signed_calls(simulator))


# -- issue 10: secrets in the wrong field, other connection types, the retry budget ----------------


def test_a_pem_in_the_key_id_field_is_refused_before_any_request(
    kalshi_connection, kalshi_account, simulator
):
    """The old hook sent it as a header: http.client's ValueError then carried the whole PEM into
    the task log and the Test button's answer, and the task retried it."""
    pem = kalshi_account.private_pem.decode()
    hook = KalshiHook(kalshi_connection(login=pem))
    with pytest.raises(KalshiConfigError, match="has an API key ID") as caught:
        hook.get_total_resting_order_value()
    ok, message = hook.test_connection()
    assert not ok and message == str(caught.value)
    body = [line for line in pem.splitlines() if "-----" not in line]
    for text in (message, repr(caught.value)):
        assert "BEGIN" not in text and not any(line[:24] in text for line in body)
    assert type(caught.value) in PERMANENT_ERRORS
    assert simulator.requests == []


def test_the_test_button_never_repeats_an_unexpected_errors_text(kalshi_connection, monkeypatch):
    secret = "-----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEAsecretsecret"

    def broken(conn):
        raise RuntimeError(f"could not parse {secret}")

    monkeypatch.setattr("kalshi_provider.hooks.kalshi.private_key_from_connection", broken)
    ok, message = KalshiHook(kalshi_connection()).test_connection()
    assert not ok and "RuntimeError" in message
    assert "secret" not in message and "BEGIN" not in message


@pytest.mark.parametrize("conn_type", ["ssh", "sftp", "http"])
def test_a_connection_of_another_type_is_refused_before_any_request(
    conn_type, set_connection, kalshi_account, simulator
):
    """`--conf kalshi_conn_ids=["my_ssh"]` must not sign with an SSH key and send it to its host."""
    conn_id = set_connection(
        "not_kalshi",
        conn_type,
        login=kalshi_account.key_id,
        password=kalshi_account.private_pem.decode(),
        host=simulator.base_url,
    )
    hook = KalshiHook(conn_id)
    with pytest.raises(KalshiConfigError, match=f"is of type '{conn_type}', not 'kalshi'") as caught:
        hook.get_total_resting_order_value()
    assert type(caught.value) in PERMANENT_ERRORS
    assert simulator.requests == []


def test_a_retry_after_beyond_the_cap_ends_the_calls_retries(kalshi_connection, simulator):
    """Kalshi sends no Retry-After; one that asks for more than 30 s is not slept on in a call."""
    simulator.push_faults(
        [
            {
                "status": 429,
                "json": {"error": "too many requests"},
                "headers": {"Retry-After": "31"},
                "times": 5,
            }
        ]
    )
    with pytest.raises(KalshiRateLimitError):
        KalshiHook(kalshi_connection(extra={"max_retries": 4})).get_total_resting_order_value()
    assert len(signed_calls(simulator)) == 1


@pytest.mark.slow
def test_max_attempts_lowers_the_connections_retries_and_never_raises_them(kalshi_connection, simulator):
    simulator.push_faults([{"status": 503, "times": 100}])
    with pytest.raises(KalshiServerError):
        KalshiHook(
            kalshi_connection(extra={"max_retries": 3}), max_attempts=2
        ).get_total_resting_order_value()
    assert len(signed_calls(simulator)) == 2
    simulator.clear_requests()
    with pytest.raises(KalshiServerError):
        KalshiHook(
            kalshi_connection(extra={"max_retries": 1}), max_attempts=10
        ).get_total_resting_order_value()
    assert len(signed_calls(simulator)) == 2


@pytest.mark.slow
def test_the_default_is_three_attempts_per_call(set_connection, kalshi_account, simulator):
    simulator.push_faults([{"status": 503, "times": 100}])
    conn_id = set_connection(
        "kalshi_defaults",
        "kalshi",
        login=kalshi_account.key_id,
        password=kalshi_account.private_pem.decode(),
        host=simulator.base_url,
    )
    with pytest.raises(KalshiServerError):
        KalshiHook(conn_id).get_total_resting_order_value()
    assert len(signed_calls(simulator)) == 3


# -- maintenance: the exchange's status after a retryable failure ------------------------------


def _signed(simulator) -> list:
    return [request for request in simulator.requests if request.signature is not None]


@pytest.mark.parametrize("max_retries", [0, 2, 4])
def test_a_paused_exchange_stops_the_call_after_one_signed_request(kalshi_connection, simulator, max_retries):
    """Whatever the retry settings: the first retryable failure reads /exchange/status (unsigned),
    which says the exchange is inactive, so no retry is sent and the pause carries Kalshi's
    estimated resume time."""
    simulator.exchange.start_maintenance("2026-12-10T10:00:00Z")
    hook = KalshiHook(kalshi_connection(extra={"max_retries": max_retries}))
    with pytest.raises(KalshiExchangePausedError) as paused:
        hook.get_resting_order_value()
    pause = paused.value.pause
    assert pause.estimated_resume_time == datetime(2026, 12, 10, 10, tzinfo=timezone.utc)
    assert "exchange_active false" in pause.reason and "503" in pause.reason
    assert not paused.value.retryable
    assert len(_signed(simulator)) == 1
    [status] = [request for request in simulator.requests if request.path.endswith("/exchange/status")]
    assert status.signature is None and status.key_id is None  # no key material goes to it


def test_an_active_exchange_leaves_the_retries_as_they_were(kalshi_connection, simulator):
    """A 503 while the status says active: the call retries and succeeds, one status read per failure."""
    simulator.push_faults([{"status": 503, "times": 2, "path": "/portfolio/balance"}])
    balance = KalshiHook(kalshi_connection(extra={"max_retries": 2})).get_balance()
    assert balance.balance_cents >= 0
    assert len(_signed(simulator)) == 3
    assert len([r for r in simulator.requests if r.path.endswith("/exchange/status")]) == 2


@pytest.mark.parametrize(
    "status_fault",
    [
        {"status": 500, "json": {"exchange_active": False}},  # an error status: not read as a pause
        {"status": 200, "json": {"exchange_active": "false"}},  # a string is no boolean
        {"status": 200, "json": {"exchange_active": False, "exchange_estimated_resume_time": "soon"}},
        {"status": 200, "body": "<html>maintenance</html>"},
        {"status": 200, "json": [False]},
        {"delay": 3, "status": 200, "json": {"exchange_active": False}},  # past the status read's bound
    ],
)
def test_a_status_that_cannot_be_trusted_never_stops_the_call(kalshi_connection, simulator, status_fault):
    """Only Kalshi's documented answer saying exchange_active false stops a call: anything else
    (an error, a wrong type, a bad resume time, a page, a hang) leaves the retries and the
    failure as they were."""
    simulator.push_faults(
        [
            {"status": 503, "path": "/portfolio/balance", "times": 2},
            {**status_fault, "path": "/exchange/status", "times": 2},
        ]
    )
    hook = KalshiHook(kalshi_connection(extra={"max_retries": 1, "timeout": 1}))
    with pytest.raises(KalshiError) as failed:
        hook.get_balance()
    assert not isinstance(failed.value, KalshiExchangePausedError)
    assert len(_signed(simulator)) == 2


def test_a_client_error_does_not_read_the_status(kalshi_connection, simulator):
    simulator.exchange.start_maintenance()
    simulator.push_faults([{"status": 404}])
    with pytest.raises(KalshiNotFoundError):
        KalshiHook(kalshi_connection()).get_balance()
    assert not [r for r in simulator.requests if r.path.endswith("/exchange/status")]


def test_reads_the_maintenance_windows_unsigned_in_utc(kalshi_connection, simulator):
    simulator.exchange.update(
        maintenance_windows=[
            {"start_datetime": "2026-12-24T08:00:00Z", "end_datetime": "2026-12-24T10:00:00Z"}
        ]
    )
    [window] = KalshiHook(kalshi_connection()).get_maintenance_windows()
    assert (window.start, window.end) == (
        datetime(2026, 12, 24, 8, tzinfo=timezone.utc),
        datetime(2026, 12, 24, 10, tzinfo=timezone.utc),
    )
    assert not _signed(simulator)


def test_the_test_button_reads_no_status_so_it_stays_one_bounded_attempt(kalshi_connection, simulator):
    simulator.exchange.start_maintenance()
    ok, message = KalshiHook(kalshi_connection(extra={"max_retries": 4})).test_connection()
    assert not ok and "503" in message
    assert [request.path.rpartition("/")[2] for request in simulator.requests] == ["balance"]


# --- every subaccount's balance ------------------------------------------------------------------


def test_reads_every_subaccounts_balance_per_shard_exactly(kalshi_connection, simulator, make_kalshi_account):
    two = [{"exchange_index": 2, "balance": "1.004321"}, {"exchange_index": 0, "balance": "3.0000"}]
    account = make_kalshi_account(
        subaccounts={1: 250000, 2: {"balance_breakdown": two, "updated_ts": 1_700_000_000}}
    )
    hook = KalshiHook(kalshi_connection(login=account.key_id, password=account.private_pem.decode()))
    answer = hook.get_subaccount_balances()
    assert answer.received_at is not None
    rows = [(r.subaccount_number, r.exchange_index, str(r.balance_dollars)) for r in answer.rows]
    assert rows[:4] == [
        (0, 0, "2000.000000"),
        (0, 1, "1500.000000"),
        (0, 2, "1000.000000"),
        (0, 3, "500.000000"),
    ]
    assert (2, 2, "1.004321") in rows and (2, 0, "3.000000") in rows
    assert answer.total_by_subaccount() == {0: Decimal("5000"), 1: Decimal("2500"), 2: Decimal("4.004321")}
    [request] = simulator.requests
    assert request.path == "/trade-api/v2/portfolio/subaccounts/balances" and request.signature_valid


def test_a_key_restricted_to_one_subaccount_is_refused_the_list_as_a_permission_error(
    kalshi_connection, simulator, make_kalshi_account
):
    """Kalshi: a restricted key "cannot ... manage subaccounts"; its 403 is permanent (no retry)."""
    account = make_kalshi_account(subaccounts={1: 250000}, restricted_subaccount=1)
    hook = KalshiHook(kalshi_connection(login=account.key_id, password=account.private_pem.decode()))
    with pytest.raises(KalshiPermissionError, match="restricted to a single sub-account") as refused:
        hook.get_subaccount_balances()
    assert refused.value.received_at is not None
    assert [r.status for r in simulator.requests] == [403]
    assert hook.get_balance().balance_dollars == Decimal("2500")  # its own subaccount's balance still reads
