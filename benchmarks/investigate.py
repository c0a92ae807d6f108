"""Where the overhead is: profiles and what-if measurements behind benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/investigate.py parse|hook|warehouse [--samples N]

- ``parse``: ``-X importtime`` of what the DAG file imports beyond Airflow, and the time of
  ``DagBag(file)`` with every import done beforehand (so: DAG construction alone), for the DAG,
  the one-task floor and the same-shape no-op DAG.
- ``hook``: the cost of each step of a new hook (connection lookup, key load, first request), and
  the RSA key load with and without cryptography's key validation.
- ``warehouse``: ``upsert_snapshots`` of 10,000 account-hours split into its statements, and
  what-if variants patched in this process only (the provider's files are not touched):
  ``skip_fresh_delete`` (one range SELECT of the stored hours first, then the breakdown DELETE
  only for those; every hour here is new, so no DELETE runs) and
  ``fast_sqlite_datetime`` (UTCDateTime binds the final text on SQLite in one step), and
  ``driver_executemany`` (the same upsert written through the DBAPI driver, see ``driver_upsert``),
  next to the benchmark's floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BENCH_DIR, PYTHON, REPO, base_env, kalshi_conn_json, simulator  # noqa: E402

DAG_FILE = REPO / "dags" / "kalshi_total_resting_order_value.py"


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms"


# -- parse -----------------------------------------------------------------------------------------

_PREIMPORTED_DAGBAG = """
import sys, time
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk.definitions.retry_policy
from airflow.sdk import DAG, Asset, Param, task, task_group
import kalshi_provider.exceptions, kalshi_provider.operators.kalshi, kalshi_provider.pipeline
try:
    import kalshi_provider.assets
except ImportError:
    pass
t0 = time.perf_counter()
DagBag(dag_folder=sys.argv[1])
print(time.perf_counter() - t0)
"""

_IMPORTTIME = """
import sys
from airflow.dag_processing.dagbag import DagBag
print("MARK", file=sys.stderr, flush=True)
DagBag(dag_folder=sys.argv[1])
"""


def investigate_parse(samples: int) -> None:
    env = base_env(Path(tempfile.mkdtemp(prefix="investigate-home-")))
    files = {
        "ours": DAG_FILE,
        "one-task floor": BENCH_DIR / "floor_dags" / "parse_floor.py",
        "same-shape no-op": BENCH_DIR / "floor_dags" / "e2e_floor.py",
    }
    self_us: dict[str, list[int]] = {}
    for _ in range(3):  # one -X importtime run is noisy: keep the median per module
        done = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", _IMPORTTIME, str(DAG_FILE)],
            env=env,
            capture_output=True,
            text=True,
        )
        for line in done.stderr.split("MARK", 1)[-1].splitlines():
            if line.startswith("import time:"):
                own, _, name = line.split(":", 1)[1].split("|")
                if "kalshi_provider" in name or "retry_policy" in name:
                    self_us.setdefault(name.strip(), []).append(int(own))
    print("Imports during DagBag(DAG file) that the one-task floor does not need (self time, median of 3):")
    for name, values in self_us.items():
        print(f"  {statistics.median(values) / 1000:6.2f} ms  {name}")
    total = sum(statistics.median(v) for v in self_us.values()) / 1000
    print(f"  {total:6.2f} ms  in all")
    print(f"\nDagBag(file) with all imports done first (DAG construction alone), median of {samples}:")
    times: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(samples):
        for name, path in files.items():
            out = subprocess.run(
                [PYTHON, "-c", _PREIMPORTED_DAGBAG, str(path)], env=env, capture_output=True, text=True
            )
            times[name].append(float(out.stdout.strip().splitlines()[-1]))
    for name, values in times.items():
        print(f"  {name:18} {_median_ms(values)}")
    profile = subprocess.run(
        [
            PYTHON,
            "-c",
            _PREIMPORTED_DAGBAG.replace(
                "t0 = time.perf_counter()\nDagBag(dag_folder=sys.argv[1])",
                "import cProfile, pstats\nt0 = time.perf_counter()\npr = cProfile.Profile()\npr.enable()\n"
                "DagBag(dag_folder=sys.argv[1])\npr.disable()\n"
                "pstats.Stats(pr, stream=sys.stderr).sort_stats('cumulative').print_stats("
                "'_validate_params|apply_defaults|task_group.py|decorator.py')",
            ),
            str(DAG_FILE),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    print("\ncProfile of DAG construction (selected, cumulative):")
    for line in profile.stderr.splitlines():
        if "(" in line and ("validate_params" in line or "expand" in line or "__call__" in line):
            print("  " + line.strip()[:150])


# -- hook ------------------------------------------------------------------------------------------

_HOOK_STEPS = """
import json, os, statistics, sys, time
from cryptography.hazmat.primitives import serialization
from kalshi_provider.hooks.kalshi import KalshiHook
KalshiHook("kalshi_bench").get_total_resting_order_value()
rows = []
for _ in range(int(sys.argv[1])):
    hook = KalshiHook("kalshi_bench")
    marks = [time.perf_counter(), time.process_time()]
    stamps = []
    for step in (lambda: hook._connection, lambda: hook.settings, lambda: hook._session,
                 hook.get_total_resting_order_value, hook.get_total_resting_order_value):
        w, c = time.perf_counter(), time.process_time()
        step()
        stamps.append((time.perf_counter() - w, time.process_time() - c))
    rows.append(stamps)
names = ["get_connection", "settings", "session + key load", "1st request (new TCP)", "2nd request"]
for i, name in enumerate(names):
    wall = statistics.median(r[i][0] for r in rows) * 1000
    cpu = statistics.median(r[i][1] for r in rows) * 1000
    print(f"  {name:24} wall {wall:7.2f} ms   cpu {cpu:7.2f} ms")
pem = open(json.loads(os.environ["AIRFLOW_CONN_KALSHI_BENCH"])["extra"]["private_key_path"], "rb").read()
for skip in (False, True):
    t = time.process_time()
    for _ in range(10):
        serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=skip)
    print(f"  load_pem_private_key(unsafe_skip_rsa_key_validation={skip}): "
          f"{(time.process_time() - t) / 10 * 1000:.2f} ms CPU")
"""


_HOOK_IMPORT = """
import sys, time
import airflow.sdk.execution_time.task_runner  # what a task process has loaded before execute()
before = {m: m in sys.modules for m in ("requests", "urllib3", "tenacity", "cryptography", "httpx")}
t0 = time.perf_counter()
import kalshi_provider.hooks.kalshi
print(f"{(time.perf_counter() - t0) * 1000:.1f} {before}")
"""


def investigate_hook(samples: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="investigate-hook-"))
    with simulator(workdir=workdir) as ready:
        env = base_env(workdir)
        env["AIRFLOW_CONN_KALSHI_BENCH"] = kalshi_conn_json(ready)
        print(f"A new KalshiHook, step by step (median of {samples}):")
        done = subprocess.run(
            [PYTHON, "-c", _HOOK_STEPS, str(samples)], env=env, capture_output=True, text=True
        )
        print(done.stdout or done.stderr[-3000:])
        times, loaded = [], ""
        for _ in range(samples):
            out = subprocess.run([PYTHON, "-c", _HOOK_IMPORT], env=env, capture_output=True, text=True)
            value, loaded = out.stdout.strip().split(" ", 1)
            times.append(float(value))
        print(
            f"Importing kalshi_provider.hooks.kalshi in a process that has Airflow's task runner loaded: "
            f"median {statistics.median(times):.0f} ms (already loaded before it: {loaded})"
        )


# -- warehouse -------------------------------------------------------------------------------------


@contextmanager
def _patched(obj: object, name: str, value: object):
    original = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, original)


def _timed(store_times: dict[str, float], name: str, func: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            store_times[name] = store_times.get(name, 0.0) + time.perf_counter() - t0

    return wrapper


_SQLITE_UPSERT = (
    "INSERT INTO {t} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, snapshot_hour) DO UPDATE SET "
    "total_resting_order_value_cents = excluded.total_resting_order_value_cents, "
    "observed_at = excluded.observed_at, dag_run_id = excluded.dag_run_id, loaded_at = excluded.loaded_at "
    "WHERE {t}.observed_at <= excluded.observed_at"
)
_PG_UPSERT = (
    "INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account, snapshot_hour) DO UPDATE SET "
    "total_resting_order_value_cents = excluded.total_resting_order_value_cents, "
    "observed_at = excluded.observed_at, dag_run_id = excluded.dag_run_id, loaded_at = excluded.loaded_at "
    "WHERE {t}.observed_at <= excluded.observed_at RETURNING account, snapshot_hour, (xmax = 0)"
)


def driver_upsert(engine, snapshots) -> int:
    """What-if ``driver_executemany``: the same upsert, written through the DBAPI driver.

    Same result as ``upsert_snapshots`` (rows, breakdown, which hours are won) for the two native
    dialects, without SQLAlchemy's per-row parameter processing:
    SQLite: read the stored observations first (exact: the transaction holds the write lock from
    BEGIN IMMEDIATE), then ``executemany`` the ON CONFLICT statement and the breakdown rows.
    PostgreSQL: psycopg ``executemany(..., returning=True)`` of ON CONFLICT ... RETURNING
    ``xmax = 0`` (true for a fresh insert), so only updated hours get their breakdown deleted.
    """
    from kalshi_provider.warehouse import ensure_tables, store

    totals, _ = ensure_tables(engine)
    table = totals.name
    latest = store._latest_per_key(snapshots)
    loaded_at = datetime.now(timezone.utc)
    with store._write_transaction(engine) as conn:
        cursor = conn.connection.driver_connection.cursor()
        if conn.dialect.name == "sqlite":

            def utc(value):
                return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")

            stored = store._stored_observations(
                conn, totals, [store._total_row(s, loaded_at) for s in latest]
            )
            won = [s for s in latest if s.key not in stored or stored[s.key] <= s.observed_at]
            old = {s.key for s in won if s.key in stored}
            cursor.executemany(
                _SQLITE_UPSERT.format(t=table),
                [
                    (
                        s.account,
                        utc(s.snapshot_hour),
                        s.total_resting_order_value_cents,
                        utc(s.observed_at),
                        s.dag_run_id,
                        utc(loaded_at),
                    )
                    for s in won
                ],
            )
            hour, balance, mark = utc, (lambda d: format(d, "f")), "?"
        else:
            cursor.executemany(
                _PG_UPSERT.format(t=table),
                [
                    (
                        s.account,
                        s.snapshot_hour,
                        s.total_resting_order_value_cents,
                        s.observed_at,
                        s.dag_run_id,
                        loaded_at,
                    )
                    for s in latest
                ],
                returning=True,
            )
            won_keys, old = set(), set()
            while True:
                for account, snapshot_hour, inserted in cursor.fetchall():
                    won_keys.add((account, snapshot_hour))
                    if not inserted:
                        old.add((account, snapshot_hour))
                if not cursor.nextset():
                    break
            won = [s for s in latest if s.key in won_keys]
            hour, balance, mark = (lambda d: d), (lambda d: d), "%s"
        if old:
            cursor.executemany(
                f"DELETE FROM {table}_breakdown WHERE account = {mark} AND snapshot_hour = {mark}",
                [(s.account, hour(s.snapshot_hour)) for s in won if s.key in old],
            )
        cursor.executemany(
            f"INSERT INTO {table}_breakdown VALUES ({', '.join([mark] * 5)})",
            [
                (
                    s.account,
                    hour(s.snapshot_hour),
                    e.exchange_index,
                    balance(e.balance_dollars),
                    hour(s.observed_at),
                )
                for s in won
                for e in s.breakdown
            ],
        )
    return len(won)


def investigate_warehouse(samples: int) -> None:
    from bench_warehouse import (
        FLOOR,
        floor_postgres_connection,
        floor_sqlite_connection,
        make_snapshots,
        postgres_url,
    )
    from sqlalchemy import URL, create_engine, insert, make_url, text

    from kalshi_provider.warehouse import ensure_tables, schema, store, upsert_snapshots

    snapshots = make_snapshots(10_000, breakdown=True)

    stored_before: set = set()
    original_upsert = store._upsert_totals_native
    original_replace = store._replace_breakdown

    def upsert_noting_stored(conn, totals, rows):
        """What-if, part 1: one range SELECT first (``_stored_observations``) notes the stored hours."""
        stored_before.clear()
        stored_before.update(store._stored_observations(conn, totals, rows))
        return original_upsert(conn, totals, rows)

    def replace_stored_only(conn, breakdown, won):
        """What-if, part 2: delete old breakdown rows only for hours that had a stored row."""
        old = [s for s in won if s.key in stored_before]
        if old:
            original_replace(conn, breakdown, old)
        entries = [
            {
                "account": s.account,
                "snapshot_hour": s.snapshot_hour,
                "exchange_index": e.exchange_index,
                "balance_dollars": e.balance_dollars,
                "observed_at": s.observed_at,
            }
            for s in won
            if s.key not in stored_before
            for e in s.breakdown
        ]
        if entries:
            conn.execute(insert(breakdown), entries)

    def fast_bind_processor(self, dialect):
        """What-if: on SQLite, one step from an aware datetime to SQLAlchemy's DATETIME text."""
        if dialect.name != "sqlite":
            return original_bind_processor(self, dialect)

        def process(value):
            if value is None:
                return None
            if value.utcoffset() is None:
                raise ValueError(f"timestamps must be timezone-aware datetimes, got {value!r}")
            return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    original_bind_processor = schema.UTCDateTime.bind_processor
    variants: dict[str, list] = {
        "current": [],
        "skip_fresh_delete": [
            (store, "_upsert_totals_native", upsert_noting_stored),
            (store, "_replace_breakdown", replace_stored_only),
        ],
        "fast_sqlite_datetime": [(schema.UTCDateTime, "bind_processor", fast_bind_processor)],
        "both": [
            (store, "_upsert_totals_native", upsert_noting_stored),
            (store, "_replace_breakdown", replace_stored_only),
            (schema.UTCDateTime, "bind_processor", fast_bind_processor),
        ],
        "driver_executemany": driver_upsert,
        "floor (bench_warehouse)": "floor",
    }

    def run_variant(make_engine: Callable, patches) -> dict[str, float]:
        times: dict[str, float] = {}
        engine = make_engine()
        try:
            if patches == "floor":
                ensure_tables(engine, table_name=FLOOR)
                raw = engine.raw_connection()
                try:
                    write = (
                        floor_sqlite_connection
                        if engine.dialect.name == "sqlite"
                        else floor_postgres_connection
                    )
                    times["total"] = write(raw.driver_connection, snapshots)
                finally:
                    raw.close()
                return times
            ensure_tables(engine)
            if callable(patches):
                t0 = time.perf_counter()
                assert patches(engine, snapshots) == len(snapshots)
                times["total"] = time.perf_counter() - t0
                return times
            with (
                _patch_all(patches),
                _patch_all(
                    [  # timers wrap whatever the variant installed, so they are built inside its patches
                        (store, name, _timed(times, label, getattr(store, name)))
                        for name, label in (
                            ("_upsert_totals_native", "upsert totals"),
                            ("_replace_breakdown", "replace breakdown"),
                        )
                    ]
                ),
            ):
                t0 = time.perf_counter()
                assert upsert_snapshots(engine, snapshots) == len(snapshots)
                times["total"] = time.perf_counter() - t0
        finally:
            engine.dispose()
        return times

    @contextmanager
    def _patch_all(patches):
        if not patches:
            yield
            return
        (obj, name, value), rest = patches[0], patches[1:]
        with _patched(obj, name, value), _patch_all(rest):
            yield

    def report(label: str, make_engine: Callable) -> None:
        results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(samples):
            for name, patches in variants.items():
                results[name].append(run_variant(make_engine, patches))
        print(
            f"\n{label}: upsert_snapshots of {len(snapshots):,} account-hours with breakdown, "
            f"median of {samples}"
        )
        for name, runs in results.items():
            parts = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            detail = ", ".join(f"{k} {v * 1000:.0f}" for k, v in parts.items() if k != "total")
            print(f"  {name:24} total {parts['total'] * 1000:6.0f} ms" + (f"  ({detail})" if detail else ""))

    workdir = Path(tempfile.mkdtemp(prefix="investigate-warehouse-"))
    report(
        "SQLite",
        lambda: create_engine(URL.create("sqlite", database=str(workdir / f"{uuid.uuid4().hex}.db"))),
    )
    with postgres_url() as url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")

        def pg_engine():
            name = f"i_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
            return create_engine(make_url(url), connect_args={"options": f"-csearch_path={name}"})

        report("PostgreSQL", pg_engine)
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("parse", "hook", "warehouse"))
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="investigate-home-"))
    {"parse": investigate_parse, "hook": investigate_hook, "warehouse": investigate_warehouse}[args.what](
        args.samples
    )


if __name__ == "__main__":
    main()
