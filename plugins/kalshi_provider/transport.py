"""One bounded HTTP exchange with Kalshi; whatever fails in it becomes the provider's exception.

:func:`exchange` sends one request through ``requests`` and reads its whole answer: a 3xx is
refused (never followed), at most :data:`~kalshi_provider.limits.MAX_BODY_BYTES` are decoded, and
every wait on its sockets ends by the attempt's wall-clock deadline, however slowly the server
sends (why this way: ``docs/adr/0001-transport-deadline.md``). A proxy comes from the worker's
environment as ``requests`` picks it; one that cannot be used or reached is named with its variable.
"""

from __future__ import annotations

import functools
import http.client
import io
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
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
    """A session whose socket waits end by the exchange's deadline, and that never redirects."""
    session = _NoRedirectSession()
    adapter = _DeadlineAdapter()
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
    _DEADLINE.at = deadline
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
                raise KalshiRedirectError(response.status_code, _location_host(response, url), label, origin)
            body, truncated = _read_capped(response, max_body, label, origin)
            received_at = datetime.now(timezone.utc)
            status, headers = response.status_code, response.headers
        finally:
            response.close()
    except KalshiError:
        raise
    except Exception as err:  # noqa: BLE001 - every other failure becomes a KalshiError
        if time.monotonic() >= deadline:
            raise _deadline_error(label, origin, timeout, proxy) from None
        raise _translate(err, label, origin, timeout, proxy) from None
    finally:
        _DEADLINE.at = None
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


# -- every wait on the exchange's sockets ends by its deadline --------------------------------------

#: The deadline (``time.monotonic()``) of the exchange running on this thread; None between them.
_DEADLINE = threading.local()


def _wait_until_deadline(sock: Any) -> None:
    """Let the next wait on ``sock`` last only until this thread's exchange deadline.

    requests' read timeout bounds each wait, not the exchange: a server that sends a byte per
    wait would keep it alive for ever. Shrunk before every wait, the timeouts add up to the deadline.
    """
    deadline = getattr(_DEADLINE, "at", None)
    if deadline is None:  # the session used outside exchange(): requests' timeouts only
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the exchange's deadline has passed")
    sock.settimeout(left)


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each waiting at most until the exchange's deadline."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        # Through makefile, as http.client reads: the socket stays open while the answer is
        # read, though http.client closes the connection at once on 'Connection: close'.
        self._file = sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        _wait_until_deadline(self._sock)
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's answer, also a proxy's answer to CONNECT, read through :class:`_DeadlineReader`."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()  # http.client's own reader, before anything was read from it
        self.fp = io.BufferedReader(_DeadlineReader(sock))


class _DeadlineConnectionMixin:
    """Reads every answer (a proxy's to CONNECT too) through the deadline, and leaves the TLS
    handshake after the TCP connect only the time left: Python gives a handshake the socket's
    whole timeout, however slowly its bytes come."""

    response_class = _DeadlineResponse

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            _wait_until_deadline(sock)
        except TimeoutError:
            sock.close()
            raise
        return sock


class _DeadlineHTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOLS = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with the deadline's connection classes, also behind an HTTP(S) proxy."""

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
