"""Helpers shared by the benchmark runner and its workers.

An isolated Airflow home is made the one way the tests make it (``tests/fixtures/airflow.py``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
AIRFLOW = str(Path(PYTHON).with_name("airflow"))

sys.path.insert(0, str(REPO))  # for tests.fixtures
from tests.fixtures.airflow import copy_airflow_home, isolated_airflow_env, migrate_airflow_home  # noqa: E402

__all__ = ["copy_airflow_home", "migrate_airflow_home"]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """``min-max`` of the samples, to show how noisy a median is."""
    return f"{min(values):.3g}-{max(values):.3g}" if values else "-"


def base_env(airflow_home: Path) -> dict[str, str]:
    """The environment every Airflow-touching worker gets: a throwaway home, no examples, no conns."""
    return isolated_airflow_env(airflow_home)


def run_json_worker(
    argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run a worker that prints one JSON object as its last stdout line; raise with its output if not."""
    done = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1])


@contextmanager
def simulator(workdir: Path) -> Iterator[dict[str, Any]]:
    """A Kalshi simulator process on loopback with a generated RSA key; yields its ready line."""
    state = Path(tempfile.mkdtemp(prefix="sim-state-", dir=workdir))
    ready = state / "ready.json"
    command = [PYTHON, "-m", "kalshi_simulator", "--port", "0", "--state-dir", str(state)]
    command += ["--ready-file", str(ready), "--log-level", "WARNING"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "plugins"))
    log = (state / "simulator.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start: {(state / 'simulator.log').read_text()}")
            time.sleep(0.05)
        yield json.loads(ready.read_text())
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def kalshi_conn_json(ready: dict[str, Any]) -> str:
    """An ``AIRFLOW_CONN_*`` value for the simulator's key, as scripts/run_job.py builds it."""
    return json.dumps(
        {
            "conn_type": "kalshi",
            "login": ready["key_id"],
            "host": ready["base_url"],
            "extra": {"private_key_path": ready["private_key_path"]},
        }
    )


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for dist in ("apache-airflow", "requests", "cryptography", "sqlalchemy", "psycopg", "tenacity"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "airflow": versions.pop("apache-airflow"),
        "libs": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
