"""One benchmark measurement in this fresh process; prints one JSON line of seconds (or counts).

    python benchmarks/workers.py write|check|parse|hook|seed_chart|chart '<json arguments>'

Imports happen before any clock starts, on both sides: a load task, a DAG processor and a fetch
task have their libraries loaded by the time the measured work begins (import times are Airflow's
and the drivers', not this project's to cut).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from kalshi_provider.connection import BASE_URLS
from kalshi_provider.endpoints import BALANCE_ENDPOINT, SUBACCOUNT_BALANCES_ENDPOINT, TOTAL_ENDPOINT
from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.warehouse import bound_engine, store, warehouse_tables
from kalshi_provider.pipelines.warehouse.engine import engine_options
from kalshi_provider.readings import AccountReading, BalanceReading, SubaccountsReading
from kalshi_provider.responses import parse_balance, parse_resting_order_value, parse_subaccount_balances
from kalshi_simulator.state import cents_to_dollars, split_over_shards

now = time.perf_counter

# -- one load task's write ---------------------------------------------------------------------------

BASE_HOUR = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: What the load task passes besides the reading: its run, and its try (the fetch's is in the reading).
RUN_ID = "scheduled__2026-01-01T00:00:00+00:00"
DAG_ID = HOURLY_DAG_ID
FETCH_TRY = LOAD_TRY = 1
#: The simulator's default FCM account, as Kalshi answers in 2026: both amounts spread over shards 0-3.
TOTAL_CENTS, BALANCE_CENTS, PORTFOLIO_CENTS = 123_456, 500_000, 250_000


def reading_for(hour_index: int) -> tuple[datetime, AccountReading]:
    """The fetch task's reading of hour ``hour_index`` (every sample writes a new hour, as every run
    does), as the load task gets it: Kalshi's three answers parsed by the hook's parsers, the total
    2 s into the hour, the balance 30 ms later and the subaccounts (the primary alone, as most
    accounts have) 30 ms after that, through the XCom and back."""
    hour = BASE_HOUR + timedelta(hours=hour_index)
    observed = hour + timedelta(seconds=2, microseconds=123_456)
    total = parse_resting_order_value(
        {
            "total_resting_order_value": TOTAL_CENTS,
            "resting_order_value_breakdown": split_over_shards(TOTAL_CENTS),
        }
    )
    balance = parse_balance(
        {
            "balance": BALANCE_CENTS,
            "balance_dollars": cents_to_dollars(BALANCE_CENTS),
            "portfolio_value": PORTFOLIO_CENTS,
            "updated_ts": int(hour.timestamp()),
            "balance_breakdown": split_over_shards(BALANCE_CENTS),
        }
    )
    rows = [
        {"subaccount_number": 0, **entry, "updated_ts": int(hour.timestamp())}
        for entry in split_over_shards(BALANCE_CENTS)
    ]
    listed = parse_subaccount_balances({"subaccount_balances": rows})
    fetched = AccountReading(
        "kalshi_default",
        observed,
        total,
        BalanceReading(observed + timedelta(milliseconds=30), balance),
        try_number=FETCH_TRY,
        source=BASE_URLS["production"],
        subaccounts=SubaccountsReading(observed + timedelta(milliseconds=60), listed),
    )
    return hour, AccountReading.from_xcom(json.loads(json.dumps(fetched.to_xcom())))


def write_ours(url: str, table: str, hour: int, warm: bool = True) -> dict[str, float]:
    """The load task's write: an engine made as ``warehouse_engine`` makes it (its options and
    bounds), ``store_reading`` with the load task's arguments, dispose. Phases are split at the
    pool's first checkout (the connection and SQLAlchemy's first look at the server) and at the
    write's end; the version check rides on the first write, so it has no phase of its own."""
    marks: dict[str, float] = {}

    def write_hour(engine: Any, index: int) -> None:
        snapshot_hour, reading = readings[index]
        stored = store.store_reading(
            engine,
            reading,
            snapshot_hour=snapshot_hour,
            dag_run_id=RUN_ID,
            dag_id=DAG_ID,
            table_name=table,
            schema=None,
            try_number=LOAD_TRY,
            not_in_hour={},
        )
        if not (stored.total.held and stored.balance.held):
            raise SystemExit(f"the write of hour {index} kept an older row")

    readings = {index: reading_for(index) for index in (hour, hour + 1000)}
    cpu, t0 = time.process_time(), now()
    engine = bound_engine(create_engine(url, **engine_options(url)))
    t1 = now()
    event.listen(engine, "checkout", lambda *_: marks.setdefault("connected", now()))
    write_hour(engine, hour)
    t2 = now()
    engine.dispose()
    t3 = now()
    phases = {
        "total": t3 - t0,
        "engine": t1 - t0,
        "connect": marks["connected"] - t1,
        "write": t2 - marks["connected"],
        "dispose": t3 - t2,
        "cpu": time.process_time() - cpu,
    }
    if not warm:
        return phases
    # The same engine again (a new connection, its statements compiled): what a fresh engine pays once.
    marks.clear()
    t4 = now()
    write_hour(engine, hour + 1000)
    warm_phases = {"warm connect": marks["connected"] - t4, "warm write": now() - marks["connected"]}
    engine.dispose()
    return phases | warm_phases


#: Where the time of one cold write goes, under cProfile: (label, file, function) of cumulative times.
PROFILED = (
    ("first connect (DBAPI connect + dialect initialisation)", "sqlalchemy/pool/base.py", "__connect"),
    ("  of which SQLAlchemy's dialect initialisation", "sqlalchemy/engine/create.py", "first_connect"),
    (
        "hour rows under the keep-rule (total, balance; the version rides on the first)",
        "warehouse/hour_rows.py",
        "write_hour_row",
    ),
    (
        "rows that hang on them (breakdowns, note, balance minus resting)",
        "warehouse/hour_rows.py",
        "replace_rows",
    ),
    (
        "balance minus resting derived (pure, from the reading)",
        "warehouse/balance_minus_resting.py",
        "balance_minus_resting",
    ),
    ("history rows", "warehouse/history.py", "insert_history"),
    ("building the Table objects", "warehouse/schema.py", "warehouse_tables"),
    (
        "compiling SQL, all statements (a fresh engine's cache is empty)",
        "sqlalchemy/sql/elements.py",
        "_compile_w_cache",
    ),
)
DRIVER = ("psycopg", "MySQLdb", "_mysql", "sqlite3", "epoll")


def profile_ours(url: str, table: str, hour: int) -> dict[str, float]:
    """One cold write of ours under cProfile: the cumulative milliseconds of each part in ``PROFILED``
    and the time inside the driver (waiting on the server, or SQLite working)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(write_ours, url, table, hour, warm=False)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    found = {"total (under cProfile)": sum(tt for _, _, tt, _, _ in stats.values())}
    for label, path, function in PROFILED:
        found[label] = sum(
            ct for (f, _, fn), (_, _, _, ct, _) in stats.items() if path in f and fn == function
        )
    found["inside the driver (the database's own work and the wait for it)"] = sum(
        tt for (f, _, fn), (_, _, tt, _, _) in stats.items() if any(d in f or d in fn for d in DRIVER)
    )
    return {label: seconds * 1000 for label, seconds in found.items()}


#: The floor's one catalog query per dialect: every column of the tables named, with its type,
#: nullability, default and primary-key membership (what the table check reads). ``{names}``
#: becomes one placeholder per table.
CATALOG = {
    "sqlite": 'SELECT m.name, c.name, c.type, c."notnull", c.dflt_value, c.pk FROM sqlite_master AS m '
    "JOIN pragma_table_info(m.name) AS c WHERE m.type = 'table' AND m.name IN ({names})",
    "postgresql": "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
    "a.atthasdef, a.attnum = ANY(i.indkey) FROM pg_class AS c JOIN pg_attribute AS a "
    "ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_index AS i ON i.indrelid = c.oid AND i.indisprimary "
    "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname IN ({names})",
    "mysql": "SELECT table_name, column_name, column_type, is_nullable, column_default, column_key "
    "FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name IN ({names})",
}


def upsert_sql(dialect: str, table: Any, rows: int) -> str:
    """One multi-row INSERT of ``table``'s columns. The hourly tables and their shards keep the
    earliest observation on a conflict, as ours does (MySQL: ``ON DUPLICATE KEY UPDATE`` with every
    assignment conditional, ``observed_at`` last); the balance minus resting takes the new values; the history
    is only ever inserted."""
    columns = [column.name for column in table.columns]
    values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * rows)
    insert = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}"
    key = [column.name for column in table.primary_key.columns]
    if key == ["reading_id"]:
        return insert
    replaced = sorted((c for c in columns if c not in key), key=lambda c: c == "observed_at")
    kept = "observed_at" in columns
    if dialect == "mysql":
        assign = (
            "{c} = IF(VALUES(observed_at) < observed_at, VALUES({c}), {c})" if kept else "{c} = VALUES({c})"
        )
        return f"{insert} ON DUPLICATE KEY UPDATE " + ", ".join(assign.format(c=c) for c in replaced)
    where = f" WHERE excluded.observed_at < {table.name}.observed_at" if kept else ""
    return (
        f"{insert} ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in replaced)
        + where
    )


def floor_rows(reading: AccountReading, hour: datetime, tables: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows of a new hour, by hand, per table name: what ours leaves for the same reading (both
    breakdowns complete, so a shard one lists and the other does not counts as 0)."""
    total, balance = reading.resting_order_value, reading.balance.value
    observed, balance_observed = reading.observed_at, reading.balance.observed_at
    listed, listed_observed = reading.subaccounts.value, reading.subaccounts.observed_at
    key, stamp = {"account": reading.account, "snapshot_hour": hour}, datetime.now(timezone.utc)
    run = {"dag_run_id": RUN_ID, "dag_id": DAG_ID, "loaded_at": stamp}
    resting = {s.exchange_index: s.dollars for s in total.breakdown}
    balances = {s.exchange_index: s.dollars for s in balance.breakdown}
    zero = Decimal(0)
    amounts = {"total_resting_order_value_cents": None, "balance_cents": None, "portfolio_value_cents": None}

    def shards(amount: str, dollars: dict[int, Decimal], at: datetime) -> list[dict[str, Any]]:
        return [key | {"exchange_index": i, amount: d, "observed_at": at} for i, d in dollars.items()]

    def history(endpoint: str, at: datetime, values: dict[str, Any], **found: int) -> dict[str, Any]:
        text = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return key | amounts | found | {
            "reading_id": str(uuid.uuid4()), "endpoint": endpoint, "source": reading.source,
            "observed_at": at, "outcome": "hour_row", "became_hour_row": True, "reading_json": text,
            "note": None, "dag_run_id": RUN_ID, "dag_id": DAG_ID, "fetch_try_number": reading.try_number,
            "load_try_number": LOAD_TRY, "recorded_at": stamp,
        }  # fmt: skip

    total_json = {"total_cents": total.total_cents, "breakdown": [[i, str(d)] for i, d in resting.items()]}
    return {
        tables.totals.name: [
            key | run | {"total_resting_order_value_cents": total.total_cents, "observed_at": observed}
        ],
        tables.breakdown.name: shards("shard_resting_order_value_dollars", resting, observed),
        tables.problems.name: [],
        tables.balance.name: [
            key
            | run
            | {
                "balance_cents": balance.balance_cents,
                "balance_dollars": balance.balance_dollars,
                "portfolio_value_cents": balance.portfolio_value_cents,
                "balance_updated_ts": balance.updated_ts,
                "observed_at": balance_observed,
                "total_refusal_reason": None,
                "breakdown_problem": None,
            }
        ],
        tables.balance_shards.name: shards("shard_balance_dollars", balances, balance_observed),
        tables.balance_minus_resting.name: [
            key
            | {
                "exchange_index": i,
                "shard_balance_dollars": balances.get(i, zero),
                "shard_resting_order_value_dollars": resting.get(i, zero),
                "shard_balance_minus_resting_dollars": balances.get(i, zero) - resting.get(i, zero),
            }
            for i in sorted(set(balances) | set(resting))
        ],
        tables.subaccounts.name: [
            key
            | {
                "subaccount_number": row.subaccount_number,
                "exchange_index": row.exchange_index,
                "balance_dollars": row.balance_dollars,
                "balance_updated_ts": row.updated_ts,
                "observed_at": listed_observed,
            }
            for row in listed.rows
        ],
        tables.history.name: [
            history(
                TOTAL_ENDPOINT,
                observed,
                total_json | {"breakdown_problem": None},
                total_resting_order_value_cents=total.total_cents,
            ),
            history(
                BALANCE_ENDPOINT,
                balance_observed,
                balance.to_xcom(),
                balance_cents=balance.balance_cents,
                portfolio_value_cents=balance.portfolio_value_cents,
            ),
            history(SUBACCOUNT_BALANCES_ENDPOINT, listed_observed, {"subaccount_balances": listed.to_xcom()}),
        ],
    }


def write_floor(url: str, table: str, hour: int, create: bool = False) -> dict[str, float]:
    """The same job by hand through the same driver: a fresh connection, one catalog query for every
    table's columns, one multi-row upsert per table with rows (a plain INSERT for the history) in one
    transaction; with ``create``, the CREATE TABLEs and the history's index first."""
    parsed = make_url(url)
    dialect = parsed.get_dialect().name
    dialect = "mysql" if dialect == "mariadb" else dialect
    tables = warehouse_tables(table)
    names = [t.name for t in tables]
    sql_dialect = parsed.get_dialect()()
    ddl = [str(CreateTable(t).compile(dialect=sql_dialect)) for t in tables if create]
    ddl += [str(CreateIndex(i).compile(dialect=sql_dialect)) for t in tables if create for i in t.indexes]
    catalog = _paramstyle(dialect, CATALOG[dialect].format(names=", ".join(["%s"] * len(names))))
    snapshot_hour, reading = reading_for(hour)
    counts = {name: len(rows) for name, rows in floor_rows(reading, snapshot_hour, tables).items()}
    upserts = {t.name: _paramstyle(dialect, upsert_sql(dialect, t, counts[t.name])) for t in tables}
    tables_by = {t.name: t for t in tables}
    as_value = _driver_value(dialect)
    connect = _driver_connect(dialect, parsed)
    cpu, t0 = time.process_time(), now()
    connection = connect()
    t1 = now()
    cursor = connection.cursor()
    cursor.execute(catalog, names)
    found = cursor.fetchall()
    t2 = now()
    if dialect == "sqlite":
        cursor.execute("BEGIN")  # one transaction, DDL included (psycopg and MySQLdb begin by themselves)
    if create and not found:
        for statement in ddl:
            cursor.execute(statement)
    for name, rows in floor_rows(reading, snapshot_hour, tables).items():
        if rows:
            cursor.execute(
                upserts[name], [as_value(row[c.name]) for row in rows for c in tables_by[name].columns]
            )
    connection.commit()
    t3 = now()
    connection.close()
    t4 = now()
    cpu = time.process_time() - cpu
    columns = sum(len(t.columns) for t in tables)
    if not create and len(found) != columns:
        raise SystemExit(f"the floor's catalog query found {len(found)} columns of {columns}")
    return {
        "total": t4 - t0,
        "connect": t1 - t0,
        "check": t2 - t1,
        "write": t3 - t2,
        "dispose": t4 - t3,
        "cpu": cpu,
    }


def _paramstyle(dialect: str, sql: str) -> str:
    return sql.replace("%s", "?") if dialect == "sqlite" else sql


def _driver_value(dialect: str) -> Callable[[Any], Any]:
    """What the driver takes: sqlite3 gets SQLAlchemy's storage text; MySQL naive UTC; psycopg as is."""

    def convert(value: Any) -> Any:
        if isinstance(value, datetime) and dialect != "postgresql":
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
            return value.isoformat(" ", "microseconds") if dialect == "sqlite" else value
        if isinstance(value, Decimal) and dialect == "sqlite":
            return format(value, "f")
        return value

    return convert


def _driver_connect(dialect: str, url: Any) -> Callable[[], Any]:
    if dialect == "sqlite":
        return lambda: sqlite3.connect(url.database, timeout=30, isolation_level=None)
    if dialect == "postgresql":
        import psycopg

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return lambda: psycopg.connect(conninfo)
    import MySQLdb

    return lambda: MySQLdb.connect(
        host=url.host, port=url.port, user=url.username, password=url.password or "", database=url.database
    )


def write(
    side: str,
    url: str,
    table: str,
    hour: int,
    create: bool = False,
    count: bool = False,
    profile: bool = False,
) -> dict:
    # The driver is imported before the clock starts (MySQLdb imports its connection module lazily).
    if make_url(url).get_dialect().import_dbapi().__name__ == "MySQLdb":
        import MySQLdb.connections  # noqa: F401
    if profile:
        return profile_ours(url, table, hour)
    counts = _count_sqlite_statements() if count and url.startswith("sqlite") else None
    result = (
        write_ours(url, table, hour, warm=not count)
        if side == "ours"
        else write_floor(url, table, hour, create)
    )
    return {**result, **(counts or {})}


#: Columns whose values are the instant or the id a write takes, different on every write.
STAMPS = frozenset({"loaded_at", "recorded_at", "reading_id"})


def check(url: str) -> dict[str, Any]:
    """Ours and the floor each write the same new hour into fresh tables, which must then hold the
    same rows, as the database stores them (the stamps aside): the floor does the same job."""
    found = {}
    for side, write_side in (("ours", write_ours), ("floor", write_floor)):
        table = f"check_{side}_{uuid.uuid4().hex[:8]}"
        write_side(url, table, 0, **({"warm": False} if side == "ours" else {"create": True}))
        engine = create_engine(url)
        with engine.connect() as conn:
            for t in warehouse_tables(table):
                result = conn.exec_driver_sql(f"SELECT * FROM {t.name}")
                kept = [i for i, name in enumerate(result.keys()) if name not in STAMPS]
                rows = sorted((tuple(row[i] for i in kept) for row in result), key=repr)
                found.setdefault(t.name[len(table) :] or "_totals", {})[side] = rows
        engine.dispose()
    differ = {name: sides for name, sides in found.items() if sides["ours"] != sides["floor"]}
    if differ:
        raise SystemExit(f"the floor's rows are not ours: {differ}")
    return {name: len(sides["ours"]) for name, sides in found.items()}


def _count_sqlite_statements() -> dict[str, int]:
    """SQLite has no wire: count the statements it runs (its trace callback) and the connections."""
    counts = {"connections": 0, "round_trips": 0}
    plain_connect = sqlite3.connect

    def count_statement(sql: str) -> None:
        if not sql.startswith("--"):  # "--" marks the statements a table-valued PRAGMA runs inside one
            counts["round_trips"] += 1

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = plain_connect(*args, **kwargs)
        counts["connections"] += 1
        connection.set_trace_callback(count_statement)
        return connection

    sqlite3.connect = sqlite3.dbapi2.connect = connect
    return counts


# -- DAG parse ---------------------------------------------------------------------------------------


def parse(path: str) -> dict[str, Any]:
    """``DagBag(path)`` alone (Airflow loaded, as in a DAG processor), and the DAG's shape."""
    from airflow.dag_processing.dagbag import DagBag

    before = set(sys.modules)
    start = now()
    bag = DagBag(dag_folder=path)
    seconds = now() - start
    if bag.import_errors or len(bag.dags) != 1:
        raise SystemExit(f"{path} did not load one DAG: {bag.import_errors}")
    (dag,) = bag.dags.values()
    imported = sorted(m for m in set(sys.modules) - before if not m.startswith("unusual_prefix"))
    return {"seconds": seconds, "shape": dag_shape(dag), "imported": imported, "outage": outage_budget(dag)}


def outage_budget(dag: Any) -> list[int] | None:
    """The fetch task's worst case when Kalshi fails every request: [attempts per call, calls per
    try, tries], as its operator splits its ``max_requests`` (None for a DAG without one). The task
    sits in a mapped task group, so it is the operator itself, not a mapped one with partial kwargs."""
    fetch = next((task for task in dag.tasks if task.task_id.endswith(".fetch")), None)
    attempts = getattr(fetch, "attempts_per_try", None)
    if attempts is None:
        return None
    return [attempts, fetch.calls_per_try, fetch.retries + 1]


def dag_shape(dag: Any) -> dict[str, Any]:
    """What "the same shape" means: schedule, params and their schemas, default_args, task ids,
    mapping, outlets, retries, execution timeouts, dependencies."""

    def task_shape(task: Any) -> list[Any]:
        policy = getattr(task, "retry_policy", None)
        return [
            task.task_id,
            task.get_closest_mapped_task_group() is not None,
            [type(outlet).__name__ for outlet in task.outlets],
            [task.retries, str(task.retry_delay), task.retry_exponential_backoff, str(task.max_retry_delay)],
            str(task.execution_timeout),
            type(policy).__name__ if policy else None,
            sorted(task.upstream_task_ids),
        ]

    return {
        "schedule": str(dag.schedule),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "params": {name: dag.params.get_param(name).schema for name in dag.params},
        "default_args": sorted(dag.default_args),
        "tasks": sorted(task_shape(task) for task in dag.tasks),
    }


# -- hook call ---------------------------------------------------------------------------------------


def hook(conn_id: str, calls: int, floor_first: bool) -> dict[str, float]:
    """One sample each of the reused hook and of a bare signed ``requests`` call: mean seconds per
    call over ``calls`` calls of each, alternating, after a warm-up (session, TCP connection, key)."""
    from urllib.parse import urlsplit

    import requests

    from kalshi_provider.connection import private_key_from_connection
    from kalshi_provider.hooks.kalshi import TOTAL_RESTING_ORDER_VALUE_PATH, KalshiHook
    from kalshi_provider.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, now_ms, sign

    ours = KalshiHook(conn_id)
    key = private_key_from_connection(ours.get_connection(conn_id))
    url = ours.settings.base_url + TOTAL_RESTING_ORDER_VALUE_PATH
    path, session = urlsplit(url).path, requests.Session()

    def floor() -> int:
        stamp = now_ms()
        signed = {KEY_HEADER: ours.settings.key_id, TIMESTAMP_HEADER: stamp}
        signed[SIGNATURE_HEADER] = sign(key, f"{stamp}GET{path}".encode())
        response = session.get(url, headers={"Accept": "application/json", **signed}, timeout=10)
        response.raise_for_status()
        return response.json()["total_resting_order_value"]

    sides = {"ours": ours.get_total_resting_order_value, "floor": floor}
    for call in sides.values():
        for _ in range(max(10, calls // 10)):
            call()
    spent = dict.fromkeys(sides, 0.0)
    order = sorted(sides, reverse=not floor_first)
    for _ in range(calls):  # call by call, alternating: a load spike hits both sides alike
        for name in order:
            start = now()
            sides[name]()
            spent[name] += now() - start
        order.reverse()
    return {name: seconds / calls for name, seconds in spent.items()}


# -- the chart's answers -----------------------------------------------------------------------------


def seed_chart(url: str, accounts: int, hours: int, shards: int) -> dict[str, int]:
    """``hours`` hours ending with the current one for ``accounts`` accounts, ``shards`` exchange
    shards each, written straight into the tables the chart reads (totals, balance, its shards, the
    balance minus resting per shard): what months of hourly loads leave, without months of loads."""
    from kalshi_provider.pipelines.warehouse import prepare_tables

    engine = create_engine(url)
    tables = prepare_tables(engine)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    written = dict.fromkeys(("totals", "balance", "balance_shards", "balance_minus_resting"), 0)
    for account_index in range(accounts):
        account = f"fcm_{account_index:02d}"
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in written}
        for offset in range(hours):
            hour = end - timedelta(hours=offset)
            observed = hour + timedelta(seconds=2)
            cents = 100_000 + (offset * 7919 + account_index * 104_729) % 900_000
            rows["totals"].append(
                {
                    "account": account,
                    "snapshot_hour": hour,
                    "total_resting_order_value_cents": cents,
                    "observed_at": observed,
                    "dag_run_id": RUN_ID,
                    "loaded_at": observed,
                }
            )
            rows["balance"].append(
                {
                    "account": account,
                    "snapshot_hour": hour,
                    "balance_cents": BALANCE_CENTS,
                    "balance_dollars": Decimal(BALANCE_CENTS).scaleb(-2),
                    "portfolio_value_cents": PORTFOLIO_CENTS,
                    "balance_updated_ts": int(hour.timestamp()),
                    "observed_at": observed,
                    "dag_run_id": RUN_ID,
                    "loaded_at": observed,
                    "total_refusal_reason": None,
                    "breakdown_problem": None,
                }
            )
            for shard in range(shards):
                balance = Decimal(BALANCE_CENTS // shards).scaleb(-2)
                resting = Decimal(cents // shards).scaleb(-2) + Decimal("0.000001") * shard
                key = {"account": account, "snapshot_hour": hour, "exchange_index": shard}
                rows["balance_shards"].append(
                    key | {"shard_balance_dollars": balance, "observed_at": observed}
                )
                rows["balance_minus_resting"].append(
                    key
                    | {
                        "shard_balance_dollars": balance,
                        "shard_resting_order_value_dollars": resting,
                        "shard_balance_minus_resting_dollars": balance - resting,
                    }
                )
        with engine.begin() as conn:
            for name, table_rows in rows.items():
                conn.execute(getattr(tables, name).insert(), table_rows)
                written[name] += len(table_rows)
    engine.dispose()
    return written


def chart(conn: str, hours: int) -> dict[str, dict[str, float]]:
    """One request to ``/data?hours=N`` and one to ``/chart?hours=N`` of the chart's app, as the API
    server serves them (Airflow's access check stubbed), in this process: wall and CPU time, the
    answer's size and points, then the same request again under ``tracemalloc`` for its peak of
    Python allocations, and the growth of the process's peak RSS during the first one."""
    import os
    import resource
    import tracemalloc

    import psutil
    from fastapi.testclient import TestClient

    from kalshi_provider.pipelines.ui.app import app, readable_rows
    from kalshi_provider.pipelines.warehouse import ReadableRows

    os.environ["AIRFLOW_CONN_KALSHI_WAREHOUSE"] = conn
    # A reader of the default hourly DAG, as Airflow's auth manager would answer for one: the
    # seeded rows record no DAG, which such a reader sees; the filter is in every query, as for any.
    readable = ReadableRows(frozenset({HOURLY_DAG_ID}), unknown_dag=True)
    app.dependency_overrides[readable_rows] = lambda: readable
    found = {}
    with TestClient(app) as client:
        for route in ("data", "chart"):
            client.get(f"/{route}?hours=1").raise_for_status()  # warm: imports, the connection lookup
        for route in ("data", "chart"):
            rss_before = psutil.Process().memory_info().rss
            cpu, start = time.process_time(), now()
            response = client.get(f"/{route}?hours={hours}")
            wall, cpu = now() - start, time.process_time() - cpu
            peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            measured = {
                "status": response.status_code,
                "bytes": len(response.content),
                "ms": wall * 1000,
                "cpu_ms": cpu * 1000,
                "rss_growth_mib": max(0, peak_rss - rss_before) / 2**20,
            }
            if route == "data" and response.status_code == 200:
                body = response.json()
                measured["points"] = _points(body)
                measured["resolution_hours"] = body.get("resolution_hours", 1)
            del response
            tracemalloc.start()
            client.get(f"/{route}?hours={hours}")
            measured["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            found[route] = measured
    return found


def _points(body: dict[str, Any]) -> int:
    """Values served: one per point of the totals, of the balances, of each shard's balance minus resting."""
    return (
        sum(len(points) for points in body["series"].values())
        + sum(len(points) for points in body["balance"].values())
        + sum(len(points) for shards in body["balance_minus_resting"].values() for points in shards.values())
    )


KINDS = {
    "write": write,
    "check": check,
    "parse": parse,
    "hook": hook,
    "seed_chart": seed_chart,
    "chart": chart,
}

if __name__ == "__main__":
    kind, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(KINDS[kind](**arguments)))
