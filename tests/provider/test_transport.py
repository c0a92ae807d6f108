"""The hook's HTTP exchange against a hostile server, over real HTTP on loopback.

Each class of fault from issue 10: redirects (never followed, nothing sent to the other host),
unbounded answers (a capped body, decoded bytes counted, bounded memory), slow answers (a
wall-clock deadline per attempt and per call, also for the Test button), and every way the
transport can fail (always a KalshiError with the right ``retryable``), with server text kept to
one bounded line.
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import socket
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_provider import exceptions
from kalshi_provider.exceptions import (
    KalshiConfigError,
    KalshiError,
    KalshiResponseError,
    KalshiTransportError,
)
from kalshi_provider.hooks import kalshi as hook_module
from kalshi_provider.hooks.kalshi import KalshiHook
from tests.provider.hostile import VALUE, Exchange, HostileServer, answer, gzip_bomb, reply

PATH = "/portfolio/summary/total_resting_order_value"
MiB = 1 << 20


@pytest.fixture(autouse=True)
def one_exchange_per_attempt(monkeypatch):
    """These tests bound one exchange. A hostile server here answers every request alike, so the
    hook's unsigned /exchange/status read after a retryable failure would be a second exchange with
    the same fault; that read and its own bound are tested in tests/provider/hooks/test_kalshi_hook.py."""
    monkeypatch.setattr(KalshiHook, "_stop_if_exchange_paused", lambda self, label, failure, deadline: None)


def _hook(kalshi_connection, server: HostileServer, **extra) -> KalshiHook:
    return KalshiHook(
        kalshi_connection(host=server.base_url, extra={"max_retries": 0, "timeout": 5, **extra})
    )


def _peak_memory(call) -> tuple[BaseException | None, int]:
    """Run ``call``; the exception it raised (or None) and the peak of Python allocations meanwhile."""
    tracemalloc.start()
    try:
        call()
    except BaseException as err:  # noqa: BLE001 - returned to the test
        raised = err
    else:
        raised = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


# -- 1. redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ],
)
def test_a_redirect_is_refused_and_the_other_host_gets_nothing(kalshi_connection, status):
    with HostileServer(reply(answer(body=VALUE))) as elsewhere:
        location = f"http://localhost:{elsewhere.port}/trade-api/v2{PATH}"
        with HostileServer(reply(answer(status, headers={"Location": location}))) as server:
            hook = _hook(kalshi_connection, server, max_retries=3)
            with pytest.raises(KalshiError) as caught:
                hook.get_total_resting_order_value()
    message = str(caught.value)
    assert type(caught.value).__name__ == "KalshiRedirectError"
    assert status.split()[0] in message and "to host localhost" in message
    assert "not followed" in message
    assert type(caught.value) in exceptions.PERMANENT_ERRORS  # the DAG fails at once
    assert len(server.requests) == 1  # not retried either
    assert elsewhere.exchanges == []  # the other host was not even connected to


@pytest.mark.parametrize(
    ("location", "shown_host"),
    [
        ("http://evil.example/trade-api/v2/x", "evil.example"),  # https -> plain http elsewhere
        ("/other/path", "127.0.0.1"),  # relative: the same host, another path
        ("https://ev\x1bil.example/", "ev\ufffdil.example"),  # no terminal escape reaches the log
        (None, None),
    ],
)
def test_the_redirect_message_names_the_location_host(kalshi_connection, location, shown_host):
    headers = {"Location": location} if location else {}
    with HostileServer(reply(answer("302 Found", headers=headers))) as server:
        with pytest.raises(KalshiError, match="redirect") as caught:
            _hook(kalshi_connection, server).get_total_resting_order_value()
    message = str(caught.value)
    assert (f"to host {shown_host}" if shown_host else "without a usable Location") in message
    assert "\x1b" not in message
    assert len(server.requests) == 1


def test_a_redirect_with_an_endless_body_is_refused_without_reading_it(kalshi_connection):
    def endless_redirect(exchange) -> None:
        head = answer(
            "302 Found", headers={"Location": "https://evil.example/", "Content-Length": str(300 * MiB)}
        )
        exchange.send(head.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
        exchange.stream(itertools.repeat(b"x" * 65536, 300 * 16))

    with HostileServer(endless_redirect) as server:
        hook = _hook(kalshi_connection, server)
        hook.get_conn()
        raised, peak = _peak_memory(hook.get_total_resting_order_value)
        [exchange] = server.exchanges
        exchange.done.wait(30)
    assert type(raised).__name__ == "KalshiRedirectError", raised
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert exchange.client_left and exchange.sent < 100 * MiB


# -- 2. unbounded answers --------------------------------------------------------------------------


def _endless_json(exchange) -> None:
    """A 300 MB answer that is valid JSON: the old hook read it whole (727 MB of memory)."""
    size = 300 * MiB
    prefix, suffix = b'{"total_resting_order_value": 123456, "pad": "', b'"}'
    padding = size - len(prefix) - len(suffix)
    head = answer(headers={"Content-Length": str(size)}).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    exchange.send(head + prefix)
    exchange.stream(itertools.repeat(b" " * 65536, padding // 65536))
    exchange.send(b" " * (padding % 65536) + suffix)


def test_a_huge_body_stops_at_the_cap_with_bounded_memory(kalshi_connection):
    with HostileServer(_endless_json) as server:
        hook = _hook(kalshi_connection, server)
        hook.get_conn()  # key loading is not what is measured
        raised, peak = _peak_memory(hook.get_total_resting_order_value)
        [exchange] = server.exchanges
        exchange.done.wait(30)
    assert isinstance(raised, KalshiResponseError), raised
    assert "more than 64 KiB" in str(raised)
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert exchange.client_left and exchange.sent < 100 * MiB  # the rest was never read


def _deflate_bomb(mib: int) -> bytes:
    squeezer = zlib.compressobj(9)
    block = b"\0" * MiB
    return b"".join(squeezer.compress(block) for _ in range(mib)) + squeezer.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("gzip", lambda: gzip_bomb(2048)), ("deflate", lambda: _deflate_bomb(256))],
    ids=["gzip-2MB-to-2GiB", "deflate-to-256MiB"],
)
def test_a_compression_bomb_stops_at_the_cap_with_bounded_memory(kalshi_connection, encoding, body):
    bomb = body()
    assert len(bomb) < 3 * MiB
    with HostileServer(reply(answer(body=bomb, headers={"Content-Encoding": encoding}))) as server:
        hook = _hook(kalshi_connection, server)
        hook.get_conn()
        raised, peak = _peak_memory(hook.get_total_resting_order_value)
    assert isinstance(raised, KalshiResponseError), raised
    assert "more than 64 KiB (after decompression)" in str(raised)
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_an_error_answer_with_a_huge_body_is_cut_not_refused(kalshi_connection):
    def endless_error(exchange) -> None:
        head = answer("503 Service Unavailable", headers={"Content-Length": str(300 * MiB)})
        exchange.send(head.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
        exchange.stream(itertools.repeat(b"<html>" * 10000, 300 * MiB // 60000))

    with HostileServer(endless_error) as server:
        with pytest.raises(exceptions.KalshiServerError, match="Kalshi API error 503: <html>") as caught:
            _hook(kalshi_connection, server).get_total_resting_order_value()
    assert len(str(caught.value)) < 400


def _full_answer() -> bytes:
    return answer(body=VALUE)


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("phase", ["status-and-headers", "body"])
def test_a_trickling_server_cannot_outlive_the_attempt_deadline(kalshi_connection, phase):
    """One byte every 50 ms: every socket read succeeds, so only a wall-clock deadline ends it."""
    full = _full_answer()
    split = 0 if phase == "status-and-headers" else full.index(b"\r\n\r\n") + 4

    def trickle(exchange) -> None:
        exchange.send(full[:split])
        exchange.trickle(full[split:], 0.05)

    with HostileServer(trickle) as server:
        with pytest.raises(KalshiTransportError, match=f"did not answer GET {PATH} within 1 s"):
            _hook(kalshi_connection, server, timeout=1).get_total_resting_order_value()
        [exchange] = server.exchanges
        exchange.done.wait(30)
    assert exchange.client_left and exchange.sent < len(full)  # the client hung up first


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_trickled_tls_handshake_cannot_outlive_the_deadline(kalshi_connection):
    """An https Base URL whose server drips a never-ending TLS record: the handshake is bounded too."""
    record = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000

    def drip(exchange) -> None:
        exchange.trickle(record, 0.05)

    with HostileServer(drip, read_head=False) as server:
        host = f"https://127.0.0.1:{server.port}/trade-api/v2"
        hook = KalshiHook(kalshi_connection(host=host, extra={"max_retries": 0, "timeout": 1}))
        with pytest.raises(KalshiTransportError, match="did not answer .* within 1 s"):
            hook.get_total_resting_order_value()
        [exchange] = server.exchanges
        exchange.done.wait(30)
    assert exchange.client_left and exchange.sent < len(record)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_after_a_slow_connect_the_tls_handshake_gets_only_the_time_left(kalshi_connection):
    """The listener's queue is full, so the client's SYN is dropped until one resent after 1.5 s
    gets through (2 or 3 s in, as the kernel resends); then the handshake trickles. The attempt
    still ends at its 4 s, not 4 s after the connect: Python gives a handshake the socket's
    whole timeout."""
    record = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    filler = socket.create_connection(listener.getsockname())  # takes the accept queue's one place
    accepted_at: list[float] = []

    def serve() -> None:
        time.sleep(1.5)
        listener.accept()[0].close()
        client, _ = listener.accept()
        accepted_at.append(time.monotonic())
        with client:
            Exchange(client).trickle(record, 0.05)

    server = threading.Thread(target=serve, daemon=True)
    hook = KalshiHook(
        kalshi_connection(
            host=f"https://127.0.0.1:{listener.getsockname()[1]}/trade-api/v2",
            extra={"max_retries": 0, "timeout": 4},
        )
    )
    hook.get_conn()  # the connection and key are read before the clock starts
    with listener, filler:
        server.start()
        start = time.monotonic()
        with pytest.raises(KalshiTransportError, match="did not answer .* within 4 s"):
            hook.get_total_resting_order_value()
        elapsed = time.monotonic() - start
        server.join(30)
    assert accepted_at and accepted_at[0] - start > 1.5  # the connect took a good part of the attempt
    assert elapsed < 5.0  # connect + 4 s if the handshake had a timeout of its own


@pytest.mark.timeout(120)
def test_an_endless_body_that_decodes_to_nothing_cannot_outlive_the_deadline(kalshi_connection):
    """Empty gzip members as fast as the socket takes them: every read returns at once and the
    decoded body never grows, so neither a read timeout nor the size cap would end it."""
    members = gzip.compress(b"") * 1000

    def flood(exchange) -> None:
        exchange.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n")
        exchange.stream(itertools.repeat(members))

    with HostileServer(flood) as server:
        with pytest.raises(KalshiTransportError, match=f"did not answer GET {PATH} within 1 s"):
            _hook(kalshi_connection, server, timeout=1).get_total_resting_order_value()
        [exchange] = server.exchanges
        exchange.done.wait(30)
    assert exchange.client_left


@pytest.mark.timeout(120)
def test_the_deadline_holds_behind_an_http_proxy(kalshi_connection, monkeypatch):
    """Through a proxy from HTTP_PROXY (requests' own proxy support), the same cut applies."""
    full = _full_answer()
    with HostileServer(lambda exchange: exchange.trickle(full, 0.05)) as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.root_url)
        hook = KalshiHook(
            kalshi_connection(host="http://127.0.0.1:9/trade-api/v2", extra={"max_retries": 0, "timeout": 1})
        )
        with pytest.raises(KalshiTransportError, match="did not answer .* within 1 s"):
            hook.get_total_resting_order_value()
        [exchange] = proxy.exchanges
        exchange.done.wait(30)
    assert exchange.head.startswith(b"GET http://127.0.0.1:9/trade-api/v2" + PATH.encode())
    assert exchange.client_left and exchange.sent < len(full)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_call_deadline_bounds_all_attempts_together(kalshi_connection, monkeypatch):
    monkeypatch.setattr(hook_module, "CALL_DEADLINE_SECONDS", 2.5)
    full = _full_answer()
    with HostileServer(lambda exchange: exchange.trickle(full, 0.05)) as server:
        with pytest.raises(KalshiTransportError, match="did not answer"):
            _hook(kalshi_connection, server, timeout=1, max_retries=4).get_total_resting_order_value()
        attempts = len(server.exchanges)
    assert 1 <= attempts <= 3  # 4 retries allowed, but the call's deadline came first


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_test_button_makes_one_bounded_attempt(kalshi_connection):
    """It runs in the API server: one attempt within the connection's timeout, retries or not.

    Called from a worker thread, as the API server runs it: no signal can reach it there."""
    full = _full_answer()
    with HostileServer(lambda exchange: exchange.trickle(full, 0.05)) as server:
        hook = _hook(kalshi_connection, server, timeout=1, max_retries=4)
        with ThreadPoolExecutor(1) as pool:
            ok, message = pool.submit(hook.test_connection).result(timeout=60)
        attempts = len(server.exchanges)
    assert not ok and "did not answer GET /portfolio/balance within 1 s" in message
    assert attempts == 1


def test_a_kept_alive_connection_still_serves_the_next_call(kalshi_connection, simulator):
    """The deadline machinery leaves keep-alive alone: three calls, one TCP connection."""
    hook = KalshiHook(kalshi_connection())
    for _ in range(3):
        assert hook.get_total_resting_order_value() == 123456
    manager = hook.get_conn().get_adapter(simulator.base_url).poolmanager
    pools = [manager.pools[key] for key in manager.pools.keys()]
    assert [pool.num_connections for pool in pools] == [1]


# -- 5. every failure is a KalshiError with the right retryable flag --------------------------------


def _truncated_chunked(exchange) -> None:
    exchange.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10\r\n" + VALUE[:16] + b"\r\n40\r\n" + VALUE[16:30]
    )


def _truncated_length(exchange) -> None:
    exchange.send(answer(body=VALUE).replace(b"Content-Length: %d" % len(VALUE), b"Content-Length: 500"))


@pytest.mark.slow
@pytest.mark.parametrize("script", [_truncated_chunked, _truncated_length], ids=["chunked", "content-length"])
def test_a_truncated_body_is_a_transient_transport_error_and_is_retried(kalshi_connection, script):
    with HostileServer(script) as server:
        with pytest.raises(KalshiTransportError, match="broke off before its end") as caught:
            _hook(kalshi_connection, server, max_retries=2).get_total_resting_order_value()
    assert caught.value.retryable
    assert len(server.requests) == 3


def test_a_body_that_is_not_what_its_content_encoding_says_is_a_response_error(kalshi_connection):
    broken = answer(body=b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    with HostileServer(reply(broken)) as server:
        with pytest.raises(KalshiResponseError, match="could not be decompressed") as caught:
            _hook(kalshi_connection, server, max_retries=2).get_total_resting_order_value()
    assert not caught.value.retryable  # the same bytes would come again; the task may retry later
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/trade-api/v2/x",
        "gopher://127.0.0.1/x",
        "file:///etc/passwd",
        "http://[::1/x",
        "http://",
    ],
)
def test_an_unsupported_scheme_or_broken_url_is_a_config_error(url):
    from kalshi_provider import transport

    with pytest.raises(KalshiConfigError, match="could not be sent") as caught:
        transport.exchange(
            transport.new_session(), "GET", url, label="GET /x", timeout=1, deadline=time.monotonic() + 10
        )
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "value", ["ключ-ид", "s3cr3t\r\nX-Injected: 1", " s3cr3t-leading", "s3cr3t-trailing\n"]
)
def test_a_header_http_cannot_carry_is_a_config_error_that_does_not_echo_it(simulator, value):
    from kalshi_provider import transport

    session = transport.new_session()
    session.headers["X-Kalshi-Test"] = value
    with pytest.raises(KalshiConfigError) as caught:
        transport.exchange(
            session,
            "GET",
            simulator.base_url + PATH,
            label="GET /x",
            timeout=1,
            deadline=time.monotonic() + 10,
        )
    assert value.strip()[:6] not in str(caught.value)


def test_an_unexpected_error_is_a_kalshi_error_without_its_text(simulator):
    from kalshi_provider import transport

    def failing_auth(request):
        raise RuntimeError("the secret value of some field")

    session = transport.new_session()
    session.auth = failing_auth
    with pytest.raises(KalshiError) as caught:
        transport.exchange(
            session,
            "GET",
            simulator.base_url + PATH,
            label="GET /x",
            timeout=1,
            deadline=time.monotonic() + 10,
        )
    assert "RuntimeError" in str(caught.value) and "secret" not in str(caught.value)
    assert not caught.value.retryable


_ANSWERS = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda status, headers, body, cut: answer(status, body, headers)[:cut],
        st.sampled_from(
            [
                "200 OK",
                "204 No Content",
                "302 Found",
                "404 Not Found",
                "429 X",
                "500 X",
                "999 Odd",
                "20 X",
                "abc",
            ]
        ),
        st.dictionaries(
            st.sampled_from(
                [
                    "Content-Encoding",
                    "Content-Length",
                    "Transfer-Encoding",
                    "Location",
                    "Retry-After",
                    "Content-Type",
                ]
            ),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=20),
            max_size=3,
        ),
        st.sampled_from([VALUE, b"", b"{", b"\x1f\x8b\x08\x00", b"[1,2]", gzip_bomb(1)]),
        st.integers(min_value=1, max_value=2000),
    ),
)


def test_whatever_a_server_sends_the_hook_returns_a_value_or_raises_a_kalshi_error(kalshi_connection):
    with HostileServer(reply(b"")) as server:
        hook = _hook(kalshi_connection, server, timeout=2)  # one hook: its key is loaded once

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(raw=_ANSWERS)
        def any_answer(raw: bytes) -> None:
            server.script = reply(raw)
            try:
                hook.get_resting_order_value()
            except KalshiError as err:
                assert "\n" not in str(err) and "\r" not in str(err)
                assert isinstance(err.retryable, bool)

        any_answer()


# -- 4. server text reaching a message or a log line -----------------------------------------------


def test_server_text_is_one_bounded_line_in_messages_and_logs(kalshi_connection, capfd):
    body = (
        b'{"error": {"code": "bad\\r\\nINJECTED-CODE", "message": "line one\\r\\nINJECTED: forged log line'
        b'\\u001b[31m", "details": "' + b"d\\n" * 5000 + b'"}}'
    )
    raw = answer("503 Service\x1b[2J Unavailable", body)
    with HostileServer(reply(raw)) as server:
        with pytest.raises(exceptions.KalshiServerError) as caught:
            _hook(kalshi_connection, server, max_retries=1).get_total_resting_order_value()
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert "line one INJECTED: forged log line" in message
    assert len(message) < 600
    # Outside a task, Airflow's structlog setup prints hook logs to the console: one line each.
    output = capfd.readouterr()
    log = output.out + output.err
    assert "retrying in" in log and "line one INJECTED: forged log line" in log
    assert "\x1b[31m" not in log and "\x1b[2J" not in log
    assert not any(line.lstrip().startswith("INJECTED") for line in log.splitlines())


def test_the_connection_error_names_the_reason_not_urllib3s_text(kalshi_connection):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        hook = KalshiHook(kalshi_connection(host=f"http://127.0.0.1:{port}", extra={"max_retries": 0}))
        with pytest.raises(KalshiTransportError) as caught:
            hook.get_total_resting_order_value()
    assert str(caught.value) == (
        f"Could not reach Kalshi at http://127.0.0.1:{port} for GET {PATH}: Connection refused. "
        "Check the host, DNS and network access."
    )


def test_requests_itself_is_not_changed_for_other_code(simulator):
    """The watched adapter lives in the hook's sessions only."""
    assert type(requests.Session().get_adapter("http://x")) is requests.adapters.HTTPAdapter


# -- proxies from the worker's environment (issue 17) ----------------------------------------------

#: Every variable urllib (hence requests) reads a proxy from, in both cases.
PROXY_VARIABLES = [
    name
    for scheme in ("http", "https", "all", "no")
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
]
#: A Base URL nobody listens at: a request that gets past the proxy fails there.
NOWHERE = "https://127.0.0.1:9/trade-api/v2"


@pytest.fixture
def proxy_env(monkeypatch):
    """A clean slate of proxy variables; ``proxy_env(NAME=value, ...)`` sets real ones."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def set_proxies(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_proxies


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound (nobody else takes it), never listening."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _proxied_hook(kalshi_connection, host: str = NOWHERE) -> KalshiHook:
    return KalshiHook(kalshi_connection(host=host, extra={"max_retries": 0, "timeout": 5}))


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])
def test_a_socks_proxy_without_socks_support_is_a_transport_error_naming_its_variable(
    kalshi_connection, proxy_env, variable
):
    """Not a config error blaming the connection: the worker's environment set the proxy."""
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed here: SOCKS proxies are supported")
    proxy_env(**{variable: "socks5://proxy-user:proxy-secret@127.0.0.1:1080"})
    with pytest.raises(KalshiTransportError) as caught:
        _proxied_hook(kalshi_connection).get_total_resting_order_value()
    message = str(caught.value)
    assert f"the proxy socks5://127.0.0.1:1080 set by {variable}" in message
    assert "SOCKS support is not installed" in message and "Base URL" not in message
    assert "proxy-secret" not in message and "proxy-user" not in message
    assert caught.value.retryable


def test_the_lower_case_variable_wins_as_in_urllib_and_is_the_one_named(kalshi_connection, proxy_env):
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed here: SOCKS proxies are supported")
    proxy_env(HTTPS_PROXY="socks5://127.0.0.1:1081", https_proxy="socks5://127.0.0.1:1082")
    with pytest.raises(KalshiTransportError, match="socks5://127.0.0.1:1082 set by https_proxy:"):
        _proxied_hook(kalshi_connection).get_total_resting_order_value()


@pytest.mark.parametrize(
    ("value", "problem"),
    [("ftp://127.0.0.1:21", "its scheme is not http, https or socks"), ("http://:3128", "no usable host")],
)
def test_a_proxy_url_requests_cannot_use_is_a_transport_error_naming_its_variable(
    kalshi_connection, proxy_env, value, problem
):
    proxy_env(HTTPS_PROXY=value)
    with pytest.raises(KalshiTransportError, match=problem) as caught:
        _proxied_hook(kalshi_connection).get_total_resting_order_value()
    assert "set by HTTPS_PROXY" in str(caught.value) and "Base URL" not in str(caught.value)


def test_an_unreachable_proxy_is_named_with_its_variable(kalshi_connection, proxy_env, closed_port):
    proxy_env(HTTP_PROXY=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(KalshiTransportError) as caught:
        _proxied_hook(kalshi_connection, "http://127.0.0.1:9/trade-api/v2").get_total_resting_order_value()
    assert str(caught.value).startswith(
        f"GET {PATH} could not go through the proxy http://127.0.0.1:{closed_port} set by HTTP_PROXY: "
        "Connection refused."
    )


def test_a_proxy_that_refuses_the_tunnel_is_named_with_its_variable(kalshi_connection, proxy_env):
    """An egress proxy answering CONNECT with 403 (an https Base URL goes through a tunnel)."""
    refusal = answer("403 Forbidden", b"<html>Blocked by policy</html>", {"Content-Type": "text/html"})
    with HostileServer(reply(refusal)) as proxy:
        root_url = proxy.root_url
        proxy_env(https_proxy=root_url)
        with pytest.raises(KalshiTransportError) as caught:
            _proxied_hook(kalshi_connection).get_total_resting_order_value()
        heads = proxy.requests
    assert heads[0].startswith(b"CONNECT 127.0.0.1:9 ")
    message = str(caught.value)
    assert f"through the proxy {root_url} set by https_proxy" in message
    assert "it answered CONNECT with HTTP 403" in message and "Blocked by policy" not in message


def test_a_proxys_403_page_to_a_plain_request_is_no_kalshi_refusal(kalshi_connection, proxy_env):
    """Through an HTTP proxy a plain-http request gets the proxy's own answer: its HTML 403 is a
    KalshiForeignRefusalError (issue 17, class 9), never "not an FCM member"."""
    refusal = answer("403 Forbidden", b"<html>Blocked by policy</html>", {"Content-Type": "text/html"})
    with HostileServer(reply(refusal)) as proxy:
        proxy_env(HTTP_PROXY=proxy.root_url)
        with pytest.raises(exceptions.KalshiForeignRefusalError, match="did not come from Kalshi's API"):
            _proxied_hook(
                kalshi_connection, "http://127.0.0.1:9/trade-api/v2"
            ).get_total_resting_order_value()


def test_no_proxy_is_respected_as_requests_does(kalshi_connection, simulator, proxy_env):
    """The simulator's host is in NO_PROXY: the unusable SOCKS proxy is never involved."""
    proxy_env(ALL_PROXY="socks5://127.0.0.1:1080", NO_PROXY="localhost,127.0.0.1")
    assert _proxied_hook(kalshi_connection, simulator.base_url).get_total_resting_order_value() == 123456
    assert len(simulator.requests) == 1


def test_the_test_button_names_the_proxy_variable(kalshi_connection, proxy_env, closed_port):
    proxy_env(ALL_PROXY=f"http://127.0.0.1:{closed_port}")
    ok, message = _proxied_hook(kalshi_connection).test_connection()
    assert not ok and "set by ALL_PROXY: Connection refused" in message
