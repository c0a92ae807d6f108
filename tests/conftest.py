"""Test-wide setup: a throwaway AIRFLOW_HOME before anything imports Airflow, shared fixtures, and the
quick suite.

The quick suite (``pytest -m quick``, the inner loop) is every test that needs no database server,
starts no process and does not wait on purpose. Nobody lists it: a test is marked here by what it
uses, as ``server`` (a server fixture, or parametrized on a server engine such as "postgresql"),
``process`` (an Airflow home, the stack or the matrix; mark a test that runs a command itself) or
``slow`` (marked by hand), and ``quick`` when it is none of them. A quick test that starts a
process, resolves or connects to anything but loopback, or connects to a database other than a
SQLite file fails, in the full suite too, so what the quick suite leaves out cannot creep back in.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Airflow reads its home and config at import time; never let tests touch ~/airflow.
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="kalshi-tests-airflow-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.postgres",
    "tests.fixtures.mariadb",
    "tests.fixtures.connections",
    "tests.fixtures.airflow",
    "tests.fixtures.stack",
]

#: Fixtures that start or reach a database server (those built on them are included).
SERVER_FIXTURES = {"postgres_server", "mariadb_server", "pgbouncer_url", "airflow_stack"}
#: Fixtures that run Airflow (or a browser) in other processes.
PROCESS_FIXTURES = {
    "migrated_airflow_home",
    "airflow_stack",
    "line_runs",
    "release_root",
    "browser",
    "browser_page",
}
#: A parameter with one of these values makes the test run against that server.
SERVER_ENGINES = {"postgresql", "postgres", "mariadb", "mysql"}


@pytest.hookimpl(tryfirst=True)  # before -m selects by these marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if used & SERVER_FIXTURES or SERVER_ENGINES.intersection(
            value for value in params.values() if isinstance(value, str)
        ):
            item.add_marker(pytest.mark.server)
        if used & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.process)
        if not any(item.get_closest_marker(name) for name in ("server", "process", "slow")):
            item.add_marker(pytest.mark.quick)


# -- the guard: what a quick test may not do ----------------------------------------------------------

_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork"}
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}
#: The violations of the quick test running now, or None while no quick test runs.
_violations: list[str] | None = None


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple) -> None:
    if _violations is None:
        return
    problem = None
    if event in _PROCESS_EVENTS and not _importing():
        what = args[1] if event == "subprocess.Popen" else args[0] if args else ""
        problem = f"starts a process ({event} {str(what)[:200]})"
    elif event == "socket.getaddrinfo" and not _is_loopback(args[0]):
        problem = f"looks up {args[0]!r}, which is not loopback"
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host, port = args[1][:2]
        if not _is_loopback(host):
            problem = f"connects to {host}:{port}, which is not loopback"
    if problem:
        _refuse(problem)


def _importing() -> bool:
    """A library shelling out while it is imported (croniter runs ``file`` to learn the word size)
    is not the test starting a process."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@event.listens_for(Engine, "do_connect")
def _database_connect(dialect, connection_record, cargs, cparams) -> None:
    """C drivers (libpq, libmariadb) open their sockets unseen by the audit hook: SQLAlchemy sees them."""
    if _violations is not None and dialect.name != "sqlite":
        _refuse(f"connects to a {dialect.name} server")


def _refuse(problem: str) -> None:
    assert _violations is not None
    _violations.append(problem)
    raise QuickTestError(f"a quick test {problem}")


class QuickTestError(RuntimeError):
    """A test the quick suite holds did what only the full suite's tests may."""


sys.addaudithook(_audit)


@contextmanager
def _guarded(item: pytest.Item) -> Iterator[None]:
    global _violations
    if item.get_closest_marker("quick") is None:
        yield
        return
    _violations = found = []
    try:
        yield
    finally:
        _violations = None
        if found:  # also when the code under test caught the error
            pytest.fail(
                f"{item.nodeid} is in the quick suite but {found[0]}: mark it `process` or `server`, "
                "or make it use a fixture that does (tests/conftest.py)",
                pytrace=False,
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with _guarded(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _guarded(item):
        return (yield)
