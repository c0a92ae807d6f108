"""What the benchmark runner needs around the workers: a worker process, a round-trip counter on the
wire, and the machine it all ran on. (Airflow runs through the tests' ``tests.fixtures.airflow``.)"""

from __future__ import annotations

import json
import os
import platform
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # tests.fixtures: the test suite's Airflow homes and database servers


def run_worker(kind: str, env: dict[str, str] | None = None, **arguments: Any) -> dict[str, Any]:
    """``workers.py KIND`` in a fresh interpreter; its JSON line, or an error with its output."""
    argv = [sys.executable, str(BENCH_DIR / "workers.py"), kind, json.dumps(arguments)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker {kind} {arguments} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


class RoundTripCounter:
    """A loopback TCP relay in front of a database server that counts connections and round trips.

    A round trip is a *client turn*: the client sending after the server last spoke (or first on a
    new connection). Handshakes, statements, COMMITs, the driver's own queries and the goodbye all
    count, whatever the driver or dialect; requests pipelined before an answer count once.
    """

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = self.round_trips = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def take(self) -> dict[str, int]:
        """The counts so far, then start again from zero (give the relays a moment to finish)."""
        time.sleep(0.2)
        with self.lock:
            counts = {"connections": self.connections, "round_trips": self.round_trips}
            self.connections = self.round_trips = 0
        return counts

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        last_speaker = None
        with client, server:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                    if key.fileobj is client and last_speaker is not client:
                        with self.lock:
                            self.round_trips += 1
                    last_speaker = key.fileobj


def load_average() -> float:
    return os.getloadavg()[0]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    from importlib.metadata import version

    libs = ", ".join(
        f"{d} {version(d)}" for d in ("apache-airflow", "sqlalchemy", "psycopg", "mysqlclient", "requests")
    )
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{cpu}, nproc {os.cpu_count()}, {system}; {libs}"
