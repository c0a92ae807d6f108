"""A hostile HTTP server on loopback: it answers with whatever bytes a test scripts.

The simulator behaves like Kalshi; this one behaves like whatever may sit at a wrong Base URL or
between the workers and Kalshi: redirects, endless or compressed bodies, trickled answers,
broken framing. It records every request head that reached it and how each answer ended, so a
test can prove what a client did *not* do (follow a redirect, read an endless body to its end).
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Script = Callable[["Exchange"], None]


@dataclass
class Exchange:
    """One connection: the request head read from it, and what the script sent back."""

    sock: socket.socket
    head: bytes = b""
    sent: int = 0
    #: True when the client closed the connection before the script finished sending.
    client_left: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def send(self, data: bytes) -> bool:
        """Send ``data``; False once the client has gone away."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.client_left = True
            return False
        self.sent += len(data)
        return True

    def trickle(self, data: bytes, interval: float) -> None:
        for index in range(len(data)):
            if not self.send(data[index : index + 1]):
                return
            time.sleep(interval)

    def stream(self, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            if not self.send(chunk):
                return


class HostileServer:
    """Accepts connections on 127.0.0.1; each gets the request head read (unless ``read_head`` is
    False: a TLS client sends no HTTP head first), then ``script(exchange)``."""

    def __init__(self, script: Script, *, read_head: bool = True) -> None:
        self.script = script
        self.read_head = read_head
        self.exchanges: list[Exchange] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.02)  # leaving the block waits at most this long
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/trade-api/v2"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        for exchange in self.exchanges:
            exchange.done.wait(10)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            exchange = Exchange(sock)
            self.exchanges.append(exchange)
            threading.Thread(target=self._handle, args=(exchange,), daemon=True).start()

    def _handle(self, exchange: Exchange) -> None:
        sock = exchange.sock
        try:
            sock.settimeout(10)
            while self.read_head and b"\r\n\r\n" not in exchange.head and len(exchange.head) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                exchange.head += chunk
            self.script(exchange)
        except OSError:
            exchange.client_left = True
        finally:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            exchange.done.set()

    @property
    def requests(self) -> list[bytes]:
        """Request heads received, oldest first."""
        return [exchange.head for exchange in self.exchanges if exchange.head]


def answer(status: str = "200 OK", body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    lines = [f"HTTP/1.1 {status}"]
    fields = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1") + body


def reply(raw: bytes) -> Script:
    return lambda exchange: exchange.send(raw) and None


VALUE = b'{"total_resting_order_value": 123456, "resting_order_value_breakdown": []}'


def gzip_bomb(mib: int) -> bytes:
    """gzip members of 1 MiB of zeros, back to back: about 1 KiB of body per MiB it inflates to."""
    return gzip.compress(b"\0" * (1 << 20), compresslevel=9) * mib
