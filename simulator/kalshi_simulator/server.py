"""The HTTP server: lifecycle, connection handling, faults, recording; routes live in api.py.

Real HTTP (keep-alive, HTTP/1.1) rather than mocks, so the provider's session handling,
timeouts and retries are tested as they run in production. It only ever binds to a loopback
address: it accepts any registered key and has an unauthenticated control API.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from kalshi_simulator import api, control
from kalshi_simulator.api import API_PREFIX, error_body
from kalshi_simulator.auth import authenticate
from kalshi_simulator.control import CONTROL_PREFIX
from kalshi_simulator.exchange import Exchange
from kalshi_simulator.faults import Fault, FaultQueue
from kalshi_simulator.keys import as_public_key
from kalshi_simulator.signature import PrivateKey, PublicKey
from kalshi_simulator.state import (
    Account,
    RecordedRequest,
    check_cents,
    check_restriction,
    check_timestamp,
    make_breakdown,
    make_subaccounts,
)

log = logging.getLogger(__name__)

_MAX_BODY = 1 << 20
_IDLE_TIMEOUT = 60.0


def _loopback_host(host: str) -> str:
    """The IP literal to bind for ``host``; anything but loopback is refused."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be 'localhost' or a loopback IP address, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(
            f"refusing to bind to {host}: the simulator accepts any registered key and has an "
            "unauthenticated control API, so it only listens on loopback addresses"
        )
    return str(address)


class KalshiSimulator:
    """A local Kalshi Trade API v2. Use as a context manager or call start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, skew_seconds: float = 5.0) -> None:
        self._host = _loopback_host(host)
        self._requested_port = port
        #: Accepted clock difference, either way, for KALSHI-ACCESS-TIMESTAMP. Mutable.
        self.skew_seconds = skew_seconds
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._records: list[RecordedRequest] = []
        self._faults = FaultQueue()
        #: The exchange's status and schedule, shared by every account: script maintenance with
        #: ``sim.exchange.start_maintenance(...)`` or ``sim.exchange.update(...)``.
        self.exchange = Exchange()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> KalshiSimulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        server = _Server((self._host, self._requested_port), self, family)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="kalshi-simulator", daemon=True
        )
        self._thread.start()
        log.info("Kalshi simulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on a 'delay' fault
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # keep-alive connections would otherwise outlive the server
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("Kalshi simulator stopped")

    def __enter__(self) -> KalshiSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` with no path."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the provider's connection should point at: ``http://HOST:PORT/trade-api/v2``."""
        return self.root_url + API_PREFIX

    @property
    def control_url(self) -> str:
        return self.root_url + CONTROL_PREFIX

    # -- accounts ---------------------------------------------------------------------------

    def add_account(
        self,
        key_id: str,
        public_key: PublicKey | PrivateKey | bytes | str,
        *,
        total_resting_order_value: int = 123456,
        breakdown: list[dict[str, Any]] | None = None,
        balance: int = 500000,
        portfolio_value: int = 250000,
        balance_breakdown: list[dict[str, Any]] | None = None,
        balance_dollars: str | None = None,
        updated_ts: int | None = None,
        fcm_member: bool = True,
        subaccounts: Mapping[int | str, Any] | None = None,
        restricted_subaccount: int | None = None,
    ) -> None:
        """Register (or replace) an API key. ``public_key`` may be a key object or PEM.

        Amounts are integer cents. ``breakdown`` and ``balance_breakdown`` of None serve the
        amount spread over shards 0-3 (see ``state.DEFAULT_SHARES``); ``[]`` serves an empty list.
        ``balance_dollars`` of None serves the balance in cents as dollars; ``updated_ts`` of
        None serves the time of the answer. These fields are subaccount 0, the primary.

        ``subaccounts`` maps a number 1-63 to its balance in cents (spread over shards 0-3) or to
        ``{"balance" or "balance_breakdown", "portfolio_value", "updated_ts"}`` (see
        ``state.make_subaccounts``). ``restricted_subaccount`` makes the key a
        subaccount-restricted one, locked to that subaccount (0 or one of ``subaccounts``).
        """
        if not isinstance(key_id, str) or not key_id:
            raise ValueError("key_id must be a non-empty string")
        account = Account(
            key_id=key_id,
            public_key=as_public_key(public_key),
            total_resting_order_value=check_cents(total_resting_order_value, "total_resting_order_value"),
            breakdown=make_breakdown(total_resting_order_value, breakdown),
            balance=check_cents(balance, "balance"),
            portfolio_value=check_cents(portfolio_value, "portfolio_value"),
            fcm_member=bool(fcm_member),
            balance_breakdown=make_breakdown(balance, balance_breakdown, "balance_breakdown"),
            balance_dollars=_optional_dollars(balance_dollars),
            updated_ts=check_timestamp(updated_ts),
            subaccounts=make_subaccounts(subaccounts),
        )
        account.restricted_subaccount = check_restriction(restricted_subaccount, account.subaccounts)
        with self._lock:
            self._accounts[key_id] = account

    def remove_account(self, key_id: str) -> None:
        with self._lock:
            self._accounts.pop(key_id, None)

    def set_value(self, key_id: str, total: int, breakdown: list[dict[str, Any]] | None = None) -> None:
        """Change what total_resting_order_value answers (``breakdown`` as in add_account)."""
        self.update_account(key_id, total_resting_order_value=total, breakdown=breakdown)

    def set_balance(
        self,
        key_id: str,
        balance: int | None = None,
        *,
        portfolio_value: int | None = None,
        breakdown: list[dict[str, Any]] | None = None,
        balance_dollars: str | None = None,
        updated_ts: int | None = None,
    ) -> None:
        """Change what /portfolio/balance answers; what is not given stays as it is.

        A new ``balance`` without a ``breakdown`` serves it spread over shards 0-3, and without
        ``balance_dollars`` serves it in dollars.
        """
        changes: dict[str, Any] = {
            "balance": balance,
            "portfolio_value": portfolio_value,
            "balance_breakdown": breakdown,
            "balance_dollars": balance_dollars,
            "updated_ts": updated_ts,
        }
        self.update_account(key_id, **{name: value for name, value in changes.items() if value is not None})

    def set_fcm_member(self, key_id: str, fcm_member: bool) -> None:
        self.update_account(key_id, fcm_member=fcm_member)

    def update_account(self, key_id: str, **changes: Any) -> None:
        """Change any of ``add_account``'s options at once: all of them, or (on a bad value) none.

        A new total without ``breakdown`` (a new balance without ``balance_breakdown``) serves
        it spread over shards 0-3; a new balance without ``balance_dollars`` serves it in dollars.
        ``subaccounts`` replaces every numbered subaccount.
        """
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown account fields {sorted(unknown)}; known: {sorted(_UPDATABLE)}")
        if "breakdown" in changes and "total_resting_order_value" not in changes:
            raise ValueError("'breakdown' needs 'total_resting_order_value' alongside it")
        with self._lock:
            account = self._account(key_id)
            new: dict[str, Any] = {}
            if "total_resting_order_value" in changes:
                total = check_cents(changes["total_resting_order_value"], "total_resting_order_value")
                new["total_resting_order_value"] = total
                new["breakdown"] = make_breakdown(total, changes.get("breakdown"))
            if "balance" in changes:
                new["balance"] = check_cents(changes["balance"], "balance")
                new["balance_dollars"] = None
                new["balance_breakdown"] = make_breakdown(new["balance"], None, "balance_breakdown")
            if "portfolio_value" in changes:
                new["portfolio_value"] = check_cents(changes["portfolio_value"], "portfolio_value")
            if changes.get("balance_breakdown") is not None:
                balance = new.get("balance", account.balance)
                new["balance_breakdown"] = make_breakdown(
                    balance, changes["balance_breakdown"], "balance_breakdown"
                )
            if "balance_dollars" in changes:
                new["balance_dollars"] = _optional_dollars(changes["balance_dollars"])
            if "updated_ts" in changes:
                new["updated_ts"] = check_timestamp(changes["updated_ts"])
            if "fcm_member" in changes:
                new["fcm_member"] = bool(changes["fcm_member"])
            if "subaccounts" in changes:
                new["subaccounts"] = make_subaccounts(changes["subaccounts"])
            restricted = changes.get("restricted_subaccount", account.restricted_subaccount)
            new["restricted_subaccount"] = check_restriction(
                restricted, new.get("subaccounts", account.subaccounts)
            )
            for name, value in new.items():
                setattr(account, name, value)

    def _account(self, key_id: str) -> Account:
        try:
            return self._accounts[key_id]
        except KeyError:
            raise KeyError(f"no simulator account with key_id {key_id!r}") from None

    def _get_account(self, key_id: str) -> Account | None:
        """A snapshot: changes replace an account's fields whole, so a shallow copy taken under
        the lock never shows half of one."""
        with self._lock:
            account = self._accounts.get(key_id)
            return dataclasses.replace(account) if account is not None else None

    def _public_key(self, key_id: str) -> PublicKey | None:
        account = self._get_account(key_id)
        return account.public_key if account else None

    # -- faults and records -----------------------------------------------------------------

    def push_faults(self, faults: Iterable[Mapping[str, Any]]) -> None:
        """Queue faults (see faults.py for the keys). All are validated before any is queued."""
        self._faults.push(faults)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many fault uses are still queued (``times`` counted)."""
        return len(self._faults)

    @property
    def faults(self) -> list[dict[str, Any]]:
        """The queued faults as dicts (``times`` is what is left), first to apply first."""
        return self._faults.pending()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copies of every recorded request to a Kalshi path, oldest first."""
        with self._lock:
            return [record.copy() for record in self._records]

    def clear_requests(self) -> None:
        with self._lock:
            self._records.clear()

    # -- used by the handler ----------------------------------------------------------------

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def _set_status(self, record: RecordedRequest, status: int | None) -> None:
        with self._lock:
            record.status = status

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


#: The options of add_account that update_account may change.
_UPDATABLE = frozenset(
    {
        "total_resting_order_value",
        "breakdown",
        "balance",
        "portfolio_value",
        "balance_breakdown",
        "balance_dollars",
        "updated_ts",
        "fcm_member",
        "subaccounts",
        "restricted_subaccount",
    }
)


def _optional_dollars(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"balance_dollars must be a fixed-point dollar string, got {type(value).__name__}")
    return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], simulator: KalshiSimulator, family: socket.AddressFamily):
        self.address_family = family
        self.simulator = simulator
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("simulator: error while handling a request from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two sends; with Nagle on, the body waits ~40 ms for the client's
    # delayed ACK on every keep-alive request (measured by benchmarks/run.py: 44 ms -> 2 ms).
    disable_nagle_algorithm = True
    server_version = "KalshiSimulator/1.0"
    sys_version = ""
    timeout = _IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.simulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.simulator._track(self.connection, False)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):  # the client went away: nothing to answer
            self.close_connection = True

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator: %s %s", self.address_string(), format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request is logged by _dispatch, with the key ID

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- plumbing ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        split = urlsplit(self.path)
        if split.path == CONTROL_PREFIX or split.path.startswith(CONTROL_PREFIX + "/"):
            self._control(split.path, raw)
        else:
            self._kalshi(split.path, split.query)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send(411, error_body("length_required", "send a Content-Length, not chunked encoding"))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self.close_connection = True
            self._send(400, error_body("bad_request", "bad Content-Length"))
            return None
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        extra = dict(headers or {})
        if not any(name.lower() == "content-type" for name in extra):
            self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        """Close the socket without a single byte of answer, like a crashed proxy."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- Kalshi paths -----------------------------------------------------------------------

    def _kalshi(self, path: str, query: str) -> None:
        sim = self.server.simulator
        auth = authenticate(
            self.headers.get,
            self.command,
            self.path,
            sim._public_key,
            time.time_ns() // 1_000_000,
            sim.skew_seconds * 1000.0,
        )
        fault = sim._faults.take(path)
        record = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            key_id=auth.key_id,
            timestamp=auth.timestamp,
            signature=auth.signature,
            signature_valid=auth.signature_valid,
            auth_error=auth.failure,
            received_at=time.time(),
            headers={name: value for name, value in self.headers.items()},
            fault=fault is not None,
        )
        sim._record(record)
        if fault is not None and self._apply_fault(fault, record):
            return
        if auth.failure is None and self.command == "GET" and api.needs_auth(path):
            inactive = sim.exchange.inactive_answer()  # the simulator's choice: see exchange.py
            if inactive is not None and self._apply_fault(inactive, record, note=" (exchange inactive)"):
                return
        status, payload, headers = api.answer(
            self.command, path, query, auth, sim._get_account, sim.exchange, record.received_at
        )
        if fault is not None:
            headers = {**headers, **fault.headers}
        self._finish(record, status, payload, headers, trickle=fault.trickle if fault else 0.0)

    def _apply_fault(self, fault: Fault, record: RecordedRequest, note: str = " (fault)") -> bool:
        """Apply ``fault``; True when it fully answered (or dropped) the request."""
        sim = self.server.simulator
        if fault.delay and sim._stopping.wait(fault.delay):
            self._drop()  # the simulator is stopping: do not answer late
            return True
        if fault.drop:
            log.debug("simulator: %s %s -> dropped%s", self.command, record.path, note)
            self._drop()
            return True
        if not fault.replaces_answer:
            return False
        status, raw, content_type = fault.answer()
        headers = {**fault.headers, "Content-Encoding": "gzip"} if fault.gzip_bomb_mib else fault.headers
        self._finish(
            record,
            status,
            None,
            headers,
            raw=raw,
            content_type=content_type,
            note=note,
            trickle=fault.trickle,
        )
        return True

    def _finish(
        self,
        record: RecordedRequest,
        status: int,
        payload: Any,
        headers: Mapping[str, str],
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        note: str = "",
        trickle: float = 0.0,
    ) -> None:
        # Record before writing: a test reading .requests right after its response must see it.
        self.server.simulator._set_status(record, status)
        log.debug("simulator: %s %s key=%s -> %s%s", record.method, record.path, record.key_id, status, note)
        if trickle:
            self._send_trickled(
                status, payload, headers, raw=raw, content_type=content_type, interval=trickle
            )
        else:
            self._send(status, payload, headers, raw=raw, content_type=content_type)

    def _send_trickled(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str],
        *,
        raw: bytes | None,
        content_type: str,
        interval: float,
    ) -> None:
        """The whole answer, status line first, one byte every ``interval`` seconds; stops when
        the client goes away or the simulator stops. The connection is closed afterwards."""
        self.close_connection = True
        body = raw if raw is not None else json.dumps(payload).encode()
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        extra = dict(headers)
        if not any(name.lower() == "content-type" for name in extra):
            extra["Content-Type"] = content_type
        lines += [f"{name}: {value}" for name, value in extra.items()]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        answer = "\r\n".join(lines).encode("latin-1") + body
        stopping = self.server.simulator._stopping
        for index in range(len(answer)):
            try:
                self.connection.sendall(answer[index : index + 1])
            except OSError:  # the client gave up: what the trickle is there to prove
                return
            if stopping.wait(interval):
                return

    # -- control API ------------------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._send(403, error_body("forbidden", "the control API answers loopback clients only"))
            return
        # A web page in the developer's browser can reach loopback too: through DNS rebinding
        # (a foreign name resolving to 127.0.0.1, so a foreign Host header) or a cross-site form
        # POST (text/plain, no CORS preflight). Neither gets past these two checks.
        if not self._loopback_host_header():
            self._send(403, error_body("forbidden", "the control API answers a loopback Host header only"))
            return
        has_body = bool(raw) or self.command in ("POST", "PUT", "PATCH")
        if has_body and not _is_json(self.headers.get("Content-Type")):
            self._send(415, error_body("unsupported_media_type", "send the body as application/json"))
            return
        try:
            body = json.loads(raw) if raw else None
            status, payload = control.handle(self.server.simulator, self.command, path, body)
        except (ValueError, TypeError, KeyError) as exc:
            status, payload = 400, error_body("bad_request", str(exc).strip("'\""))
        log.debug("simulator: control %s %s -> %s", self.command, path, status)
        self._send(status, payload)

    def _loopback_host_header(self) -> bool:
        port = self.server.server_address[1]
        host = self.server.simulator.host
        allowed = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        allowed.add(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return (self.headers.get("Host") or "").strip().lower() in allowed


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"
