"""How long one hung request to Kalshi lasts, by fault and by way of bounding it (docs/adr/0001).

    .venv/bin/python benchmarks/transport_deadline.py                 # everything: ~10 min
    .venv/bin/python benchmarks/transport_deadline.py --only body,tls-body --ways current,timeouts

A local server plays each fault; one attempt (timeout T = 2 s) is made against it in a fresh
process, and the wall time until the attempt fails is printed as a Markdown table. A cell
"> 30" means nothing ended the attempt: the worker gave up on it after --cap seconds.

Ways of bounding the attempt:

- ``current``: the provider's ``transport.exchange`` as this tree has it.
- ``timeouts``: requests' (connect, read) timeouts of T alone (``stream=True``, the body read
  in 16 KiB chunks as the transport reads it).
- ``total``: urllib3's ``Timeout(total=T)`` instead.
- ``chunks``: ``timeouts``, plus the wall-clock deadline checked between 1-byte chunks of the body.
- ``task``: ``timeouts`` inside an Airflow task with ``execution_timeout`` of 5 s
  (``airflow dags test``), i.e. the SIGALRM Airflow raises AirflowTaskTimeout from.
- ``task-blocking``: the same with no socket timeout at all (a blocking read in C).

The DNS row needs root (``unshare -m`` binds a resolv.conf naming a server that never answers
over /etc/resolv.conf, in the attempt's process only); it is skipped without it.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import ipaddress
import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # tests.provider.hostile and tests.fixtures.airflow

from tests.provider.hostile import VALUE, Exchange, HostileServer, answer  # noqa: E402

TIMEOUT = 2.0
EXECUTION_TIMEOUT = 5.0
#: Seconds between trickled bytes: of a TLS handshake, a status line and headers, a proxy's answer.
TRICKLE = 0.5
#: Seconds between the bytes of a trickled body: below the read timeout, so every read succeeds.
BODY_TRICKLE = 1.5
PATH = "/trade-api/v2/portfolio/balance"
DNS_SERVER = "127.0.0.77"

# -- the ways of making one attempt (run in the worker process) ------------------------------------


def _read_body(response: Any, chunk: int = 16 * 1024, deadline: float | None = None) -> int:
    """Read the body as the transport does (16 KiB chunks, at most 64 KiB); the bytes read."""
    size = 0
    for part in response.iter_content(chunk):
        size += len(part)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("deadline passed between chunks")
        if size > 64 * 1024:
            break
    return size


def attempt_current(url: str, timeout: float) -> None:
    from kalshi_provider import transport

    transport.exchange(
        transport.new_session(),
        "GET",
        url,
        label="GET /portfolio/balance",
        timeout=timeout,
        deadline=time.monotonic() + timeout,
    )


def attempt_timeouts(url: str, timeout: float | None) -> None:
    import requests

    with requests.Session() as session:
        with session.get(url, timeout=timeout and (timeout, timeout), stream=True) as response:
            _read_body(response)


def attempt_total(url: str, timeout: float) -> None:
    import requests
    import urllib3

    with requests.Session() as session:
        with session.get(url, timeout=urllib3.Timeout(total=timeout), stream=True) as response:
            _read_body(response)


def attempt_chunks(url: str, timeout: float) -> None:
    import requests

    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        with session.get(url, timeout=(timeout, timeout), stream=True) as response:
            _read_body(response, chunk=1, deadline=deadline)


ATTEMPTS: dict[str, Callable[[str, Any], None]] = {
    "current": attempt_current,
    "timeouts": attempt_timeouts,
    "total": attempt_total,
    "chunks": attempt_chunks,
}


def measured(way: str, url: str, timeout: float | None, cap: float, *, reraise: bool = False) -> None:
    """One attempt: its wall time and how it ended, also written to $PROBE_RESULT if set. After
    ``cap`` seconds the process exits with what it knows (a thread, not a signal: a signal is one
    of the things measured)."""
    if "PROBE_STARTED" in os.environ:
        Path(os.environ["PROBE_STARTED"]).touch()
    start = time.monotonic()
    timer = threading.Timer(cap, lambda: (_report(None, f"still waiting after {cap:g} s"), os._exit(0)))
    timer.daemon = True
    timer.start()
    try:
        ATTEMPTS[way](url, timeout)
    except BaseException as err:  # noqa: BLE001 - what ended the attempt is the measurement
        timer.cancel()
        _report(time.monotonic() - start, type(err).__name__)
        if reraise:
            raise
    else:
        timer.cancel()
        _report(time.monotonic() - start, "answered")


def _report(seconds: float | None, ended: str) -> None:
    result = json.dumps({"seconds": None if seconds is None else round(seconds, 2), "ended": ended})
    print(result, flush=True)
    if "PROBE_RESULT" in os.environ:
        Path(os.environ["PROBE_RESULT"]).write_text(result)


# -- the faults (servers in the runner's process) --------------------------------------------------


@dataclass
class Fault:
    name: str
    what: str
    #: (url, extra environment of the attempt) for a started server, given the runner's TLS files.
    start: Callable[[ExitStack, Files], tuple[str, dict[str, str]]]


@dataclass
class Files:
    """What the runner shares with the faults and the attempts."""

    context: ssl.SSLContext
    ca_bundle: str
    #: Created by the attempt as its clock starts (the slow connect waits for it).
    started: Path


def _serve(stack: ExitStack, script: Callable[[Exchange], None], **kwargs: Any) -> HostileServer:
    return stack.enter_context(HostileServer(script, **kwargs))


def _silent(exchange: Exchange) -> None:
    while exchange.sock.recv(1):  # until the client hangs up (the server's recv times out at 10 s)
        pass


def _trickled_headers(exchange: Exchange) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"x" * 60000 + b"\r\n"
    exchange.trickle(head, TRICKLE)


def _trickled_body(exchange: Exchange) -> None:
    body = VALUE.ljust(60000)
    full = answer(body=body)
    split = full.index(b"\r\n\r\n") + 4
    exchange.send(full[:split])
    exchange.trickle(full[split:], BODY_TRICKLE)


def _empty_gzip_flood(exchange: Exchange) -> None:
    exchange.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n")
    exchange.stream(itertools.repeat(gzip.compress(b"") * 1000))


HANDSHAKE_RECORD = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000


def _trickled_handshake(exchange: Exchange) -> None:
    exchange.trickle(HANDSHAKE_RECORD, TRICKLE)


def _slow_connect(stack: ExitStack, files: Files) -> tuple[str, dict[str, str]]:
    """A listener whose accept queue is full: the client's SYN is dropped and resent 1 s later,
    when there is room (made 0.5 s after the attempt starts); then the handshake trickles."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    filler = socket.create_connection(listener.getsockname())
    stack.callback(listener.close)
    stack.callback(filler.close)

    def serve() -> None:
        while not files.started.exists():
            time.sleep(0.05)
        time.sleep(0.5)
        try:
            listener.accept()[0].close()
            client, _ = listener.accept()
        except OSError:  # closed: the attempt never connected
            return
        with client:
            Exchange(client).trickle(HANDSHAKE_RECORD, TRICKLE)

    threading.Thread(target=serve, daemon=True).start()
    return f"https://127.0.0.1:{listener.getsockname()[1]}{PATH}", {}


def _tls(context: ssl.SSLContext, script: Callable[[Exchange], None]) -> Callable[[Exchange], None]:
    """``script`` behind a real TLS handshake with a certificate the attempt trusts."""

    def served(exchange: Exchange) -> None:
        exchange.sock.settimeout(10)
        exchange.sock = context.wrap_socket(exchange.sock, server_side=True)
        while b"\r\n\r\n" not in exchange.head:
            chunk = exchange.sock.recv(65536)
            if not chunk:
                return
            exchange.head += chunk
        script(exchange)

    return served


def _connect_trickled(exchange: Exchange) -> None:
    exchange.trickle(b"HTTP/1.1 200 Connection established\r\n" + b"X-Padding: " + b"x" * 60000, TRICKLE)


def _direct(script: Callable[[Exchange], None], **kwargs: Any):
    def start(stack: ExitStack, files: Files) -> tuple[str, dict[str, str]]:
        server = _serve(stack, script, **kwargs)
        scheme = "http" if kwargs.get("read_head", True) else "https"
        return f"{scheme}://127.0.0.1:{server.port}{PATH}", {}

    return start


def _tls_body(stack: ExitStack, files: Files) -> tuple[str, dict[str, str]]:
    server = _serve(stack, _tls(files.context, _trickled_body), read_head=False)
    return f"https://127.0.0.1:{server.port}{PATH}", {"REQUESTS_CA_BUNDLE": files.ca_bundle}


def _proxy(script: Callable[[Exchange], None], scheme: str):
    def start(stack: ExitStack, files: Files) -> tuple[str, dict[str, str]]:
        proxy = _serve(stack, script)
        variable = "HTTP_PROXY" if scheme == "http" else "HTTPS_PROXY"
        return f"{scheme}://127.0.0.1:9{PATH}", {variable: proxy.root_url}

    return start


def _proxy_answer(exchange: Exchange) -> None:
    exchange.trickle(answer(body=VALUE.ljust(60000)), TRICKLE)


def _slow_dns(stack: ExitStack, files: Files) -> tuple[str, dict[str, str]]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((DNS_SERVER, 53))  # reads queries, answers none
    stack.callback(listener.close)
    return f"http://api.kalshi.example:80{PATH}", {"_DNS": "1"}


FAULTS = [
    Fault("silent", "accepts, reads the request, never answers", _direct(_silent)),
    Fault(
        "tls-handshake",
        "trickles a TLS handshake record, a byte every 0.5 s",
        _direct(_trickled_handshake, read_head=False),
    ),
    Fault(
        "slow-connect",
        "the TCP connect takes about 1 s (a SYN dropped and resent), then the TLS handshake trickles",
        _slow_connect,
    ),
    Fault("headers", "trickles the status line and headers, a byte every 0.5 s", _direct(_trickled_headers)),
    Fault("body", "sends the headers, trickles the body, a byte every 1.5 s (http)", _direct(_trickled_body)),
    Fault(
        "empty-gzip",
        "sends the headers, then empty gzip members as fast as it can: each read is instant, "
        "the decoded body never grows",
        _direct(_empty_gzip_flood),
    ),
    Fault("tls-body", "the same behind a real TLS handshake (https)", _tls_body),
    Fault("proxy", "HTTP_PROXY trickles its whole answer, a byte every 0.5 s", _proxy(_proxy_answer, "http")),
    Fault(
        "proxy-connect",
        "HTTPS_PROXY trickles its answer to CONNECT, a byte every 0.5 s",
        _proxy(_connect_trickled, "https"),
    ),
    Fault("dns", "the resolver's server never answers (resolv.conf defaults: 5 s, 2 attempts)", _slow_dns),
]


# -- the runner ------------------------------------------------------------------------------------


def _files(workdir: Path) -> Files:
    """A self-signed certificate for 127.0.0.1 (the attempt trusts it through REQUESTS_CA_BUNDLE)
    and where the attempt marks its start."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Files(context, str(cert_file), workdir / "started")


def _attempt_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "plugins"), str(BENCH_DIR)])
    env.update({key: value for key, value in extra.items() if not key.startswith("_")})
    return env


def _in_namespace(argv: list[str], extra: dict[str, str], workdir: Path) -> list[str]:
    """``argv`` in a mount namespace whose /etc/resolv.conf names the silent DNS server."""
    if "_DNS" not in extra:
        return argv
    resolv = workdir / "resolv.conf"
    resolv.write_text(f"nameserver {DNS_SERVER}\n")
    script = f'mount --bind {resolv} /etc/resolv.conf && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", *argv]


def run_attempt(way: str, url: str, extra: dict[str, str], workdir: Path, cap: float) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__)), "--attempt", way, url, "--cap", str(cap)]
    done = subprocess.run(
        _in_namespace(argv, extra, workdir),
        env=_attempt_env(extra),
        capture_output=True,
        text=True,
        timeout=cap + 60,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"attempt {way} {url} printed nothing:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


DAG_FILE = """
from datetime import datetime, timedelta
from airflow.sdk import dag, task

@dag(dag_id="deadline_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def deadline_probe():
    @task(execution_timeout=timedelta(seconds={execution_timeout}), retries=0)
    def attempt():
        import os, transport_deadline
        transport_deadline.measured("timeouts", os.environ["PROBE_URL"], {timeout}, {cap}, reraise=True)

    attempt()

deadline_probe()
"""


class TaskRunner:
    """``airflow dags test`` of a one-task DAG making the ``timeouts`` attempt with an
    ``execution_timeout``, in an Airflow home of its own (tests/fixtures/airflow.py)."""

    def __init__(self, workdir: Path, cap: float) -> None:
        from tests.fixtures.airflow import AirflowHome

        self.workdir, self.cap = workdir, cap
        self.template = AirflowHome(workdir / "airflow-template").migrate()

    def run(self, blocking: bool, url: str, extra: dict[str, str]) -> dict[str, Any]:
        destination = self.workdir / f"home-{time.monotonic_ns()}"
        airflow_home = self.template.copy(destination, dags_folder=destination / "probe-dags")
        home, dags = airflow_home.path, airflow_home.dags_folder
        dags.mkdir()
        (dags / "deadline_probe.py").write_text(
            DAG_FILE.format(
                execution_timeout=EXECUTION_TIMEOUT, timeout=None if blocking else TIMEOUT, cap=self.cap
            )
        )
        # The attempt's proxies and PYTHONPATH, with the home's own Airflow settings and PATH.
        env = {k: v for k, v in _attempt_env(extra).items() if not k.startswith("AIRFLOW")}
        env.update((k, v) for k, v in airflow_home.env.items() if k.startswith("AIRFLOW") or k == "PATH")
        env.update(PROBE_URL=url, PROBE_RESULT=str(home / "result.json"))
        argv = _in_namespace(
            [str(airflow_home.bin / "airflow"), "dags", "test", "deadline_probe"], extra, self.workdir
        )
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.cap + 300)
        log = done.stdout + done.stderr
        result_file = home / "result.json"
        if not result_file.exists():
            raise RuntimeError(f"the probe task left no result:\n{log[-3000:]}")
        result = json.loads(result_file.read_text())
        result["task"] = _task_state(home)
        return result


def _task_state(home: Path) -> str:
    import sqlite3

    with sqlite3.connect(home / "airflow.db") as db:
        row = db.execute("SELECT state FROM task_instance WHERE dag_id = 'deadline_probe'").fetchone()
    return str(row[0] if row else None)


def cell(result: dict[str, Any], cap: float) -> str:
    """``2.01 (ReadTimeout)``, ``> 30 (still waiting)``, ``5.0 (AirflowTaskTimeout, task failed)``."""
    if result.get("skipped"):
        return "n/a"
    seconds = f"> {cap:g}" if result["seconds"] is None else f"{result['seconds']:.1f}"
    ended = "still waiting" if result["seconds"] is None else result["ended"]
    if "task" in result:
        ended += f", task {result['task']}"
    return f"{seconds} ({ended})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="faults, comma-separated: " + ",".join(f.name for f in FAULTS))
    parser.add_argument("--ways", default="current,timeouts,total,chunks,task,task-blocking")
    parser.add_argument("--cap", type=float, default=30.0, help="seconds after which an attempt is abandoned")
    parser.add_argument("--attempt", nargs=2, metavar=("WAY", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attempt:
        way, url = args.attempt
        measured(way, url, TIMEOUT, args.cap)
        return

    faults = [f for f in FAULTS if not args.only or f.name in args.only.split(",")]
    ways = args.ways.split(",")
    can_unshare = os.geteuid() == 0 and shutil.which("unshare") is not None
    print(f"T = {TIMEOUT:g} s per attempt, execution_timeout = {EXECUTION_TIMEOUT:g} s, cap = {args.cap:g} s")
    print()
    print("| fault | " + " | ".join(ways) + " |")
    print("| --- " * (len(ways) + 1) + "|")
    with tempfile.TemporaryDirectory(prefix="transport-deadline-") as tmp:
        workdir = Path(tmp)
        files = _files(workdir)
        tasks = TaskRunner(workdir, args.cap) if any(w.startswith("task") for w in ways) else None
        for fault in faults:
            cells = []
            for way in ways:
                if fault.name == "dns" and not can_unshare:
                    cells.append(cell({"skipped": True}, args.cap))
                    continue
                files.started.unlink(missing_ok=True)
                with ExitStack() as stack:
                    url, extra = fault.start(stack, files)
                    extra["PROBE_STARTED"] = str(files.started)
                    if way.startswith("task"):
                        result = tasks.run(way == "task-blocking", url, extra)
                    else:
                        result = run_attempt(way, url, extra, workdir, args.cap)
                cells.append(cell(result, args.cap))
            print(f"| {fault.name} | " + " | ".join(cells) + " |", flush=True)
    print()
    for fault in faults:
        print(f"- {fault.name}: {fault.what}")


if __name__ == "__main__":
    main()
