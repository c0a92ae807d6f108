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

from tests.matrix.lines import AirflowLine

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")
HOURLY = "kalshi_total_resting_order_value"
#: Where the run without a logical date writes, so its row is its own.
TRIGGERED_TABLE = "kalshi_triggered_run"
INSTALL_TIMEOUT = 1200  # a cold resolve downloads a few hundred MB
COMMAND_TIMEOUT = 600


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
class Step:
    command: list[str]
    returncode: int
    output: str
    seconds: float

    def tail(self, chars: int = 4000) -> str:
        return f"$ {' '.join(self.command)}\n(exit {self.returncode})\n{self.output[-chars:]}"


@dataclass
class Account:
    conn_id: str
    key_id: str
    private_pem: str = field(repr=False)  # never in a failure report


@dataclass(repr=False)
class LineRun:
    line: AirflowLine
    root: Path
    steps: dict[str, Step] = field(default_factory=dict)
    #: Installed distributions (name -> version) before and after installing the wheel.
    before_wheel: dict[str, str] = field(default_factory=dict)
    after_wheel: dict[str, str] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    #: What the simulator saw from this line's keys: (key_id, method, path, status, signature_valid).
    requests: list[tuple[str | None, str, str, int | None, bool]] = field(default_factory=list)
    #: The Kalshi connections given to this line, by conn id.
    accounts: dict[str, Account] = field(default_factory=dict)
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

    def step(self, name: str) -> Step:
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

    def dag_runs(self, dag_id: str = HOURLY, *, backfill: bool = False) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first: a backfill's, or (by default) all the others."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT run_id, state, run_after, logical_date FROM dag_run WHERE dag_id = ? "
                f"AND run_type {'=' if backfill else '!='} 'backfill' ORDER BY id",
                (dag_id,),
            )
            return [dict(row) for row in rows]

    def task_instances(self, run_id: str) -> dict[tuple[str, int], tuple[str | None, int]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "SELECT task_id, map_index, state, try_number FROM task_instance WHERE run_id = ?", (run_id,)
            )
            return {(task_id, index): (state, tries) for task_id, index, state, tries in rows}

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

    # -- commands ------------------------------------------------------------------------------

    def _exec(self, name: str, command: list[str], *, timeout: float = COMMAND_TIMEOUT, env=None) -> Step:
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                env=env or self.env,
                cwd=self.run.home,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            step = Step(command, done.returncode, done.stdout + done.stderr, time.monotonic() - started)
        except subprocess.TimeoutExpired as err:
            output = (err.stdout or b"").decode(errors="replace") + (err.stderr or b"").decode(
                errors="replace"
            )
            step = Step(command, -1, f"{output}\n[timed out after {timeout} s]", time.monotonic() - started)
        self.run.steps[name] = step
        return step

    def _must(self, step: Step, what: str) -> None:
        if step.returncode != 0:
            raise RuntimeError(f"{what} failed:\n{step.tail()}")

    def airflow(self, name: str, *args: str, **kwargs: Any) -> Step:
        return self._exec(name, [str(self.run.venv / "bin" / "airflow"), *args], **kwargs)

    def python(self, name: str, *args: str, **kwargs: Any) -> Step:
        return self._exec(name, [str(self.run.venv / "bin" / "python"), *args], **kwargs)

    @property
    def env(self) -> dict[str, str]:
        home = self.run.home
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "UV_PROJECT"))
        }
        env.update(
            PATH=f"{self.run.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            AIRFLOW_HOME=str(home),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
            AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(home / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            # Keep the DAG's retry schedule but cap each wait: a regression that retries a
            # permanent error shows as extra tries instead of minutes of waiting.
            AIRFLOW__CORE__MAX_TASK_RETRY_DELAY="1",
            AIRFLOW_CONN_KALSHI_WAREHOUSE=json.dumps(
                {"conn_type": "sqlite", "host": str(self.run.warehouse)}
            ),
        )
        for account in self.accounts.values():
            env[f"AIRFLOW_CONN_{account.conn_id.upper()}"] = json.dumps(
                {
                    "conn_type": "kalshi",
                    "login": account.key_id,
                    "password": account.private_pem,
                    "host": self.base_url,
                    "extra": {"max_retries": 1, "timeout": 10},
                }
            )
        return env

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
        self._must(
            self._exec("copy_airflow_venv", ["cp", "-a", str(self._airflow_venv(uv_env)), str(run.venv)]),
            "cp",
        )
        run.before_wheel = self._installed(uv_env)
        pip = [self.uv, "pip", "install", "--python", str(run.venv / "bin" / "python"), "--exclude-newer"]
        wheel = [*pip, line.resolved_as_of, str(self.wheel), *line.pins]
        self._must(
            self._exec("install_wheel", wheel, timeout=INSTALL_TIMEOUT, env=uv_env), "Installing the wheel"
        )
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
        self._must(self._exec("create_airflow_venv", venv, env=uv_env), "uv venv")
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
        self._must(
            self._exec("install_airflow", install, timeout=INSTALL_TIMEOUT, env=uv_env), "Installing Airflow"
        )
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
        self._must(self.airflow("db_migrate", "db", "migrate"), "airflow db migrate")
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(target, partial)
        partial.replace(cached)

    def _check(self) -> None:
        self.airflow("providers_list", "providers", "list", "--output", "json")
        self.airflow("plugins", "plugins", "--output", "json")
        self.airflow("connections_test", "connections", "test", "kalshi_default")
        if self.run.line.version.startswith("3.0."):
            # 3.0's DAG.test does not register the DAG's assets, so a task with an outlet fails
            # until the DAG is in the metadata DB, as the dag-processor puts it in a deployment.
            self.airflow("dags_reserialize", "dags", "reserialize")
        self.airflow("dags_test", "dags", "test", HOURLY)
        # The warehouse's command after that run: the wheel's console script on every line, and
        # the same command inside Airflow's CLI where the line reads the provider info's "cli".
        self._exec("warehouse_script", [str(self.run.venv / "bin" / "kalshi-warehouse"), "status"])
        self.airflow("warehouse_airflow_cli", "kalshi-warehouse", "status")
        self.python(
            "triggered_run", "-c", TRIGGERED_RUN, str(self.run.home / "dags"), json.dumps(TRIGGERED_CONF)
        )
        self._backfill()
        # The chart asks the auth manager about the DAGs the metadata DB knows: both, as the
        # dag-processor registers them in a deployment.
        self.airflow("dags_reserialize_both", "dags", "reserialize")
        probe_env = {
            **self.env,
            "AIRFLOW__CORE__AUTH_MANAGER": "__main__.OneReaderAuthManager",
            "AIRFLOW__API_AUTH__JWT_SECRET": hashlib.sha256(os.urandom(16)).hexdigest(),
        }
        step = self.python("probe", str(PROBE), str(self.run.home / "dags"), env=probe_env)
        for line in step.output.splitlines():
            if line.startswith("PROBE-RESULT "):
                self.run.probe = json.loads(line.removeprefix("PROBE-RESULT "))

    def _backfill(self) -> None:
        """``airflow backfill create`` for an hour three hours ago: refused from 3.2 on; before, the
        backfill's run exists, and its first task runs the way ``airflow tasks test`` runs it."""
        if not self.run.line.version.startswith("3.0."):  # 3.0 reserialized before its dags test
            self.airflow("backfill_reserialize", "dags", "reserialize")
        hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        dates = ("--from-date", hour.isoformat(), "--to-date", hour.isoformat())
        created = self.airflow("backfill_create", "backfill", "create", "--dag-id", HOURLY, *dates)
        if created.returncode == 0:
            # No scheduler here: start the queued run as the scheduler would, then run its first
            # task in process (``tasks test`` fails on a run that has not started).
            self.python("backfill_start", "-c", START_BACKFILL_RUNS, HOURLY)
            for run in self.run.dag_runs(backfill=True):
                self.airflow(
                    "backfill_first_task", "tasks", "test", HOURLY, "accounts_to_read", run["run_id"]
                )


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
TRIGGERED_RUN = """
import json, sys
from datetime import datetime, timezone
from kalshi_provider.version_compat import AIRFLOW_V_3_2_PLUS
if AIRFLOW_V_3_2_PLUS:
    from airflow.dag_processing.dagbag import DagBag
else:
    from airflow.models.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["kalshi_total_resting_order_value"]
run = dag.test(run_after=datetime.now(timezone.utc), logical_date=None, run_conf=json.loads(sys.argv[2]))
print("TRIGGERED-RUN " + json.dumps({"run_id": run.run_id, "state": str(run.state)}))
"""
