"""Worker: ``upsert_snapshots`` of N account-hours vs a plain DBAPI ``executemany`` of the same rows.

Prints one JSON line with seconds per write (one sample per fresh, empty database/schema).

- ours: ``upsert_snapshots(engine, snapshots)`` (tables created beforehand, pool warm), each
  snapshot with one breakdown entry as Kalshi (and the simulator) sends it.
- floor: the same ``Snapshot`` objects turned into DBAPI tuples (the least conversion the driver
  needs: none for psycopg; UTC text and decimal text for sqlite3, in SQLAlchemy's own storage
  format) and inserted with ``executemany`` into equivalent tables (the same DDL, created by
  ``warehouse_tables`` under another name), both tables in one transaction, committed.

Also the same pair without breakdown rows (diagnostic). PostgreSQL is a throwaway server started
from tests/fixtures/postgres.py (as ``nobody`` when root), or ``KALSHI_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, func, make_url, select, text

from kalshi_provider.pipelines.warehouse import BreakdownEntry, Snapshot, ensure_tables, upsert_snapshots

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.fixtures.postgres

from tests.fixtures.postgres import throwaway_postgres  # noqa: E402

OURS = "kalshi_total_resting_order_value"
FLOOR = "floor_total_resting_order_value"
ACCOUNTS = 100


def make_snapshots(rows: int, breakdown: bool) -> list[Snapshot]:
    """``rows`` distinct account-hours: 100 accounts x rows/100 consecutive hours."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        Snapshot(
            account=f"kalshi_account_{i % ACCOUNTS:03d}",
            snapshot_hour=start + timedelta(hours=i // ACCOUNTS),
            total_resting_order_value_cents=100_000 + i,
            observed_at=start + timedelta(hours=i // ACCOUNTS, seconds=7, microseconds=123_456),
            dag_run_id=f"scheduled__{i // ACCOUNTS}",
            breakdown=(BreakdownEntry(0, Decimal("1234.56")),) if breakdown else (),
        )
        for i in range(rows)
    ]


def _sqlite_text(value: datetime) -> str:
    """What SQLAlchemy stores for a UTC timestamp on SQLite."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def floor_sqlite(path: Path, snapshots: list[Snapshot]) -> float:
    connection = sqlite3.connect(path)
    try:
        return floor_sqlite_connection(connection, snapshots)
    finally:
        connection.close()


def floor_sqlite_connection(connection: sqlite3.Connection, snapshots: list[Snapshot]) -> float:
    t0 = time.perf_counter()
    loaded_at = _sqlite_text(datetime.now(timezone.utc))
    totals = [
        (
            s.account,
            _sqlite_text(s.snapshot_hour),
            s.total_resting_order_value_cents,
            _sqlite_text(s.observed_at),
            s.dag_run_id,
            loaded_at,
        )
        for s in snapshots
    ]
    breakdown = [
        (
            s.account,
            _sqlite_text(s.snapshot_hour),
            e.exchange_index,
            format(e.balance_dollars, "f"),
            _sqlite_text(s.observed_at),
        )
        for s in snapshots
        for e in s.breakdown
    ]
    with connection:
        connection.executemany(f"INSERT INTO {FLOOR} VALUES (?, ?, ?, ?, ?, ?)", totals)
        if breakdown:
            connection.executemany(f"INSERT INTO {FLOOR}_breakdown VALUES (?, ?, ?, ?, ?)", breakdown)
    return time.perf_counter() - t0


def floor_postgres(url: str, schema: str, snapshots: list[Snapshot], per_call=None) -> float:
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as connection:
        if per_call is not None:
            return per_call(lambda s: floor_postgres_connection(connection, [s]))
        return floor_postgres_connection(connection, snapshots)


def floor_postgres_connection(connection, snapshots: list[Snapshot]) -> float:
    t0 = time.perf_counter()
    loaded_at = datetime.now(timezone.utc)
    totals = [
        (
            s.account,
            s.snapshot_hour,
            s.total_resting_order_value_cents,
            s.observed_at,
            s.dag_run_id,
            loaded_at,
        )
        for s in snapshots
    ]
    breakdown = [
        (s.account, s.snapshot_hour, e.exchange_index, e.balance_dollars, s.observed_at)
        for s in snapshots
        for e in s.breakdown
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {FLOOR} VALUES (%s, %s, %s, %s, %s, %s)", totals)
        if breakdown:
            cursor.executemany(f"INSERT INTO {FLOOR}_breakdown VALUES (%s, %s, %s, %s, %s)", breakdown)
    connection.commit()
    return time.perf_counter() - t0


def ours(engine: Engine, snapshots: list[Snapshot]) -> float:
    t0 = time.perf_counter()
    written = upsert_snapshots(engine, snapshots)
    elapsed = time.perf_counter() - t0
    if written != len(snapshots):
        raise SystemExit(f"upsert_snapshots wrote {written} of {len(snapshots)} hours")
    return elapsed


def check_counts(engine: Engine, table: str, snapshots: list[Snapshot]) -> None:
    with engine.connect() as conn:
        totals = conn.execute(select(func.count()).select_from(text(table))).scalar_one()
        parts = conn.execute(select(func.count()).select_from(text(table + "_breakdown"))).scalar_one()
    want_parts = sum(len(s.breakdown) for s in snapshots)
    if (totals, parts) != (len(snapshots), want_parts):
        raise SystemExit(
            f"{table}: {totals} rows / {parts} breakdown rows, want {len(snapshots)} / {want_parts}"
        )


def sqlite_pair(workdir: Path, snapshots: list[Snapshot]) -> dict[str, Callable[[], float]]:
    def run_ours() -> float:
        engine = create_engine(URL.create("sqlite", database=str(workdir / f"ours-{uuid.uuid4().hex}.db")))
        try:
            ensure_tables(engine, table_name=OURS)
            elapsed = ours(engine, snapshots)
            check_counts(engine, OURS, snapshots)
            return elapsed
        finally:
            engine.dispose()

    def run_floor() -> float:
        path = workdir / f"floor-{uuid.uuid4().hex}.db"
        engine = create_engine(URL.create("sqlite", database=str(path)))
        try:
            ensure_tables(engine, table_name=FLOOR)
            elapsed = floor_sqlite(path, snapshots)
            check_counts(engine, FLOOR, snapshots)
            return elapsed
        finally:
            engine.dispose()

    return {"ours": run_ours, "floor": run_floor}


def postgres_pair(url: str, snapshots: list[Snapshot], per_call=None) -> dict[str, Callable[[], float]]:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")

    @contextmanager
    def schema_engine() -> Iterator[tuple[str, Engine]]:
        name = f"b_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        engine = create_engine(make_url(url), connect_args={"options": f"-csearch_path={name}"})
        try:
            yield name, engine
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))

    def run_ours() -> float:
        with schema_engine() as (_, engine):
            ensure_tables(engine, table_name=OURS)
            if per_call is not None:
                return per_call(lambda s: upsert_snapshots(engine, [s]))
            elapsed = ours(engine, snapshots)
            check_counts(engine, OURS, snapshots)
            return elapsed

    def run_floor() -> float:
        with schema_engine() as (name, engine):
            ensure_tables(engine, table_name=FLOOR)
            if per_call is not None:
                return floor_postgres(url, name, snapshots, per_call)
            elapsed = floor_postgres(url, name, snapshots)
            check_counts(engine, FLOOR, snapshots)
            return elapsed

    return {"ours": run_ours, "floor": run_floor}


def single_row_pairs(
    sqlite_dir: Path | None, pg_url: str | None, snapshots: list[Snapshot]
) -> dict[str, dict[str, Callable[[], float]]]:
    """One account-hour per call, as each load task writes: mean seconds per call over ``snapshots``."""

    def per_call(write: Callable[[Snapshot], object]) -> float:
        t0 = time.perf_counter()
        for snapshot in snapshots:
            write(snapshot)
        return (time.perf_counter() - t0) / len(snapshots)

    def sqlite_ours() -> float:
        engine = create_engine(URL.create("sqlite", database=str(sqlite_dir / f"one-{uuid.uuid4().hex}.db")))
        try:
            ensure_tables(engine, table_name=OURS)
            return per_call(lambda s: upsert_snapshots(engine, [s]))
        finally:
            engine.dispose()

    def sqlite_floor() -> float:
        path = sqlite_dir / f"one-floor-{uuid.uuid4().hex}.db"
        engine = create_engine(URL.create("sqlite", database=str(path)))
        ensure_tables(engine, table_name=FLOOR)
        engine.dispose()
        connection = sqlite3.connect(path)
        try:
            return per_call(lambda s: floor_sqlite_connection(connection, [s]))
        finally:
            connection.close()

    pairs = {}
    if sqlite_dir is not None:
        pairs["sqlite_one_row"] = {"ours": sqlite_ours, "floor": sqlite_floor}
    if pg_url:
        pairs["postgres_one_row"] = postgres_pair(pg_url, snapshots, per_call=per_call)
    return pairs


def alternate(pair: dict[str, Callable[[], float]], samples: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in pair}
    names = list(pair)
    for round_ in range(samples):
        for name in names if round_ % 2 == 0 else names[::-1]:
            out[name].append(pair[name]())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with_breakdown = make_snapshots(args.rows, breakdown=True)
    one_by_one = make_snapshots(50, breakdown=True)
    totals_only = make_snapshots(args.rows, breakdown=False)
    results: dict[str, object] = {"rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        workdir = Path(tmp)
        results["sqlite"] = alternate(sqlite_pair(workdir, with_breakdown), args.samples)
        results["sqlite_totals_only"] = alternate(
            sqlite_pair(workdir, totals_only), max(3, args.samples // 2)
        )
        results["sqlite_version"] = sqlite3.sqlite_version
        for name, pair in single_row_pairs(workdir, None, one_by_one).items():
            results[name] = alternate(pair, args.samples)
    if args.no_postgres:
        results["postgres_error"] = "skipped (--no-postgres)"
    else:
        try:
            with throwaway_postgres() as url:
                results["postgres"] = alternate(postgres_pair(url, with_breakdown), args.samples)
                results["postgres_totals_only"] = alternate(
                    postgres_pair(url, totals_only), max(3, args.samples // 2)
                )
                pairs = single_row_pairs(None, url, one_by_one)
                results["postgres_one_row"] = alternate(pairs["postgres_one_row"], args.samples)
                engine = create_engine(url)
                with engine.connect() as conn:
                    results["postgres_version"] = conn.execute(text("SHOW server_version")).scalar_one()
                engine.dispose()
        except Exception as err:  # report, don't hide the SQLite figures
            results["postgres_error"] = f"{type(err).__name__}: {str(err)[:500]}"
    print(json.dumps(results))


if __name__ == "__main__":
    main()
