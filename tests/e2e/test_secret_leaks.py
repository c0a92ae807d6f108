"""No private key, passphrase, signature or warehouse password ends up anywhere a run leaves text.

The DAG runs (Airflow itself, ``airflow dags test``) with known keys through success and every
failure class of the fault matrix: the matrix's own run (shared with tests/e2e/reliability, every
case with a PKCS#1 key in the password field, as Kalshi issues keys), a run of one case per
failure class with a passphrase-encrypted PKCS#8 key in the ``private_key`` extra (and a key
file) on a PostgreSQL warehouse whose connection has a known password, and a run with that
warehouse unreachable. Then every place text lands is searched: the CLI output (``airflow dags
test`` writes the task logs there; it writes no per-task log files, but every file under the
throwaway AIRFLOW_HOME is searched too), every table of the metadata DB (``xcom``,
``rendered_task_instance_fields``, ``task_instance``, ``log``, ...), the warehouse tables, and
the exceptions, hook messages and log records of the same failures raised in this process.
The sweep includes a key pasted into the API key ID field (``pem-in-key-id``), which the old
hook sent as a header: http.client's error then carried the PEM, with escaped line breaks that
Airflow's masker does not match, into the task log. Secrets searched for: every key's PEM body
(as given, and re-serialised as PKCS#1 and PKCS#8, through any re-wrapping or escaped line
breaks), every passphrase, every signature the simulators recorded, and the warehouse password.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from kalshi_provider.exceptions import KalshiError
from tests.e2e.leaks import PRIVATE_KEY_BLOCK, Haystack, Secrets, find_private_key_blocks
from tests.e2e.reliability.harness import (
    ENCRYPTED_IN_EXTRA,
    FETCH,
    KEY_FILE,
    LOAD,
    PKCS1_IN_PASSWORD,
    TASK_TRIES,
    Batch,
    cap_retry_delay,
    closed_port,
)
from tests.e2e.reliability.matrix import CASES
from tests.e2e.reliability.shared import matrix_run_once
from tests.fixtures.airflow import postgres_warehouse

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BY_ID = {case.id: case for case in CASES}
#: One case per failure class of the fault matrix, plus success and a recovery.
SWEPT = [
    "no-fault",
    "fault-then-recovery",
    "connection-refused",
    "timeout",
    "429-no-retry-after",
    "502-html",
    "401-wrong-key",
    "401-unknown-key",
    "401-clock-skew",
    "403-not-fcm",
    "404-wrong-base-url",
    "wrong-passphrase",
    "html-body",
    "value-string",
    "redirect",
    "pem-in-key-id",
    "not-a-kalshi-connection",
]
WAREHOUSE_PASSWORD = "wh-password-" + uuid.uuid4().hex


# -- what is in the repo, before and after ---------------------------------------------------------


def repo_entries() -> set[str]:
    """Untracked and ignored paths under the checkout (one per file), .venv and .git aside."""
    done = subprocess.run(
        [
            "git",
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--ignored",
            "--untracked-files=all",
            "--",
            ".",
            ":(exclude).venv",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return {entry[3:] for entry in done.stdout.split("\0") if entry}


KEY_SUFFIXES = (".pem", ".key", ".p8", ".p12", ".pfx", ".der")


def key_like(paths: set[str]) -> list[str]:
    files = [REPO / path for path in paths if (REPO / path).is_file()]
    by_name = [str(path) for path in files if path.name.lower().endswith(KEY_SUFFIXES)]
    return sorted(set(by_name) | {str(path) for path in find_private_key_blocks(files)})


# -- the runs --------------------------------------------------------------------------------------


@dataclass
class Sweep:
    batch: Batch
    outcomes: dict
    results: list = field(default_factory=list)
    homes: list = field(default_factory=list)
    secrets: Secrets = field(default_factory=Secrets)
    warehouse_engine: object = None
    schema: str = ""
    repo_before: set[str] = field(default_factory=set)


def _collect_secrets(sweep: Sweep, batches: list[Batch]) -> None:
    for batch in batches:
        for run in batch.runs:
            sweep.secrets.add_key(f"key of {run.conn_id}", run.key.key, run.key.pem)
            sweep.secrets.add(f"passphrase of {run.conn_id}", run.passphrase)
            sweep.secrets.add(f"passphrase of {run.conn_id}'s key", run.key.placement.passphrase)
            for request in run.requests():
                if request["signature"]:
                    sweep.secrets.add_base64(f"a signature {run.conn_id} sent", request["signature"])
    sweep.secrets.add("the warehouse password", WAREHOUSE_PASSWORD)


@pytest.fixture(scope="module")
def sweep(request, migrated_airflow_home, tmp_path_factory, postgres_url):
    repo_before = repo_entries()
    # Run 0, shared with the fault matrix: every matrix case, the PKCS#1 key in the password field.
    matrix = matrix_run_once(request)
    workdir = tmp_path_factory.mktemp("secret-sweep")
    url = make_url(postgres_url)
    schema = f"sweep_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    batches: list[Batch] = []
    warehouses = []
    try:
        # Run 1: every failure class again with the encrypted key (and a key file), on PostgreSQL.
        home = cap_retry_delay(migrated_airflow_home.copy(workdir / "airflow-1"))
        batch = Batch(home, workdir / "run-1")
        batches.append(batch)
        for case_id in SWEPT:
            batch.add(BY_ID[case_id], ENCRYPTED_IN_EXTRA, suffix=f"-{ENCRYPTED_IN_EXTRA.name}")
        for case_id in ("no-fault", "401-wrong-key"):
            batch.add(BY_ID[case_id], KEY_FILE, suffix=f"-{KEY_FILE.name}")
        warehouse = postgres_warehouse(home, url, schema, password=WAREHOUSE_PASSWORD)
        warehouses.append(warehouse)
        result, outcomes = batch.run(warehouse)

        # Run 2: the warehouse is unreachable, so the load fails with its connection in hand.
        home_2 = cap_retry_delay(migrated_airflow_home.copy(workdir / "airflow-2"))
        batch_2 = Batch(home_2, workdir / "run-2")
        batches.append(batch_2)
        batch_2.add(BY_ID["no-fault"], ENCRYPTED_IN_EXTRA)
        with closed_port() as port:
            down = postgres_warehouse(home_2, url, schema, port=port, password=WAREHOUSE_PASSWORD)
            warehouses.append(down)
            result_2, _ = batch_2.run(down)

        sweep = Sweep(
            batch,
            {**{f"matrix:{k}": v for k, v in matrix.outcomes.items()}, **outcomes},
            results=[matrix.result, result, result_2],
            homes=[matrix.home, home, home_2],
            schema=schema,
            repo_before=repo_before,
            warehouse_engine=warehouse.engine,
        )
        _collect_secrets(sweep, [matrix.batch, *batches])
        yield sweep
    finally:
        for batch in batches:
            batch.close()
        for warehouse in warehouses:
            warehouse.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _assert_no_leak(haystack: Haystack, secrets: Secrets) -> None:
    assert len(haystack) > 0 and len(secrets) > 0
    leaks = haystack.leaks(secrets)
    assert not leaks, "secrets found: " + "; ".join(f"{place}: {names[:3]}" for place, names in leaks.items())


# -- the sweep covered what it claims --------------------------------------------------------------


def test_the_runs_went_through_success_and_every_failure_class(sweep):
    expected_states = {"ok": "success", "recovered": "success", "failed": "failed", "paused": "success"}
    seen = set()
    for conn_id, outcome in sweep.outcomes.items():
        case = outcome.run.case
        assert outcome.fetch.state == expected_states[case.outcome], (conn_id, outcome.log[-3000:])
        seen.add((case.id, outcome.run.key.placement.name))
    for placement in (PKCS1_IN_PASSWORD, ENCRYPTED_IN_EXTRA):
        swept = {case_id for case_id, name in seen if name == placement.name}
        # wrong-passphrase always runs with an encrypted key, whatever the run's placement
        assert set(SWEPT) - {"wrong-passphrase"} <= swept, placement.name
    assert ("wrong-passphrase", ENCRYPTED_IN_EXTRA.name) in seen
    assert {("no-fault", KEY_FILE.name), ("401-wrong-key", KEY_FILE.name)} <= seen
    down = sweep.results[2]
    assert (down.task_state(FETCH), down.task_state(LOAD)) == ("success", "failed"), down.output[-3000:]
    assert "Connection refused" in down.output
    # The signatures the simulators recorded are among the secrets searched for.
    assert any(name.startswith("a signature") for name in sweep.secrets.windows.values())


def test_the_secrets_are_found_where_they_are(sweep):
    """The search itself works: a key, re-wrapped or JSON-escaped, and a passphrase are found."""
    run = next(r for r in sweep.batch.runs if r.key.placement is ENCRYPTED_IN_EXTRA)
    pem = run.key.pem.decode()
    body = "".join(pem.splitlines()[1:-1])
    for planted in (pem, pem.replace("\n", "\\n"), body[100:140], " ".join([body[200:212], body[212:240]])):
        assert sweep.secrets.find("log line: " + planted + " end"), planted[:30]
    assert sweep.secrets.find(f"x {run.key.placement.passphrase} y")
    assert sweep.secrets.find(f"password={WAREHOUSE_PASSWORD}")
    assert not sweep.secrets.find(Path(__file__).read_text())


# -- where text lands ------------------------------------------------------------------------------


def test_no_secret_in_the_cli_output_which_holds_the_task_logs(sweep):
    haystack = Haystack()
    for index, result in enumerate(sweep.results):
        assert "[DAG TEST] starting task_id=account_snapshot.fetch" in result.output
        haystack.add(f"airflow dags test output of run {index + 1}", result.output)
    _assert_no_leak(haystack, sweep.secrets)


def test_no_secret_in_any_file_under_airflow_home(sweep):
    haystack = Haystack()
    for index, home in enumerate(sweep.homes):
        haystack.add_tree(home.path, f"AIRFLOW_HOME of run {index + 1}")
    _assert_no_leak(haystack, sweep.secrets)


def test_no_secret_in_the_metadata_db_xcom_rendered_fields_or_any_table(sweep):
    haystack = Haystack()
    for index, home in enumerate(sweep.homes):
        counts = haystack.add_sqlite(home.path / "airflow.db", f"metadata DB of run {index + 1}")
        # The sweep read real values, not empty tables.
        assert counts["xcom"] > 0 and counts["rendered_task_instance_fields"] > 0
        assert counts["task_instance"] > 0 and counts["task_instance_history"] > 0
    _assert_no_leak(haystack, sweep.secrets)


def test_no_secret_in_the_warehouse(sweep):
    haystack = Haystack()
    with sweep.warehouse_engine.connect() as conn:
        tables = (
            conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"),
                {"schema": sweep.schema},
            )
            .scalars()
            .all()
        )
        assert tables
        for table in tables:
            rows = conn.execute(text(f'SELECT * FROM "{sweep.schema}"."{table}"')).fetchall()
            haystack.add(f"warehouse table {table}", "\n".join(map(str, rows)))
    _assert_no_leak(haystack, sweep.secrets)


class _InProcess:
    """Batch's connection target in this process: AIRFLOW_CONN_* variables via monkeypatch."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch

    def set_connection(self, conn_id, conn_type, **fields) -> None:
        from tests.fixtures.connections import conn_env_name, conn_json

        self.monkeypatch.setenv(conn_env_name(conn_id), conn_json(conn_type, **fields))


def test_no_secret_in_the_exceptions_and_log_records_of_each_failure(monkeypatch, tmp_path, caplog):
    """The same failures, raised in this process: every rendering of the exception and its chain."""
    from kalshi_provider.hooks.kalshi import KalshiHook

    caplog.set_level(logging.DEBUG)
    batch = Batch(_InProcess(monkeypatch), tmp_path)  # type: ignore[arg-type]
    secrets = Secrets()
    haystack = Haystack()
    try:
        for case_id in SWEPT:
            case = BY_ID[case_id]
            # One attempt per call for the faults that never clear: their retries add only time.
            extras = {"max_retries": 0, "timeout": 1} if case.tries == TASK_TRIES else None
            batch.add(case, ENCRYPTED_IN_EXTRA, extras=extras)
        batch.add(BY_ID["no-fault"], PKCS1_IN_PASSWORD, suffix="-pkcs1")
        for run in batch.runs:
            hook = KalshiHook(kalshi_conn_id=run.conn_id)
            # The hook refuses what the DAG fails on, and Kalshi's 403 for a key without FCM
            # access, which the DAG's fetch records instead of failing.
            refused = run.case.outcome == "failed" or run.case.account.get("fcm_member") is False
            try:
                hook.get_resting_order_value()
            except KalshiError as err:
                assert refused, run.conn_id
                rendered = [str(err), repr(err), repr(vars(err)), *traceback.format_exception(err)]
                haystack.add(f"exception of {run.conn_id}", "\n".join(rendered))
            else:
                assert not refused, run.conn_id
            haystack.add(f"hook of {run.conn_id}", f"{hook!r} {hook.test_connection()!r}")
            if "settings" in vars(hook):
                haystack.add(f"settings of {run.conn_id}", repr(hook.settings))
            if "_session" in vars(hook):
                session = hook.get_conn()
                haystack.add(f"session of {run.conn_id}", f"{session.auth!r} {vars(session.auth)!r}")
        haystack.add(
            "log records", "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text}" for r in caplog.records)
        )
        _collect_secrets(Sweep(batch, {}, secrets=secrets), [batch])
    finally:
        batch.close()
    _assert_no_leak(haystack, secrets)


# -- nothing key-like is written into the checkout -------------------------------------------------


def test_the_tests_write_their_keys_outside_the_checkout(sweep):
    for place in [Path(tempfile.gettempdir()), *(home.path for home in sweep.homes)]:
        assert not place.resolve().is_relative_to(REPO), f"{place} is inside the checkout"
    for run in sweep.batch.runs:
        if run.key.path is not None:
            assert not run.key.path.resolve().is_relative_to(REPO)
            assert run.key.path.stat().st_mode & 0o077 == 0


def test_the_simulator_cli_keeps_its_key_out_of_the_checkout(tmp_path):
    """Started from the checkout, the simulator's generated key lands in the state dir (mode 600)."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "kalshi_simulator", "--port", "0", "--ready-file", str(ready)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            if ready.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), process.stderr.read() if process.poll() is not None else "no ready file"
    finally:
        process.terminate()
        process.wait(20)
    keys = list((tmp_path / "state" / "kalshi-simulator").glob("*.pem"))
    assert len(keys) == 1 and keys[0].stat().st_mode & 0o077 == 0
    assert PRIVATE_KEY_BLOCK.search(keys[0].read_bytes())

    inside = REPO / ".simulator" / f"refused-{uuid.uuid4().hex}"
    refused = subprocess.run(
        [sys.executable, "-m", "kalshi_simulator", "--port", "0", "--state-dir", str(inside)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "inside the git checkout" in refused.stderr
    assert not inside.exists()


def test_no_key_material_was_added_to_the_checkout(sweep):
    """After the runs: no new untracked or ignored file under the repo is a key or holds one."""
    added = repo_entries() - sweep.repo_before
    assert key_like(added) == []


def test_the_tree_scan_finds_keys_in_every_form_kalshi_users_keep_them(tmp_path):
    from kalshi_simulator import generate_private_key, private_pem

    rsa_key, ed_key = generate_private_key("rsa"), generate_private_key("ed25519")
    forms = {
        "pkcs1.pem": private_pem(rsa_key),
        "pkcs8.txt": private_pem(rsa_key, fmt="pkcs8"),
        "encrypted-pkcs8": private_pem(rsa_key, "a passphrase", "pkcs8"),
        "encrypted-pkcs1": private_pem(rsa_key, "a passphrase", "pkcs1"),
        "ed25519": private_pem(ed_key),
        "conn.json": json.dumps({"password": private_pem(rsa_key).decode()}).encode(),
    }
    for name, data in forms.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "docstring.py").write_text('"""Paste the -----BEGIN RSA PRIVATE KEY----- block here."""\n')
    found = {path.name for path in find_private_key_blocks(tmp_path.iterdir())}
    assert found == set(forms)


#: Where a developer may keep their own key on purpose (.gitignore'd, docker-compose's secrets
#: dir): skipped by the tree-wide scan; a key *appearing* there during the run is still caught
#: by ``test_no_key_material_was_added_to_the_checkout``.
USER_SECRET_PLACES = {"secrets", ".env"}


def test_no_file_in_the_checkout_holds_a_private_key():
    """Every file of the tree (tracked, untracked and ignored; .git and .venv aside)."""
    files = []
    for root, dirs, names in os.walk(REPO):
        if Path(root) == REPO:
            dirs[:] = [d for d in dirs if d not in {".git", ".venv"} | USER_SECRET_PLACES]
            names = [name for name in names if name not in USER_SECRET_PLACES]
        files += [Path(root) / name for name in names]
    assert len(files) > 50
    assert find_private_key_blocks(files) == []
    assert [str(p) for p in files if p.name.lower().endswith(KEY_SUFFIXES)] == []
