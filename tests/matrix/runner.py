"""Install the built wheel into a fresh venv per Airflow line and record what that Airflow does with it.

Each line runs as a user would: Airflow (core and task SDK) installed first, as resolved in that
line's day; then the wheel, with Airflow pinned so no resolver can move it; an empty plugins
folder and a DAG folder holding copies of ``dags/``; connections as ``AIRFLOW_CONN_*`` variables
pointing at the simulator (which runs in the test process, never from the wheel). Every command
and its output is recorded in a :class:`LineRun`; the tests assert on it.

Two lines run at a time (the checks are Airflow processes, one core each). The Airflow part of
each venv (relocatable, bytecode compiled) and its migrated metadata DB are cached under
``~/.cache/airflow-provider-kalshi/matrix`` by a hash of their inputs; every run copies that venv
afresh and installs the newly built wheel into the copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.fixtures.airflow import COMMAND_TIMEOUT, AirflowHome, Command, run_command
from tests.matrix.lines import AirflowLine

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")
HOURLY = "kalshi_total_resting_order_value"
#: Where the run without a logical date writes, so its row is its own.
TRIGGERED_TABLE = "kalshi_triggered_run"
INSTALL_TIMEOUT = 1200  # a cold resolve downloads a few hundred MB


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "airflow-provider-kalshi" / "matrix"


def find_uv() -> str:
    """The ``uv`` of the test venv (requirements-test.txt), else the one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise RuntimeError(
            "uv is needed to build the Airflow-line venvs: `bash scripts/setup.sh` installs it"
        )
    return found


def build_wheel(out_dir: Path) -> Path:
    """``uv build``: the sdist, then the wheel from it, so no stale build/ tree leaks in."""
    done = subprocess.run(
        [find_uv(), "build", "--quiet", "--out-dir", str(out_dir), str(REPO)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"uv build failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    [wheel] = out_dir.glob("airflow_provider_kalshi-*.whl")
    return wheel


@dataclass
class Account:
    conn_id: str
    key_id: str
    private_pem: str = field(repr=False)  # never in a failure report


@dataclass(repr=False)
class LineRun:
    line: AirflowLine
    root: Path
    #: Every command of the line, by step name.
    steps: dict[str, Command] = field(default_factory=dict)
    #: Installed distributions (name -> version) before and after installing the wheel.
    before_wheel: dict[str, str] = field(default_factory=dict)
    after_wheel: dict[str, str] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    #: What the simulator saw from this line's keys: (key_id, method, path, status, signature_valid).
    requests: list[tuple[str | None, str, str, int | None, bool]] = field(default_factory=list)
    #: The Kalshi connections given to this line, by conn id.
    accounts: dict[str, Account] = field(default_factory=dict)
    #: The line's Airflow in its home: the wheel installed, an empty plugins folder, copies of dags/.
    airflow: AirflowHome | None = None
    error: str | None = None

    def __repr__(self) -> str:  # short in failure reports: outputs are shown by the assertions
        return f"LineRun(Airflow {self.line.version}, {self.root}, error={self.error!r})"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.db"

    def step(self, name: str) -> Command:
        assert self.error is None, f"Airflow {self.line.version}: {self.error}"
        assert name in self.steps, f"Airflow {self.line.version}: step {name!r} did not run"
        return self.steps[name]

    def listed(self, name: str) -> list[dict[str, Any]]:
        """The JSON list an ``airflow ... --output json`` step printed (log lines around it skipped)."""
        step = self.step(name)
        assert step.returncode == 0, step.tail()
        for line in step.output.splitlines():
            if line.startswith("[{") or line.strip() == "[]":
                return json.loads(line)
        raise AssertionError(f"no JSON list in the output of {name}:\n{step.tail()}")

    def warehouse_rows(self, table: str = HOURLY) -> list[dict[str, Any]]:
        with sqlite3.connect(self.warehouse) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY snapshot_hour")]  # noqa: S608


class LineRunner:
    """Runs every check of one line, in order; a failing setup step stops the line, not the others."""

    def __init__(
        self, line: AirflowLine, root: Path, wheel: Path, accounts: dict[str, Account], base_url: str
    ):
        self.run = LineRun(line, root, accounts=accounts)
        self.wheel = wheel
        self.accounts = accounts
        self.base_url = base_url
        self.uv = find_uv()
        home = self.run.home
        self.home = AirflowHome(
            home, venv=self.run.venv, dags_folder=home / "dags", plugins_folder=home / "plugins"
        )
        self.run.airflow = self.home
        self.home.set_config("core", "test_connection", "Enabled")
        # Keep the DAG's retry schedule but cap each wait: a regression that retries a permanent
        # error shows as extra tries instead of minutes of waiting.
        self.home.set_config("core", "max_task_retry_delay", 1)
        self.home.set_connection("kalshi_warehouse", "sqlite", host=str(self.run.warehouse))
        for account in accounts.values():
            self.home.set_connection(
                account.conn_id,
                "kalshi",
                login=account.key_id,
                password=account.private_pem,
                host=base_url,
                extra={"max_retries": 1, "timeout": 10},
            )

    def _step(self, name: str, command: Command) -> Command:
        self.run.steps[name] = command
        return command

    def _exec(self, name: str, argv: list[str], *, env: dict[str, str], timeout: float = COMMAND_TIMEOUT):
        return self._step(name, run_command(argv, env=env, cwd=self.run.home, timeout=timeout))

    # -- the line ------------------------------------------------------------------------------

    def execute(self) -> LineRun:
        try:
            self._prepare()
            self._check()
        except Exception as err:
            self.run.error = f"{type(err).__name__}: {err}"
        return self.run

    def _prepare(self) -> None:
        line, run = self.run.line, self.run
        (run.home / "plugins").mkdir(parents=True)  # empty: the plugin must come from the wheel
        shutil.copytree(REPO / "dags", run.home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
        uv_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
        # The team's Airflow, as its line resolved: built once per input hash, then copied.
        copy = ["cp", "-a", str(self._airflow_venv(uv_env)), str(run.venv)]
        self._exec("copy_airflow_venv", copy, env=uv_env).check()
        run.before_wheel = self._installed(uv_env)
        pip = [self.uv, "pip", "install", "--python", str(run.venv / "bin" / "python"), "--exclude-newer"]
        wheel = [*pip, line.resolved_as_of, str(self.wheel), *line.pins]
        self._exec("install_wheel", wheel, timeout=INSTALL_TIMEOUT, env=uv_env).check()
        run.after_wheel = self._installed(uv_env)
        self._metadata_db()

    def _airflow_venv(self, uv_env: dict[str, str]) -> Path:
        """A relocatable venv with the line's Airflow and compiled bytecode, cached by its inputs."""
        line = self.run.line
        inputs = [
            line.version,
            line.task_sdk,
            line.resolved_as_of,
            *line.extras,
            sys.version,
            self.uv_version,
        ]
        digest = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]
        cached = cache_dir() / f"venv-{line.version}-{digest}"
        if (cached / "bin" / "airflow").exists():
            return cached
        building = cache_dir() / f".building-{line.version}-{os.getpid()}-{time.monotonic_ns()}"
        shutil.rmtree(building, ignore_errors=True)
        venv = [self.uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(building)]
        self._exec("create_airflow_venv", venv, env=uv_env).check()
        install = [
            *(self.uv, "pip", "install", "--compile-bytecode", "--python", str(building / "bin" / "python")),
            *(
                "--exclude-newer",
                line.resolved_as_of,
                *line.pins,
                "apache-airflow-providers-sqlite",
                *line.extras,
            ),
        ]
        self._exec("install_airflow", install, timeout=INSTALL_TIMEOUT, env=uv_env).check()
        try:
            building.rename(cached)
        except OSError:  # another run finished the same venv first
            shutil.rmtree(building, ignore_errors=True)
        return cached

    @property
    def uv_version(self) -> str:
        return subprocess.run(
            [self.uv, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()

    def _installed(self, env: dict[str, str]) -> dict[str, str]:
        done = subprocess.run(
            [self.uv, "pip", "list", "--format", "json", "--python", str(self.run.venv / "bin" / "python")],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=True,
        )
        return {row["name"].lower(): row["version"] for row in json.loads(done.stdout)}

    def _metadata_db(self) -> None:
        """A migrated metadata DB: copied from the cache when this exact Airflow environment made one."""
        digest = hashlib.sha256(json.dumps(sorted(self.run.before_wheel.items())).encode()).hexdigest()[:16]
        cached = cache_dir() / f"airflow-{self.run.line.version}-{digest}.db"
        target = self.run.home / "airflow.db"
        if cached.exists():
            shutil.copyfile(cached, target)
            return
        self._step("db_migrate", self.home.airflow("db", "migrate")).check()
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(target, partial)
        partial.replace(cached)

    def _check(self) -> None:
        home = self.home
        self._step("providers_list", home.airflow("providers", "list", "--output", "json"))
        self._step("plugins", home.airflow("plugins", "--output", "json"))
        self._step("connections_test", home.airflow("connections", "test", "kalshi_default"))
        if self.run.line.version.startswith("3.0."):
            # 3.0's DAG.test does not register the DAG's assets, so a task with an outlet fails
            # until the DAG is in the metadata DB, as the dag-processor puts it in a deployment.
            self._step("dags_reserialize", home.airflow("dags", "reserialize"))
        self._step("dags_test", home.dags_test(HOURLY).command)
        # The warehouse's command after that run: the wheel's console script on every line, and
        # the same command inside Airflow's CLI where the line reads the provider info's "cli".
        script = [str(self.run.venv / "bin" / "kalshi-warehouse"), "status"]
        self._exec("warehouse_script", script, env=home.env)
        self._step("warehouse_airflow_cli", home.airflow("kalshi-warehouse", "status"))
        self._step("triggered_run", home.dag_test(HOURLY, triggered=True, conf=TRIGGERED_CONF).command)
        self._backfill()
        # The chart asks the auth manager about the DAGs the metadata DB knows: both, as the
        # dag-processor registers them in a deployment.
        self._step("dags_reserialize_both", home.airflow("dags", "reserialize"))
        probe_env = {
            "AIRFLOW__CORE__AUTH_MANAGER": "__main__.OneReaderAuthManager",
            "AIRFLOW__API_AUTH__JWT_SECRET": hashlib.sha256(os.urandom(16)).hexdigest(),
        }
        step = self._step("probe", home.python(str(PROBE), str(home.dags_folder), env=probe_env))
        for line in step.output.splitlines():
            if line.startswith("PROBE-RESULT "):
                self.run.probe = json.loads(line.removeprefix("PROBE-RESULT "))

    def _backfill(self) -> None:
        """``airflow backfill create`` for an hour three hours ago: refused from 3.2 on; before, the
        backfill's run exists, and its first task runs the way ``airflow tasks test`` runs it."""
        home = self.home
        if not self.run.line.version.startswith("3.0."):  # 3.0 reserialized before its dags test
            self._step("backfill_reserialize", home.airflow("dags", "reserialize"))
        hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        dates = ("--from-date", hour.isoformat(), "--to-date", hour.isoformat())
        created = self._step(
            "backfill_create", home.airflow("backfill", "create", "--dag-id", HOURLY, *dates)
        )
        if created.returncode == 0:
            # No scheduler here: start the queued run as the scheduler would, then run its first
            # task in process (``tasks test`` fails on a run that has not started).
            self._step("backfill_start", home.python("-c", START_BACKFILL_RUNS, HOURLY))
            for run in home.dag_runs(HOURLY, backfill=True):
                first = home.airflow("tasks", "test", HOURLY, "accounts_to_read", run["run_id"])
                self._step("backfill_first_task", first)


#: What the scheduler does to a queued run it starts: state running (which stamps its start_date).
START_BACKFILL_RUNS = """
import sys
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
with create_session() as session:
    for run in session.query(DagRun).filter(DagRun.dag_id == sys.argv[1], DagRun.run_type == "backfill"):
        run.set_state(DagRunState.RUNNING)
"""

#: A run the way the UI or the REST API starts one: no logical date, run_after now.
TRIGGERED_CONF = {
    "kalshi_conn_ids": ["kalshi_default", "kalshi_no_fcm", "kalshi_refused"],
    "table": TRIGGERED_TABLE,
}
