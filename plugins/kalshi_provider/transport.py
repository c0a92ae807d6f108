"""One bounded HTTP exchange with Kalshi: no redirects, a capped body, a wall-clock deadline.

``requests`` and urllib3 do the HTTP; this module adds the three bounds they lack, and turns
everything they (or ``http.client`` and the socket layer) can raise into the provider's own
exceptions:

- a 3xx is never followed (Kalshi never redirects an API call; following one would carry the
  signed headers to another host): it is a :class:`KalshiRedirectError`;
- the body is streamed and its *decoded* bytes counted, so neither a huge body nor a gzip bomb
  costs more than :data:`~kalshi_provider.limits.MAX_BODY_BYTES` of memory;
- ``requests``' timeout bounds each socket read, not the exchange: a server that trickles one
  byte a second would keep it alive for ever. A watchdog thread shuts the exchange's socket
  down at its deadline, which ends whatever read or handshake is waiting on it.

A proxy comes from the worker's environment (``HTTPS_PROXY``, ``ALL_PROXY``, ..., minus
``NO_PROXY``), as ``requests`` picks it. It is looked up before the request, so a proxy that
cannot be used (a scheme without support installed, an unusable URL) and a proxy that cannot be
reached or refuses are transport errors naming the variable that set it: never a fault of the
connection's Base URL or key.
"""

from __future__ import annotations

import functools
import heapq
import http.client
import itertools
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from kalshi_provider.display import shown
from kalshi_provider.exceptions import (
    KalshiConfigError,
    KalshiError,
    KalshiRedirectError,
    KalshiResponseError,
    KalshiTransportError,
)
from kalshi_provider.limits import MAX_BODY_BYTES

_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer: status, headers, the decoded body (at most the cap) and when it
    arrived."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    #: When the whole answer had been read (UTC, this machine's clock): what a reading is stamped with.
    received_at: datetime
    #: True when an error answer's body was longer than the cap and was cut there.
    truncated: bool = False


def new_session() -> requests.Session:
    """A session whose connections the exchange's watchdog can cut, and that never redirects."""
    session = _NoRedirectSession()
    adapter = _WatchedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class _NoRedirectSession(requests.Session):
    """A session that does not even look at a Location header.

    With ``allow_redirects=False`` requests still prepares the next request of a redirect (for
    ``Response.next``) and reads the redirect's whole body first, without any bound.
    """

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


def exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    label: str,
    timeout: float,
    deadline: float,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    max_body: int = MAX_BODY_BYTES,
) -> Answer:
    """Send one request and read its whole answer, within ``deadline`` (``time.monotonic()``).

    :param label: What the request is, for messages (e.g. ``GET /portfolio/balance``).
    :param timeout: The attempt's time limit as configured, for messages.
    :raises KalshiError: a subclass for every way the exchange can fail.
    """
    origin = _origin(url)
    proxy = environment_proxy(session, url)
    if proxy is not None:
        proxy.check_usable(label)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _deadline_error(label, origin, timeout, proxy)
    with _WATCHDOG.armed(deadline) as alarm:
        try:
            response = session.request(
                method,
                url,
                params=params,
                json=json,
                timeout=remaining,
                allow_redirects=False,
                stream=True,
            )
            try:
                if 300 <= response.status_code < 400:
                    raise KalshiRedirectError(
                        response.status_code, _location_host(response, url), label, origin
                    )
                body, truncated = _read_capped(response, max_body, label, origin)
                received_at = datetime.now(timezone.utc)
                status, headers = response.status_code, response.headers
            finally:
                response.close()
        except KalshiError:
            raise
        except Exception as err:  # noqa: BLE001 - every other failure becomes a KalshiError
            if alarm.fired:
                raise _deadline_error(label, origin, timeout, proxy) from None
            raise _translate(err, label, origin, timeout, proxy) from None
        if alarm.fired:
            # Cut mid-answer, http.client may take what it had for the whole answer (headers
            # without their end, a body without its framing): never use it.
            raise _deadline_error(label, origin, timeout, proxy)
    return Answer(status, headers, body, received_at, truncated)


def _read_capped(response: requests.Response, cap: int, label: str, origin: str) -> tuple[bytes, bool]:
    """The decoded body, counted while it streams; a 2xx over the cap is refused, an error
    answer's body is cut (only a snippet of it is ever shown)."""
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > cap:
            if response.status_code >= 400:
                return bytes(body[:cap]), True
            raise KalshiResponseError(
                f"{origin} answered {label} with more than {cap // 1024} KiB (after decompression); "
                "Kalshi's answer is under 1 KiB, so this is not Kalshi's: check the connection's Base URL"
            )
    return bytes(body), False


def _origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: the request fails with a config error
        return "the Base URL"
    return shown(f"{parts.scheme}://{parts.netloc}", 120)


def _location_host(response: requests.Response, url: str) -> str | None:
    location = response.headers.get("Location")
    if not location:
        return None
    try:
        host = urlsplit(location).hostname or urlsplit(url).hostname
    except ValueError:
        return None
    return shown(host, 100) if host else None


def _deadline_error(label: str, origin: str, timeout: float, proxy: Proxy | None) -> KalshiTransportError:
    through = f", through {proxy.described}" if proxy else ""
    return KalshiTransportError(
        f"Kalshi did not answer {label} within {timeout:g} s ({origin}{through}); raise the connection's "
        "'timeout' extra if this persists"
    )


def _translate(err: Exception, label: str, origin: str, timeout: float, proxy: Proxy | None) -> KalshiError:
    """The provider's exception for anything requests, urllib3, http.client or a socket raised.

    Messages name the class of the problem and an errno-style reason, never the original text:
    that text can hold a request header or URL, i.e. a connection field's value.
    """
    if isinstance(err, requests.Timeout) or any(
        isinstance(cause, urllib3.exceptions.ReadTimeoutError) for cause in _chain(err)
    ):
        return _deadline_error(label, origin, timeout, proxy)
    if proxy is not None and (proxy.is_socks or _is_proxy_error(err)):
        # Every connection failure through a SOCKS proxy is one of reaching it; urllib3 marks
        # the others (connecting to an HTTP proxy, its refusal of the tunnel) as ProxyError.
        return KalshiTransportError(
            f"{label} could not go through {proxy.described}: {_proxy_reason(err)}. Check that "
            f"proxy, or the {proxy.variable} setting (NO_PROXY lists hosts that skip it)"
        )
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return KalshiTransportError(
            f"Kalshi's answer to {label} broke off before its end ({origin}); a network or proxy fault"
        )
    if isinstance(err, requests.exceptions.ContentDecodingError):
        return KalshiResponseError(
            f"Kalshi's answer to {label} could not be decompressed: its Content-Encoding does not match "
            f"its body ({origin}); a broken proxy or not Kalshi"
        )
    if isinstance(
        err,
        (
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidURL,
            requests.exceptions.URLRequired,
            requests.exceptions.InvalidHeader,
            requests.exceptions.InvalidJSONError,
            urllib3.exceptions.LocationValueError,
            UnicodeError,
            ValueError,
        ),
    ):
        return KalshiConfigError(
            f"{label} to {origin} could not be sent ({type(err).__name__}): the connection's Base URL or "
            "API key ID holds something HTTP cannot carry; check them"
        )
    if isinstance(
        err, (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
    ):
        return KalshiTransportError(
            f"Could not reach Kalshi at {origin} for {label}: {_reason(err)}. "
            "Check the host, DNS and network access."
        )
    return KalshiError(f"Unexpected {type(err).__name__} while sending {label} to {origin}")


def _is_proxy_error(err: BaseException) -> bool:
    return any(
        isinstance(cause, (requests.exceptions.ProxyError, urllib3.exceptions.ProxyError))
        for cause in _chain(err)
    )


#: http.client's text when a proxy answers CONNECT with anything but 200; only the status is kept
#: (the rest is the proxy's own reason phrase).
_TUNNEL_REFUSED = re.compile(r"Tunnel connection failed: (\d{3})")


def _proxy_reason(err: BaseException) -> str:
    for cause in _chain(err):
        refused = (
            _TUNNEL_REFUSED.match(str(cause)) if isinstance(cause, OSError) and not cause.errno else None
        )
        if refused:
            status = refused.group(1)
            return f"the proxy refused to open a tunnel to Kalshi (it answered CONNECT with HTTP {status})"
    return _reason(err)


def _reason(err: BaseException) -> str:
    """A short, fixed-vocabulary reason from the exception chain (e.g. 'Connection refused')."""
    for cause in _chain(err):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"its TLS certificate could not be verified ({shown(cause.verify_message, 80)})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({shown(cause.reason or type(cause).__name__, 60)})"
        if isinstance(cause, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(cause, (TimeoutError, socket.timeout)):
            return "the connection timed out"
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        if isinstance(cause, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(cause, http.client.HTTPException):
            return f"the answer is not valid HTTP ({type(cause).__name__})"
    return type(err).__name__


def _chain(err: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, innermost last; urllib3 keeps some in ``.reason``/``args``."""
    seen: set[int] = set()
    queue = [err]
    while queue and len(seen) < 32:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        queue.extend(item for item in linked if isinstance(item, BaseException))


# -- the proxy the environment sets ---------------------------------------------------------------

_SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")


@dataclass(frozen=True)
class Proxy:
    """The proxy ``requests`` will use for a URL, and the environment variable that set it."""

    #: The proxy URL as set, with ``http://`` added when it has no scheme (as requests does).
    #: Never shown: it may hold ``user:password@``.
    url: str
    #: e.g. ``HTTPS_PROXY``, ``https_proxy`` or ``ALL_PROXY``.
    variable: str

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0].lower()

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    @property
    def described(self) -> str:
        """``the proxy socks5://host:port set by ALL_PROXY``, without credentials."""
        try:
            parts = urllib3.util.parse_url(self.url)
            where = shown(
                f"{parts.scheme}://{parts.host or ''}" + (f":{parts.port}" if parts.port else ""), 100
            )
        except (urllib3.exceptions.LocationParseError, ValueError):
            where = "(an unusable URL, not shown)"
        return f"the proxy {where} set by {self.variable}"

    def check_usable(self, label: str) -> None:
        """Refuse, before sending, a proxy requests cannot use: its failure would otherwise blame
        the connection's Base URL."""
        problem = None
        try:
            host = urllib3.util.parse_url(self.url).host
        except (urllib3.exceptions.LocationParseError, ValueError):
            host = None
        if not host:
            problem = "its URL has no usable host"
        elif self.is_socks and self.scheme not in _SOCKS_SCHEMES:
            problem = f"its scheme is not one of {', '.join(_SOCKS_SCHEMES)}"
        elif self.is_socks and not _socks_support():
            problem = (
                "SOCKS support is not installed on this worker (install 'requests[socks]', i.e. "
                "PySocks, to use a SOCKS proxy)"
            )
        elif not self.is_socks and self.scheme not in ("http", "https"):
            problem = "its scheme is not http, https or socks"
        if problem:
            raise KalshiTransportError(
                f"{label} could not be sent through {self.described}: {problem}. Fix or unset "
                f"{self.variable} in the worker's environment, or list Kalshi's host in NO_PROXY"
            )


def environment_proxy(session: requests.Session, url: str) -> Proxy | None:
    """The proxy ``session`` will use for ``url`` from the environment, as requests picks it
    (``NO_PROXY`` respected), with the variable that set it; None when it goes direct."""
    if not session.trust_env:
        return None
    try:
        proxies = requests.utils.get_environ_proxies(url, no_proxy=None)
        chosen = requests.utils.select_proxy(url, proxies)
        hostname = urlsplit(url).hostname
    except ValueError:  # a URL requests refuses anyway: the request fails with its own error
        return None
    if not chosen:
        return None
    scheme = urlsplit(url).scheme
    keys = [f"{scheme}://{hostname}", scheme, f"all://{hostname}", "all"] if hostname else [scheme, "all"]
    key = next((key for key in keys if proxies.get(key) == chosen), "all")
    return Proxy(requests.utils.prepend_scheme_if_needed(chosen, "http"), _variable_for(key, chosen))


def _variable_for(key: str, value: str) -> str:
    """The environment variable urllib read ``key``'s proxy from: ``<key>_proxy`` in any case, the
    lower-case one first (urllib's own precedence)."""
    name = f"{key}_proxy"
    if os.environ.get(name) == value:
        return name
    for variable, setting in os.environ.items():
        if variable.lower() == name and setting == value:
            return variable
    return "the system's proxy settings"


@functools.cache
def _socks_support() -> bool:
    """Whether urllib3's SOCKS support imports (it needs PySocks), as requests checks it."""
    import importlib.util

    return importlib.util.find_spec("socks") is not None


# -- cutting a connection at its deadline ----------------------------------------------------------


class _Alarm:
    """One exchange's deadline; the connections it used are cut when it fires.

    It keeps the connections (whose ``sock`` is the raw socket during a TLS handshake) and every
    socket seen on them: ``http.client`` hands the socket to the response and sets the
    connection's ``sock`` to None when the answer says ``Connection: close``.
    """

    __slots__ = ("when", "fired", "cancelled", "connections", "sockets", "lock")

    def __init__(self, when: float) -> None:
        self.when = when
        self.fired = False
        self.cancelled = False
        self.connections: list[HTTPConnection] = []
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def watch(self, connection: HTTPConnection) -> None:
        with self.lock:
            if connection not in self.connections:
                self.connections.append(connection)
            if connection.sock is not None and connection.sock not in self.sockets:
                self.sockets.append(connection.sock)
            if self.fired:
                self._cut()

    def fire(self) -> None:
        with self.lock:
            if self.cancelled:
                return
            self.fired = True
            self._cut()

    def _cut(self) -> None:
        """Shut the sockets down: a read or handshake blocked on one returns at once."""
        current = [connection.sock for connection in self.connections if connection.sock is not None]
        for sock in [*self.sockets, *current]:
            try:
                # The plain socket's shutdown, also for a TLS socket: SSLSocket.shutdown would
                # drop its SSL object under the reading thread. A closed socket raises OSError.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


class _Watchdog:
    """One daemon thread for every deadline of the process (a thread per exchange would cost
    more than the exchange's own overhead)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    @contextmanager
    def armed(self, deadline: float) -> Iterator[_Alarm]:
        alarm = _Alarm(deadline)
        with self._condition:
            heapq.heappush(self._heap, (deadline, next(self._counter), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kalshi-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is alarm:
                self._condition.notify()
        previous = getattr(self._local, "alarm", None)
        self._local.alarm = alarm
        try:
            yield alarm
        finally:
            self._local.alarm = previous
            with alarm.lock:
                alarm.cancelled = True
                alarm.connections.clear()
                alarm.sockets.clear()

    def current(self) -> _Alarm | None:
        return getattr(self._local, "alarm", None)

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait(60)
                    continue
                when, _, alarm = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
            alarm.fire()


_WATCHDOG = _Watchdog()


class _WatchedConnectionMixin:
    """Registers the connection with the exchange running on this thread, before it connects
    (so a TLS handshake is covered) and before each request (a kept-alive connection)."""

    def connect(self) -> None:
        _watch(self)
        super().connect()  # type: ignore[misc]
        _watch(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _watch(connection: Any) -> None:
    alarm = _WATCHDOG.current()
    if alarm is not None:
        alarm.watch(connection)


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with the watched connection classes, also behind an HTTP(S) proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if getattr(manager, "pool_classes_by_scheme", None) is not None and not proxy.lower().startswith(
            "socks"
        ):
            manager.pool_classes_by_scheme = _POOLS
        return manager
