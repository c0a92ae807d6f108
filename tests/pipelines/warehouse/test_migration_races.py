"""Workers that find the warehouse behind the code at the same moment migrate it once.

Two loads of one hour (two accounts, as the hourly DAG's mapped tasks), each in its own process as
on Airflow's workers, start together on 0.2.0's tables. The takeover is slowed down (half a
second, after it has looked at the tables) so that the second load arrives while the first holds
the lock: it must wait, then find the tables migrated. The control runs the same race without the
lock and sees it go wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine

from kalshi_provider.pipelines.warehouse import (
    WarehouseBusyError,
    read_snapshots,
    upgrade_warehouse,
    warehouse_status,
)
from kalshi_provider.pipelines.warehouse.locks import migration_lock
from tests.pipelines.warehouse.migrating import (
    Warehouse,
    release_tables,
    warehouse_fixture,  # noqa: F401 - the fixture "warehouse"
)

pytestmark = pytest.mark.process  # each racing load is its own interpreter

HOUR = datetime(2026, 9, 1, 10, tzinfo=timezone.utc)

#: One load task: waits for the start signal, stores its reading, prints what its upgrade did.
_WORKER = r"""
import json, sys, time
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from sqlalchemy import create_engine
from kalshi_provider.pipelines.warehouse import store_reading, versioning
from kalshi_provider.readings import AccountReading, RestingOrderValue, ShardAmount

spec = json.loads(sys.argv[1])
real_adopt, real_upgrade, upgrades = versioning._adopt, versioning.upgrade_warehouse, []

def slow_adopt(*args, **kwargs):
    time.sleep(0.5)  # the tables looked at, nothing changed yet
    return real_adopt(*args, **kwargs)

def recorded_upgrade(*args, **kwargs):
    upgrades.append(real_upgrade(*args, **kwargs).changed)

@contextmanager
def no_lock(engine, deployment, wait_seconds):
    with engine.connect() as conn, conn.begin():
        yield conn

versioning._adopt, versioning.upgrade_warehouse = slow_adopt, recorded_upgrade
if spec["without_lock"]:
    versioning.migration_lock = no_lock
engine = create_engine(spec["url"])
hour = datetime.fromisoformat(spec["hour"])
value = RestingOrderValue(100, (ShardAmount(0, Decimal(1)),))
reading = AccountReading(spec["account"], hour + timedelta(minutes=1), value)
time.sleep(max(0.0, spec["start_at"] - time.time()))
try:
    store_reading(engine, reading, snapshot_hour=hour, dag_run_id=spec["account"], schema=spec["schema"])
    error = None
except Exception as err:
    error = f"{type(err).__name__}: {str(err)[:300]}"
print(json.dumps({"upgrades": upgrades, "error": error}))
"""


def _race(warehouse: Warehouse, *, without_lock: bool = False) -> list[dict]:
    """Two load processes at once on 0.2.0's empty tables; what each one's upgrade did."""
    release_tables(warehouse)[0].metadata.create_all(warehouse.engine)
    start_at = time.time() + 3  # both processes have imported everything by then
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in (
            {"url": warehouse.url, "schema": warehouse.schema, "hour": HOUR.isoformat(), "account": account}
            | {"start_at": start_at, "without_lock": without_lock}
            for account in ("fcm_a", "fcm_b")
        )
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_racing_loads_migrate_the_warehouse_once(warehouse):
    results = _race(warehouse)
    assert [result["error"] for result in results] == [None, None]
    # One migrated; the other waited, then found the tables migrated (its upgrade changed nothing),
    # or its write, held back by the lock (SQLite's is the file's), simply found them at the head.
    assert [changed for result in results for changed in result["upgrades"] if changed] == [True]
    assert warehouse_status(warehouse.engine, **warehouse.names).current
    rows = read_snapshots(warehouse.engine, **warehouse.names)
    assert sorted(row["account"] for row in rows) == ["fcm_a", "fcm_b"]


def test_without_the_lock_racing_loads_collide(warehouse):
    """The control: the same race with the lock taken away does not end in one clean migration."""
    results = _race(warehouse, without_lock=True)
    errors = [result["error"] for result in results if result["error"]]
    changed = sorted(changed for result in results for changed in result["upgrades"])
    assert errors or changed == [True, True], results


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def bounded_engine(request, tmp_path):
    """SQLite waits for its write lock as long as the engine's busy timeout: 1 s here."""
    if request.param != "sqlite":
        yield request.getfixturevalue(f"{'postgres' if request.param == 'postgresql' else 'mariadb'}_engine")
        return
    engine = create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}", connect_args={"timeout": 1})
    yield engine
    engine.dispose()


def test_a_migration_lock_held_too_long_makes_the_load_retry(bounded_engine):
    """Another session holds the deployment's lock: a migrator gives up after its bound (1 s here)
    with a retryable error, instead of waiting as long as the lock is held."""
    engine = bounded_engine
    target = Warehouse(engine, None)
    release_tables(target)[0].metadata.create_all(engine)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with migration_lock(engine, target.table, 5):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(WarehouseBusyError) as busy:
            upgrade_warehouse(engine, **target.names, wait_seconds=1)
        assert time.monotonic() - started < 10
        assert busy.value.retryable and "the task's next try" in str(busy.value)
    finally:
        release.set()
        holder.join(30)
    assert upgrade_warehouse(engine, **target.names).changed  # once the lock is free
