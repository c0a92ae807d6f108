"""The chart's window (``read_window``) on a real SQLite file, PostgreSQL and MariaDB: hourly when it
fits the points budget, else buckets aggregated in SQL whose last, minimum and maximum values are
exactly the stored ones; refused beyond a day per point; never more rows fetched than the budget,
whatever the window or the table's age; the time range searched through the ``snapshot_hour`` index
(shown with SQLite's ``EXPLAIN QUERY PLAN`` and PostgreSQL's ``EXPLAIN``)."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from kalshi_provider.pipelines.warehouse import (
    TooManyPoints,
    WarehouseSchemaError,
    prepare_tables,
    read_balances,
    read_snapshots,
    read_window,
    warehouse_tables,
)
from kalshi_provider.pipelines.warehouse.schema import HOUR_INDEX_PREFIXES
from kalshi_provider.pipelines.warehouse.window import POINTS_BUDGET
from tests.pipelines.warehouse.conftest import BASE_HOUR, seed_chart_tables

END = datetime(2026, 3, 31, 23, tzinfo=timezone.utc)  # the last hour of the seeded tables
HOUR = timedelta(hours=1)
BASE_HOUR_71 = BASE_HOUR + 71 * HOUR


def seed(engine: Engine, **options) -> None:
    seed_chart_tables(engine, end=END, **options)


def window(engine: Engine, hours: int, **options):
    return read_window(engine, since=END - (hours - 1) * HOUR, until=END + HOUR, **options)


def test_a_window_that_fits_is_hourly_and_exactly_what_is_stored(db_engine):
    seed(db_engine, accounts=2, hours=30)
    found = window(db_engine, 24)
    assert (found.bucket_hours, found.points) == (1, 2 * 24 * (1 + 1 + 2))
    since = END - 23 * HOUR
    stored = read_snapshots(db_engine, since=since)
    assert [
        (r["account"], r["snapshot_hour"], r["total_resting_order_value_cents"]) for r in found.totals
    ] == [(r["account"], r["snapshot_hour"], r["total_resting_order_value_cents"]) for r in stored]
    balances = read_balances(db_engine, since=since)
    shown = ("balance_cents", "balance_dollars", "portfolio_value_cents", "total_refusal_reason")
    assert [[r[name] for name in shown] for r in found.balances] == [
        [r[name] for name in shown] for r in balances
    ]
    margins = [
        (r["account"], m["exchange_index"], r["snapshot_hour"], m["shard_balance_minus_resting_dollars"])
        for r in balances
        for m in r["balance_minus_resting"]
    ]
    assert [
        (r["account"], r["exchange_index"], r["snapshot_hour"], r["shard_balance_minus_resting_dollars"])
        for r in found.balance_minus_resting
    ] == sorted(margins, key=lambda m: (m[0], m[1], m[2]))


def test_a_long_window_comes_in_the_finest_buckets_that_fit_with_exact_last_min_and_max(db_engine):
    """3 accounts x (1 + 1 + 2) lines x 72 hours is 864 points; a budget of 250 fits 4-hour
    buckets (12 lines x 18 buckets = 216) but not 3-hour ones (12 x 24 = 288)."""
    seed(db_engine, accounts=3, hours=80)
    found = window(db_engine, 72, budget=250)
    assert found.bucket_hours == 4 and found.points == 12 * 18
    hourly = window(db_engine, 72)  # the same rows, hour by hour (well within the default budget)
    assert hourly.bucket_hours == 1
    checks = (
        (found.totals, hourly.totals, ("account",), "total_resting_order_value_cents"),
        (found.balances, hourly.balances, ("account",), "balance_dollars"),
        (
            found.balance_minus_resting,
            hourly.balance_minus_resting,
            ("account", "exchange_index"),
            "shard_balance_minus_resting_dollars",
        ),
    )
    for buckets, rows, key, value in checks:
        expected = []
        for line in sorted({tuple(row[k] for k in key) for row in rows}):
            of_line = [row for row in rows if tuple(row[k] for k in key) == line]
            for start in sorted({_bucket_start(row["snapshot_hour"], 4) for row in of_line}):
                inside = [row for row in of_line if _bucket_start(row["snapshot_hour"], 4) == start]
                known = [row[value] for row in inside if row[value] is not None]
                last = inside[-1]
                expected.append(
                    last
                    | {
                        "bucket_start": start,
                        "hours": len(inside),
                        f"{value}_min": min(known, default=None),
                        f"{value}_max": max(known, default=None),
                    }
                )
        assert buckets == expected, value


def test_bucket_extremes_are_exact_where_floats_and_plain_text_are_not(db_engine):
    """Two 4-hour buckets of one account and shard: float twins (equal as doubles), text that sorts
    '10' below '9', negatives, an unknown free margin."""
    tables = prepare_tables(db_engine)
    start = END - 7 * HOUR  # 16:00: buckets 16-20 and 20-24
    margins = ["123456789012.345678", "123456789012.345679", "-5.500000", None] + [
        "9.000000",
        "10.000000",
        "-123456789012.345678",
        "-123456789012.345679",
    ]
    balances = ["99999999999999.999998", "99999999999999.999999", "999.999999", "1000.000000"] + [
        "5.000000",
        "10.000000",
        "9.000000",
        "100.000000",
    ]
    hours = [start + offset * HOUR for offset in range(8)]
    stamps = {"observed_at": END, "loaded_at": END}
    with db_engine.begin() as conn:
        conn.execute(
            tables.totals.insert(),
            [
                {"account": "a", "snapshot_hour": h, "total_resting_order_value_cents": c} | stamps
                for h, c in zip(hours, [9, 10, 100, 11, 7, 70, 700, 8], strict=True)
            ],
        )
        conn.execute(
            tables.balance.insert(),
            [
                {
                    "account": "a",
                    "snapshot_hour": h,
                    "balance_cents": 1,
                    "balance_dollars": Decimal(b),
                    "portfolio_value_cents": 2,
                    "balance_updated_ts": 3,
                }
                | stamps
                for h, b in zip(hours, balances, strict=True)
            ],
        )
        conn.execute(
            tables.balance_minus_resting.insert(),
            [
                {
                    "account": "a",
                    "snapshot_hour": h,
                    "exchange_index": 0,
                    "shard_balance_minus_resting_dollars": None if m is None else Decimal(m),
                }
                for h, m in zip(hours, margins, strict=True)
            ],
        )
    found = read_window(db_engine, since=start, until=END + HOUR, budget=6)
    assert found.bucket_hours == 4
    assert [
        (
            r["total_resting_order_value_cents_min"],
            r["total_resting_order_value_cents_max"],
            r["total_resting_order_value_cents"],
        )
        for r in found.totals
    ] == [(9, 100, 11), (7, 700, 8)]
    assert [
        (str(r["balance_dollars_min"]), str(r["balance_dollars_max"]), str(r["balance_dollars"]))
        for r in found.balances
    ] == [
        ("999.999999", "99999999999999.999999", "1000.000000"),
        ("5.000000", "100.000000", "100.000000"),
    ]
    assert [
        (
            str(r["shard_balance_minus_resting_dollars_min"]),
            str(r["shard_balance_minus_resting_dollars_max"]),
            r["shard_balance_minus_resting_dollars"],
        )
        for r in found.balance_minus_resting
    ] == [
        ("-5.500000", "123456789012.345679", None),
        ("-123456789012.345679", "10.000000", Decimal("-123456789012.345679")),
    ]
    assert [(r["bucket_start"], r["hours"]) for r in found.balance_minus_resting] == [
        (start, 4),
        (start + 4 * HOUR, 4),
    ]


def _bucket_start(hour: datetime, bucket_hours: int) -> datetime:
    return hour.replace(hour=hour.hour - hour.hour % bucket_hours)


def test_a_window_beyond_one_point_a_day_is_refused_saying_what_fits(sqlite_engine):
    """10 days of 12 lines (3 accounts), read as 240 hours to 11:00: 11 calendar days, so 132 points
    a day apiece; 9 days to 11:00 touch 10 calendar days (120 points)."""
    seed(sqlite_engine, accounts=3, hours=24 * 11)
    until = END - 11 * HOUR  # 12:00: the window's last hour is 11:00

    def read(hours, **options):
        return read_window(sqlite_engine, since=until - hours * HOUR, until=until, **options)

    with pytest.raises(TooManyPoints) as refused:
        read(240, budget=125)
    assert (refused.value.series, refused.value.points, refused.value.budget) == (12, 132, 125)
    assert refused.value.max_hours == 24 * 9  # 12 lines x (9 + 1) days = 120 points
    assert "hold 12 lines" in str(refused.value)
    assert "ask for at most 216 hours, or for fewer accounts" in str(refused.value)
    assert read(216, budget=125).bucket_hours == 24
    assert read(240, budget=125, accounts=["acct_1"]).bucket_hours == 8  # 4 lines x 31 = 124 points


def test_counting_stops_where_no_answer_could_fit(sqlite_engine):
    """A day per point holds at most 24 rows of a line: beyond 24 x budget rows the window is
    refused without counting the rest, with what the count saw as lower bounds."""
    seed(sqlite_engine, accounts=3, hours=24 * 10)  # 12 lines x 240 hours = 2,880 rows
    with pytest.raises(TooManyPoints) as refused:
        window(sqlite_engine, 24 * 10, budget=100)  # at most 2,400 rows
    assert (refused.value.series, refused.value.points) == (11, 101)  # 2,401 rows seen
    assert "hold at least 11 lines" in str(refused.value) and "at least 101 points" in str(refused.value)
    with pytest.raises(TooManyPoints, match="ask for fewer accounts"):
        window(sqlite_engine, 24, budget=11)


def vm_steps(engine: Engine, read) -> int:
    """How many thousand SQLite virtual machine instructions ``read()`` costs: the database's own
    work. The engine has one connection (``StaticPool``), which ``read`` uses too."""
    steps: list[int] = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.set_progress_handler(lambda: steps.append(1), 1000)  # returns None: go on
        try:
            read()
        finally:
            raw.set_progress_handler(None, 1000)
    return len(steps)


def test_refusing_a_window_costs_the_database_the_same_whatever_the_window_holds(tmp_path):
    """Ten times the accounts, ten times the rows in the window: the refusal costs the same."""
    costs = []
    for accounts in (3, 30):
        engine = create_engine(f"sqlite:///{tmp_path / f'{accounts}.db'}", poolclass=StaticPool)
        seed(engine, accounts=accounts, hours=24 * 10)

        def read(engine=engine):
            with pytest.raises(TooManyPoints):
                window(engine, 24 * 10, budget=20)

        costs.append(vm_steps(engine, read))
        engine.dispose()
    assert costs[1] < 1.5 * costs[0], costs


class CountingConnection(sqlite3.Connection):
    """A SQLite connection whose cursors count every row they hand to SQLAlchemy."""

    fetched: list[int] = []

    def cursor(self, factory=None):  # noqa: ARG002 - SQLAlchemy passes none
        return super().cursor(CountingCursor)


class CountingCursor(sqlite3.Cursor):
    def fetchone(self):
        row = super().fetchone()
        CountingConnection.fetched.append(row is not None)
        return row

    def fetchmany(self, size=None):
        rows = super().fetchmany(size) if size is not None else super().fetchmany()
        CountingConnection.fetched.append(len(rows))
        return rows

    def fetchall(self):
        rows = super().fetchall()
        CountingConnection.fetched.append(len(rows))
        return rows


@pytest.mark.parametrize("days", [30, 400])
def test_rows_fetched_depend_on_the_budget_not_on_the_window_or_the_tables_age(tmp_path, days):
    """2 accounts with 2 shards (8 lines), a budget of 250 points: a day hourly (192), a week in
    6-hour buckets (232), 30 days in days (248); from a table of 30 days or of 400."""
    path = tmp_path / "warehouse.db"
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(path, factory=CountingConnection, check_same_thread=False),
    )
    seed(engine, accounts=2, hours=24 * days)
    beyond_the_points = set()
    try:
        for hours, bucket_hours in ((24, 1), (24 * 7, 6), (24 * 30, 24)):
            CountingConnection.fetched.clear()
            found = window(engine, hours, budget=250)
            assert (found.bucket_hours, found.points <= 250) == (bucket_hours, True)
            beyond_the_points.add(sum(CountingConnection.fetched) - found.points)
    finally:
        engine.dispose()
    # The catalog's answers about the three tables (SQLite lists their columns) and a one-row count
    # of each: the same few rows whatever the window.
    tables = warehouse_tables()
    listed = sum(
        len(table.columns)
        for table in (tables.totals, tables.balance, tables.balance_minus_resting, tables.subaccounts)
    )
    assert beyond_the_points == {listed + 3}


def test_a_bucket_holding_text_that_is_not_a_fixed_point_amount_is_refused(sqlite_engine):
    """Written by another tool: '5.5' (one decimal) is shorter than '4.000000', so the text order
    takes it for the smaller; the floats' order says otherwise, and the bucket is refused."""
    seed(sqlite_engine, accounts=1, hours=8)  # 4 lines: a budget of 8 gives two 4-hour buckets
    margin = warehouse_tables().balance_minus_resting.name
    first = (END - 7 * HOUR).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite_engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE {margin} SET shard_balance_minus_resting_dollars = "
                "CASE WHEN snapshot_hour = :first THEN '5.5' ELSE '4.000000' END WHERE exchange_index = 1"
            ),
            {"first": first},
        )
    with pytest.raises(WarehouseSchemaError, match="not a fixed-point amount with 6 decimal places"):
        window(sqlite_engine, 8, budget=8)
    with sqlite_engine.begin() as conn:  # alone in its line, such text is no harm: its bucket is right
        conn.execute(
            text(f"UPDATE {margin} SET shard_balance_minus_resting_dollars = '05.5' WHERE exchange_index = 1")
        )
    found = window(sqlite_engine, 8, budget=8)
    assert {
        row["shard_balance_minus_resting_dollars_max"]
        for row in found.balance_minus_resting
        if row["exchange_index"] == 1
    } == {Decimal("5.500000")}


def test_rows_that_arrive_between_the_count_and_the_read_are_refused_not_cut(postgres_engine):
    seed(postgres_engine, accounts=1, hours=24, shards=1)
    totals = warehouse_tables().totals

    def one_more_account(conn, cursor, statement, parameters, context, executemany):
        if "LIMIT" in statement and "count(" not in statement and not arrived:  # the first read
            arrived.append(True)
            with postgres_engine.begin() as other:
                other.execute(
                    totals.insert(),
                    [
                        {
                            "account": "late",
                            "snapshot_hour": END - offset * HOUR,
                            "total_resting_order_value_cents": 1,
                            "observed_at": END,
                            "loaded_at": END,
                        }
                        for offset in range(24)
                    ],
                )

    arrived: list[bool] = []
    event.listen(postgres_engine, "before_cursor_execute", one_more_account)
    with pytest.raises(TooManyPoints):
        window(postgres_engine, 24, budget=24 * 3)  # exactly the 72 points counted
    assert arrived


# -- the time range searches the snapshot_hour index ------------------------------------------------


def statements_of(engine: Engine, hours: int, **options) -> list[tuple[str, object]]:
    """The statements ``read_window`` sends for a window of ``hours``, with their parameters."""
    sent: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "snapshot_hour" in statement:
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        window(engine, hours, **options)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sent
    return sent


CHART_TABLES = {"totals", "balance", "balance_minus_resting"}


def chart_table_names() -> set[str]:
    tables = warehouse_tables()
    return {getattr(tables, name).name for name in CHART_TABLES}


def hour_index_names() -> set[str]:
    return {prefix + warehouse_tables().totals.name for prefix in HOUR_INDEX_PREFIXES.values()}


@pytest.mark.parametrize(("hours", "budget", "bucket_hours"), [(24, POINTS_BUDGET, 1), (24 * 90, 2000, 24)])
def test_sqlite_searches_the_time_range_through_the_hour_index(sqlite_engine, hours, budget, bucket_hours):
    seed(sqlite_engine, accounts=3, hours=24 * 120)
    assert window(sqlite_engine, hours, budget=budget).bucket_hours == bucket_hours
    names, indexes = chart_table_names(), hour_index_names()
    subaccounts = warehouse_tables().subaccounts.name
    with sqlite_engine.connect() as conn:
        for statement, parameters in statements_of(sqlite_engine, hours, budget=budget):
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            if f"FROM {subaccounts}" in statement:  # the sums of the balance rows' hours: by key
                assert plan == [
                    f"SEARCH {subaccounts} USING INDEX sqlite_autoindex_{subaccounts}_1 "
                    "(account=? AND snapshot_hour=?)"
                ], plan
                continue
            scanned = [line for line in plan if re.match(r"SCAN (\w+)", line) and line.split()[1] in names]
            assert scanned == [], plan  # no chart table read whole
            assert any(
                f"USING INDEX {index} (snapshot_hour>? AND snapshot_hour<?)" in line
                for line in plan
                for index in indexes
            ), plan


def test_postgresql_searches_the_time_range_through_the_hour_index(postgres_engine):
    """A year of 10 accounts, analysed: PostgreSQL's own cost model picks the index for a day and a
    week; with sequential scans off, a 90-day window (bucketed) still goes through it, not the
    primary key (which leads on the account)."""
    prepare_tables(postgres_engine)
    tables = warehouse_tables()
    with postgres_engine.begin() as conn:
        every_hour = (
            "generate_series(CAST(:end AS timestamptz) - interval '365 days', CAST(:end AS timestamptz), "
            "interval '1 hour') AS h"
        )
        accounts = "generate_series(1, 10) AS a"
        conn.execute(
            text(
                f"INSERT INTO {tables.totals.name} SELECT 'acct_' || a, h, a * 100, h, NULL, NULL, h "
                f"FROM {accounts}, {every_hour}"
            ),
            {"end": END},
        )
        conn.execute(
            text(
                f"INSERT INTO {tables.balance.name} "
                "SELECT 'acct_' || a, h, 1, 1.5, 2, 3, h, NULL, NULL, h, NULL, NULL "
                f"FROM {accounts}, {every_hour}"
            ),
            {"end": END},
        )
        conn.execute(
            text(
                f"INSERT INTO {tables.balance_minus_resting.name} SELECT 'acct_' || a, h, s, 1, 0.5, 0.5 "
                f"FROM {accounts}, {every_hour}, generate_series(0, 1) AS s"
            ),
            {"end": END},
        )
        for name in chart_table_names():
            conn.execute(text(f"ANALYZE {name}"))
    names, indexes = chart_table_names(), hour_index_names()
    for hours, settings in ((24, ""), (24 * 7, ""), (24 * 90, "SET LOCAL enable_seqscan = off")):
        sent = statements_of(postgres_engine, hours)
        with postgres_engine.begin() as conn:
            if settings:
                conn.exec_driver_sql(settings)
            for statement, parameters in sent:
                if f"FROM {tables.subaccounts.name}" in statement:
                    continue  # the sums of the balance rows' hours, by key (SQLite's plan is checked)
                plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
                assert not any(f"Seq Scan on {name}" in plan for name in names), plan
                assert any(index in plan for index in indexes), plan


# -- a reader sees only what the DAGs they may read wrote (issue 18, item 3) ---------------------------


def _written_by_two_dags(engine: Engine) -> None:
    """One hour: ``a`` written by dag_a, ``b`` by dag_b, ``legacy`` before DAG ids were recorded, and
    ``shared`` whose total dag_a wrote and whose balance dag_b wrote (dag_b's later total kept out)."""
    from kalshi_provider.pipelines.warehouse import store_reading
    from tests.pipelines.warehouse.conftest import make_balance, make_load

    def store(load, dag_id):
        store_reading(engine, load.reading, snapshot_hour=load.hour, dag_run_id="r", dag_id=dag_id)

    balance = make_balance(500, breakdown={0: "5"})
    for account, dag_id in (("a", "dag_a"), ("b", "dag_b"), ("legacy", None)):
        store(make_load(account=account, hour=71, breakdown={0: "1"}, balance=balance), dag_id)
    store(make_load(account="shared", hour=71, observed_minute=5, breakdown={0: "1"}), "dag_a")
    store(
        make_load(account="shared", hour=71, observed_minute=9, breakdown={0: "2"}, balance=balance), "dag_b"
    )


@pytest.mark.parametrize(
    ("dag_ids", "unknown", "totals", "balances", "margins"),
    [
        ({"dag_a"}, False, ["a", "shared"], ["a"], ["a"]),
        ({"dag_b"}, False, ["b"], ["b", "shared"], ["b"]),  # shared's margin would give dag_a's total away
        ({"dag_a", "dag_b"}, False, ["a", "b", "shared"], ["a", "b", "shared"], ["a", "b", "shared"]),
        ({"dag_a"}, True, ["a", "legacy", "shared"], ["a", "legacy"], ["a", "legacy"]),
        ({"dag_c"}, True, ["legacy"], ["legacy"], ["legacy"]),
        ({"dag_c"}, False, [], [], []),
    ],
)
def test_a_reader_sees_only_the_rows_of_the_dags_they_may_read(
    db_engine, dag_ids, unknown, totals, balances, margins
):
    """Filtered in SQL: the counts that choose the buckets see only those rows too (a budget of the
    visible points reads them hourly, where all rows would not fit)."""
    from kalshi_provider.pipelines.warehouse import ReadableRows

    _written_by_two_dags(db_engine)
    readable = ReadableRows(frozenset(dag_ids), unknown_dag=unknown)
    visible = len(totals) + len(balances) + len(margins)
    found = read_window(
        db_engine, since=BASE_HOUR_71, until=BASE_HOUR_71 + HOUR, budget=max(1, visible), readable=readable
    )
    assert (found.bucket_hours, found.points) == (1, visible)
    assert [row["account"] for row in found.totals] == totals
    assert [row["account"] for row in found.balances] == balances
    assert [row["account"] for row in found.balance_minus_resting] == margins
    assert (
        len(read_window(db_engine, since=BASE_HOUR_71, until=BASE_HOUR_71 + HOUR).totals) == 4
    )  # all, unfiltered
