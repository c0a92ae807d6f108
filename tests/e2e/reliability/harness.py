"""Fault cases run through the real DAG (by ``tests.fixtures.airflow``), and what Airflow, the simulator
and the warehouse saw of each.

Shared by the fault matrix (tests/e2e/reliability) and the secret-leak sweep. A *batch* runs many
cases in one ``airflow dags test`` (each case its own Kalshi connection and simulator, so its own
fault queue, requests and warehouse row); outcomes come from the metadata DB and the CLI output.
Retries keep the DAG's schedule, each wait capped at 1 s by ``[core] max_task_retry_delay``. Why:
``docs/adr/0005-tests-against-real-servers.md``.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kalshi_provider.signing import PrivateKey
from kalshi_simulator import KalshiSimulator, generate_private_key, private_pem, public_pem
from tests.fixtures import encrypted_keys
from tests.fixtures.airflow import AirflowHome, RunResult, TaskRecord, Warehouse

DAG_ID = "kalshi_total_resting_order_value"
PLAN, FETCH, LOAD = "accounts_to_read", "account_snapshot.fetch", "account_snapshot.load"
#: The DAG's task retries (default_args["retries"]) plus the first try.
TASK_TRIES = 4
#: ``[core] max_task_retry_delay`` in the tests' AIRFLOW_HOME (seconds).
RETRY_DELAY_CAP_SECONDS = 1


def cap_retry_delay(home: AirflowHome) -> AirflowHome:
    """The task retry waits capped (see module doc)."""
    home.set_config("core", "max_task_retry_delay", RETRY_DELAY_CAP_SECONDS)
    return home


# -- things that are not there ---------------------------------------------------------------------


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


class SkewedSimulator:
    """The simulator in its own process, with a clock ``offset_seconds`` ahead of this machine's.

    A real clock difference between client and server, which is what Kalshi's
    ``header_timestamp_expired`` is about: the provider signs with its own (correct) clock and
    the server, whose clock differs by more than the ±5 s it accepts, refuses the timestamp.
    Only the public key is handed over (as a file in ``workdir``, outside the checkout).
    """

    _SCRIPT = (
        "import sys, time\n"
        "offset_ns = int(float(sys.argv[1]) * 1e9)\n"
        "real_ns, real = time.time_ns, time.time\n"
        "time.time_ns = lambda: real_ns() + offset_ns\n"
        "time.time = lambda: real() + offset_ns / 1e9\n"
        "from kalshi_simulator.cli import main\n"
        "sys.exit(main(sys.argv[2:]))\n"
    )

    def __init__(self, workdir: Path, key_id: str, key: PrivateKey, offset_seconds: float) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        public = workdir / f"{key_id}.pub.pem"
        public.write_bytes(public_pem(key))
        ready = workdir / f"{key_id}.ready.json"
        argv = [sys.executable, "-c", self._SCRIPT, str(offset_seconds), "--port", "0"]
        argv += ["--key-id", key_id, "--public-key", str(public), "--ready-file", str(ready)]
        argv += ["--log-level", "WARNING"]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir, text=True
        )
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the skewed simulator did not start: {self.process.stderr.read()}")
            time.sleep(0.05)
        line = json.loads(ready.read_text())
        self.base_url: str = line["base_url"]
        self.control_url: str = line["control_url"]

    @property
    def requests(self) -> list[dict[str, Any]]:
        import requests

        return requests.get(self.control_url + "/requests", timeout=10).json()["requests"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# -- keys as a connection holds them ---------------------------------------------------------------


@dataclass(frozen=True)
class KeyPlacement:
    """How a connection carries its key: PKCS#1 in the password (what Kalshi issues), or an
    encrypted PKCS#8 PEM in the ``private_key`` extra with ``private_key_passphrase``, or a
    PEM file named by ``private_key_path``."""

    name: str
    where: str  # "password" | "extra" | "file"
    passphrase: str | None = None
    fmt: str | None = None


PKCS1_IN_PASSWORD = KeyPlacement("pkcs1-password", "password")
ENCRYPTED_IN_EXTRA = KeyPlacement(
    "encrypted-pkcs8-extra", "extra", passphrase="pp-" + uuid.uuid4().hex + "-Ω", fmt="pkcs8"
)
KEY_FILE = KeyPlacement("pkcs1-file", "file")


@dataclass
class CaseKey:
    key: PrivateKey
    pem: bytes
    placement: KeyPlacement
    path: Path | None = None

    def fields(self, *, passphrase_override: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(connection fields, extras) carrying this key."""
        passphrase = passphrase_override or self.placement.passphrase
        if self.placement.where == "password":
            return {"password": self.pem.decode()}, {}
        extras: dict[str, Any] = {"private_key_passphrase": passphrase} if passphrase else {}
        if self.placement.where == "extra":
            return {}, {"private_key": self.pem.decode(), **extras}
        return {}, {"private_key_path": str(self.path), **extras}


def make_key(placement: KeyPlacement, keydir: Path, name: str) -> CaseKey:
    key = generate_private_key("rsa")
    pem = private_pem(key, placement.passphrase, placement.fmt)  # type: ignore[arg-type]
    path = None
    if placement.where == "file":
        keydir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = keydir / f"{name}.pem"
        path.write_bytes(pem)
        path.chmod(0o600)
    return CaseKey(key, pem, placement, path)


def run_dag(home: AirflowHome, conf: dict[str, Any], run_after: str | None = None) -> RunResult:
    """One DAG run (``airflow dags test``, or ``DAG.test(run_after=...)`` for a fixed hour)."""
    if run_after is None:
        return home.dags_test(DAG_ID, conf=conf)
    return home.dag_test(DAG_ID, run_after=run_after, conf=conf)


def new_simulator() -> KalshiSimulator:
    return KalshiSimulator().start()


# -- fault cases and batches of them ---------------------------------------------------------------

#: Connection extras of most cases: one hook retry and a short timeout keep each try short.
FAST_EXTRAS: dict[str, Any] = {"max_retries": 1, "timeout": 2}


@dataclass(frozen=True)
class Case:
    """One row of the fault matrix: how the fault is made and what must follow.

    ``setup`` names how the case's connection and simulator are built (see ``Batch.add``);
    ``tries`` is the final try number of the task that decides the case (``fetch`` for Kalshi
    faults, ``load`` for warehouse faults); ``requests`` is how many requests the simulator
    must have seen (None: nothing listens); ``bound`` caps the case's time in seconds: the
    summed duration of its tries for batched cases, the wall time of its DAG runs otherwise.
    """

    id: str
    fault: str
    how: str
    outcome: str  # ok | recovered | failed | skipped | paused
    tries: int
    requests: int | None
    rows: int
    message: str
    bound: int
    setup: str = "normal"
    faults: tuple[dict[str, Any], ...] = ()
    account: dict[str, Any] = field(default_factory=dict)
    value: int = 123456
    extras: dict[str, Any] = field(default_factory=lambda: dict(FAST_EXTRAS))
    #: Seconds that must pass between the first and the second request (a honoured Retry-After).
    min_gap: float | None = None
    #: "batch": one account of the shared DAG run; anything else has a test of its own.
    group: str = "batch"
    #: Whether the row carries Kalshi's breakdown (False: the fetch left it out, the total stays).
    breakdown: bool = True
    #: Balance rows for the account afterwards; None: as many as totals rows.
    balance_rows: int | None = None

    @property
    def balances(self) -> int:
        return self.rows if self.balance_rows is None else self.balance_rows

    @property
    def extras_text(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.extras.items()) or "—"


SETUPS = (
    "normal",
    "closed_port",
    "wrong_key",
    "unknown_key",
    "skewed_clock",
    "wrong_path",
    "wrong_passphrase",
    "pem_in_key_id",
    "ssh_conn_type",
    "costly_key",
    "maintenance",
)
#: Kalshi's estimated resume time in the ``maintenance`` setup.
MAINTENANCE_RESUME = "2026-12-10T10:00:00Z"


@dataclass
class CaseRun:
    case: Case
    conn_id: str
    key: CaseKey
    key_id: str
    simulator: KalshiSimulator | SkewedSimulator | None
    map_index: int
    #: The passphrase the connection holds (the wrong one for a wrong-passphrase case).
    passphrase: str | None = None

    def requests(self) -> list[dict[str, Any]]:
        """The signed requests the case's simulator saw: not the unsigned ``/exchange/status``
        reads the hook makes after a retryable failure."""
        if self.simulator is None:
            return []
        if isinstance(self.simulator, SkewedSimulator):
            found = self.simulator.requests
        else:
            found = [record.to_dict() for record in self.simulator.requests]
        return [request for request in found if "/exchange/" not in request["path"]]


@dataclass
class CaseOutcome:
    """What one case ended as, read back after the batch run."""

    run: CaseRun
    fetch: TaskRecord
    load: TaskRecord
    log: str
    rows: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    balances: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def busy_seconds(self) -> float:
        return self.fetch.busy_seconds + self.load.busy_seconds


class Batch:
    """Many cases, one DAG run: each case is a Kalshi connection with its own simulator."""

    def __init__(self, home: AirflowHome, workdir: Path) -> None:
        self.home = home
        self.workdir = workdir
        self.runs: list[CaseRun] = []
        self._cleanup: list[Any] = []

    def add(
        self,
        case: Case,
        placement: KeyPlacement = PKCS1_IN_PASSWORD,
        suffix: str = "",
        extras: dict[str, Any] | None = None,
    ) -> CaseRun:
        """Make ``case``'s simulator and connection; ``extras`` replace the case's own."""
        extras_override = extras
        conn_id = "kalshi_" + re.sub(r"[^a-z0-9]+", "_", (case.id + suffix).lower()).strip("_")
        if case.setup == "wrong_passphrase" and placement.passphrase is None:
            placement = ENCRYPTED_IN_EXTRA
        key = make_key(placement, self.workdir / "keys", conn_id)
        key_id = f"case-{uuid.uuid4()}"
        host, simulator = self._simulator_for(case, key, key_id)
        fields, extras = key.fields(
            passphrase_override=f"wrong-{uuid.uuid4().hex}" if case.setup == "wrong_passphrase" else None
        )
        if case.setup == "costly_key":  # an encrypted key asking for 2**32 PBKDF2 rounds
            costly = encrypted_keys.crafted(encrypted_keys.pbes2(encrypted_keys.pbkdf2(2**32)))
            fields, extras = (
                {},
                {"private_key": costly.decode(), "private_key_passphrase": f"pp-{uuid.uuid4().hex}"},
            )
        self.home.set_connection(
            conn_id,
            "ssh" if case.setup == "ssh_conn_type" else "kalshi",
            # pem_in_key_id: the key pasted into the key ID field as well (a paste into the wrong box).
            login=key.pem.decode() if case.setup == "pem_in_key_id" else key_id,
            host=host,
            extra={**(extras_override or case.extras), **extras},
            **fields,
        )
        passphrase = extras.get("private_key_passphrase")
        run = CaseRun(case, conn_id, key, key_id, simulator, len(self.runs), passphrase)
        self.runs.append(run)
        return run

    def _simulator_for(self, case: Case, key: CaseKey, key_id: str):
        if case.setup not in SETUPS:
            raise ValueError(f"unknown setup {case.setup!r}")
        if case.setup == "closed_port":
            port_context = closed_port()
            port = port_context.__enter__()
            self._cleanup.append(lambda: port_context.__exit__(None, None, None))
            return f"http://127.0.0.1:{port}/trade-api/v2", None
        if case.setup == "skewed_clock":
            skewed = SkewedSimulator(self.workdir / "skewed", key_id, key.key, offset_seconds=60)
            self._cleanup.append(skewed.stop)
            return skewed.base_url, skewed
        simulator = new_simulator()
        self._cleanup.append(simulator.stop)
        if case.setup == "wrong_key":
            simulator.add_account(key_id, generate_private_key("rsa"), total_resting_order_value=case.value)
        elif case.setup != "unknown_key":
            simulator.add_account(key_id, key.key, total_resting_order_value=case.value, **case.account)
        if case.faults:
            simulator.push_faults([dict(fault) for fault in case.faults])
        if case.setup == "maintenance":
            simulator.exchange.start_maintenance(MAINTENANCE_RESUME)
        if case.setup == "wrong_path":
            return simulator.root_url + "/trade-api/v1", simulator
        return simulator.base_url, simulator

    @property
    def conn_ids(self) -> list[str]:
        return [run.conn_id for run in self.runs]

    def run(self, warehouse: Warehouse, run_after: str | None = None):
        result = run_dag(self.home, {**warehouse.conf, "kalshi_conn_ids": self.conn_ids}, run_after)
        records = self.home.task_records(result.run_id) if result.run_id else {}
        sections = result.task_logs()
        outcomes = {}
        for run in self.runs:
            index = run.map_index
            outcomes[run.conn_id] = CaseOutcome(
                run=run,
                fetch=records.get((FETCH, index), TaskRecord(None, 0)),
                load=records.get((LOAD, index), TaskRecord(None, 0)),
                log=sections.get((FETCH, index), "") + "\n" + sections.get((LOAD, index), ""),
                rows=warehouse.rows(run.conn_id),
                requests=run.requests(),
                balances=warehouse.balances(run.conn_id),
                history=warehouse.history(run.conn_id),
            )
        return result, outcomes

    def close(self) -> None:
        # Quietly: this may run after pytest has printed its summary.
        logging.getLogger("kalshi_simulator").setLevel(logging.WARNING)
        while self._cleanup:
            try:
                self._cleanup.pop()()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
