"""A time window of the hourly tables for the chart, within a points budget.

Counts first (stopping at 24 rows per point), then the finest bucket of :data:`BUCKET_HOURS` that
fits, aggregated in SQL into each bucket's last value, minimum and maximum; every read is limited
to the budget + 1 rows, and a window that does not fit is refused (:class:`TooManyPoints`). Values
stay exact (SQLite's extremes by length-prefixed text, ``extremes.py``). Why and what it saves:
``docs/adr/0006-chart-points-budget.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, and_, case, func, inspect, literal, literal_column, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from kalshi_provider.pipelines.hours import on_the_hour
from kalshi_provider.pipelines.settings import CHART_POINTS_BUDGET, DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse.access import ReadableRows
from kalshi_provider.pipelines.warehouse.extremes import extremes
from kalshi_provider.pipelines.warehouse.schema import UTCDateTime, warehouse_tables
from kalshi_provider.pipelines.warehouse.warehouse_errors import InvalidSnapshotError, WarehouseSchemaError

#: The chart's budget (see the setting): the default of ``read_window``.
POINTS_BUDGET = CHART_POINTS_BUDGET
#: Bucket sizes, finest first; each divides a day, so buckets line up with 00:00 UTC.
BUCKET_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)
#: A point stands for at most a day of its line's hourly rows, so a window of more rows than this
#: many times the budget cannot fit: the database passes over at most that many for one answer.
_ROWS_A_POINT_STANDS_FOR = BUCKET_HOURS[-1]
_HOUR = timedelta(hours=1)


class TooManyPoints(ValueError):
    """Even one point a day of the window holds more points than the budget.

    :param hours: The window asked for, in hours.
    :param series: Lines in the window: per account its totals and balances, and each exchange
        shard's balance minus resting.
    :param points: Points at one a day.
    :param budget: The points budget.
    :param at_least: ``series`` and ``points`` are lower bounds: counting stopped at the rows no
        answer may pass over.
    """

    def __init__(self, hours: int, series: int, points: int, budget: int, *, at_least: bool = False) -> None:
        self.hours, self.series, self.points, self.budget = hours, series, points, budget
        #: The longest window (whole days) these lines fit in at one point a day; 0 if none does.
        self.max_hours = max(0, budget // max(series, 1) - 1) * 24
        fits = (
            f"ask for at most {self.max_hours} hours, or for fewer accounts"
            if self.max_hours
            else "ask for fewer accounts"
        )
        more = "at least " if at_least else ""
        super().__init__(
            f"the last {hours} hours hold {more}{series:,} lines (each account's totals and balances, "
            f"and each exchange shard's balance minus resting): at one point a day that is {more}{points:,} "
            f"points, more than the {budget:,} one answer may hold; {fits}"
        )


@dataclass(frozen=True)
class ChartWindow:
    """The rows of a window, hourly or in buckets of ``bucket_hours``.

    Each row is a dict of the table's key columns (``account``, and ``exchange_index`` for the
    balance minus resting), ``snapshot_hour`` and the values the chart shows. In buckets, a row is the
    bucket's last hour with a row, plus ``bucket_start``, ``hours`` (how many hours of the bucket
    have a row) and ``<value>_min`` / ``<value>_max`` of the series' value over the bucket (the
    total's cents, the balance's dollars, the balance minus resting's dollars). Rows come ordered by key and
    hour.
    """

    since: datetime
    until: datetime
    bucket_hours: int
    budget: int
    totals: list[dict[str, Any]]
    balances: list[dict[str, Any]]
    balance_minus_resting: list[dict[str, Any]]
    #: Per (account, snapshot_hour) of a row of ``balances``: every subaccount's balance summed over
    #: subaccounts and shards (``…_subacct``), exactly; absent where the hour has no subaccount rows.
    #: A value of the balance's point, not a line of its own: it costs no points.
    subaccount_sums: dict[tuple[str, datetime], Decimal] = field(default_factory=dict)

    @property
    def points(self) -> int:
        return len(self.totals) + len(self.balances) + len(self.balance_minus_resting)


@dataclass(frozen=True)
class _Series:
    """One kind of line: the table it is read from, what names a line, its value, what a point shows."""

    table: str  # a WarehouseTables field
    key: tuple[str, ...]
    value: str
    shown: tuple[str, ...]


_SERIES = (
    _Series(
        "totals",
        ("account",),
        "total_resting_order_value_cents",
        ("total_resting_order_value_cents", "dag_id", "dag_run_id"),
    ),
    _Series(
        "balance",
        ("account",),
        "balance_dollars",
        (
            "balance_cents",
            "balance_dollars",
            "portfolio_value_cents",
            "total_refusal_reason",
            "dag_id",
            "dag_run_id",
        ),
    ),
    _Series(
        "balance_minus_resting",
        ("account", "exchange_index"),
        "shard_balance_minus_resting_dollars",
        ("shard_balance_dollars", "shard_resting_order_value_dollars", "shard_balance_minus_resting_dollars"),
    ),
)


@dataclass(frozen=True)
class _Count:
    series: int
    rows: int


def read_window(
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    accounts: Sequence[str] | None = None,
    budget: int = POINTS_BUDGET,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    readable: ReadableRows | None = None,
) -> ChartWindow:
    """
    Read the totals, balances and balance minus resting with ``since <= snapshot_hour < until`` within
    ``budget`` points: hourly when they fit, else in the finest buckets that fit.

    :param engine: The warehouse.
    :param since: The window's first hour (aware, on the hour).
    :param until: The hour after its last.
    :param accounts: Only these accounts; all when None.
    :param budget: Most points the window may hold.
    :param table_name: The totals table's name (the others are named after it).
    :param schema: The tables' schema.
    :param readable: Only the rows a reader may see (``access.py``), counted and read in SQL; every
        row when None.
    :raises TooManyPoints: When one point a day does not fit the budget.
    """
    since = on_the_hour(since, "since", InvalidSnapshotError)
    until = on_the_hour(until, "until", InvalidSnapshotError)
    if until <= since:
        raise InvalidSnapshotError(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    tables = warehouse_tables(table_name, schema)
    inspector = inspect(engine)  # asked about three names: a shared schema's other tables are not listed
    present = [(series, getattr(tables, series.table)) for series in _SERIES]
    present = [(series, table) for series, table in present if inspector.has_table(table.name, schema=schema)]
    dialect = engine.dialect.name
    conditions = (
        {} if readable is None else {t.name: readable.condition(t, tables, dialect) for _, t in present}
    )
    window = _Window(since, until, tuple(accounts) if accounts is not None else None, conditions)
    found: dict[str, list[dict[str, Any]]] = {series.table: [] for series in _SERIES}
    with engine.connect() as conn:
        counts: list[_Count] = []
        most = _ROWS_A_POINT_STANDS_FOR * budget
        for series, table in present:
            counts.append(_count(conn, table, series, window, limit=most - sum(c.rows for c in counts) + 1))
            seen = sum(count.rows for count in counts)
            if seen > most:  # more rows than any answer may pass over: counting stops here
                lines = -(-seen // window.hours)  # a line has at most one row an hour
                raise TooManyPoints(window.hours, lines, -(-seen // 24), budget, at_least=True)
        bucket_hours = _finest_bucket(counts, window, budget)
        left = budget
        for series, table in present:
            read = _hourly if bucket_hours == 1 else _bucketed
            rows = read(conn, table, series, window, bucket_hours, limit=left + 1)
            if len(rows) > left:  # rows arrived since the count: refuse rather than cut
                raise TooManyPoints(window.hours, sum(c.series for c in counts), budget + 1, budget)
            left -= len(rows)
            found[series.table] = sorted(rows, key=itemgetter(*series.key, "snapshot_hour"))
        sums = {}
        if found["balance"] and inspector.has_table(tables.subaccounts.name, schema=schema):
            sums = _subaccount_sums(conn, tables.subaccounts, found["balance"], budget)
    return ChartWindow(
        since,
        until,
        bucket_hours,
        budget,
        found["totals"],
        found["balance"],
        found["balance_minus_resting"],
        sums,
    )


#: Rows of ``…_subacct`` one answer may read per point of the budget (a few subaccounts on a few
#: shards each); more is refused, as every read here is, never cut.
_SUBACCOUNT_ROWS_A_POINT = 64
#: Hours one query names (SQLite takes 32,766 values a statement).
_HOURS_A_QUERY = 10_000


def _subaccount_sums(
    conn: Connection, table: Table, balances: list[dict[str, Any]], budget: int
) -> dict[tuple[str, datetime], Decimal]:
    """The sum over subaccounts of the hours the balance rows stand for, and of those only (the
    rows a reader may see: a subaccount row belongs to its hour's balance). Summed here, exactly:
    SQLite's SUM of fixed-point text would be a float."""
    wanted = {(row["account"], row["snapshot_hour"]) for row in balances}
    hours = sorted({hour for _, hour in wanted})
    accounts = sorted({account for account, _ in wanted})
    most = _SUBACCOUNT_ROWS_A_POINT * budget
    sums: dict[tuple[str, datetime], Decimal] = {}
    seen = 0
    for start in range(0, len(hours), _HOURS_A_QUERY):
        query = (
            select(table.c.account, table.c.snapshot_hour, table.c.balance_dollars)
            .where(
                table.c.snapshot_hour.in_(hours[start : start + _HOURS_A_QUERY]),
                table.c.account.in_(accounts),
            )
            .limit(most - seen + 1)
        )
        for account, hour, dollars in conn.execute(query):
            seen += 1
            if seen > most:
                raise TooManyPoints(len(hours), len(accounts), budget + 1, budget)
            if (account, hour) in wanted:
                sums[(account, hour)] = sums.get((account, hour), Decimal(0)) + dollars
    return sums


@dataclass(frozen=True)
class _Window:
    since: datetime
    until: datetime
    accounts: tuple[str, ...] | None
    conditions: dict[str, ColumnElement[bool]]  # per table name: the rows the reader may see

    @property
    def hours(self) -> int:
        return (self.until - self.since) // _HOUR

    @property
    def origin(self) -> datetime:
        """00:00 UTC of the first day: buckets count from here."""
        return self.since.replace(hour=0)

    def bucket_index(self, hour: datetime, bucket_hours: int) -> int:
        return (hour - self.origin) // _HOUR // bucket_hours

    def buckets(self, bucket_hours: int) -> range:
        last = self.bucket_index(self.until - _HOUR, bucket_hours)
        return range(self.bucket_index(self.since, bucket_hours), last + 1)

    def where(self, query: Any, table: Table) -> Any:
        query = query.where(table.c.snapshot_hour >= self.since, table.c.snapshot_hour < self.until)
        if self.accounts is not None:
            query = query.where(table.c.account.in_(self.accounts))
        if table.name in self.conditions:
            query = query.where(self.conditions[table.name])
        return query


def _count(conn: Connection, table: Table, series: _Series, window: _Window, *, limit: int) -> _Count:
    """The table's lines and rows in the window, counted in the database (one row comes back),
    stopping after ``limit`` rows."""
    rows = window.where(select(*(table.c[name] for name in series.key)), table).limit(limit).subquery()
    per_line = select(*rows.c, func.count().label("n")).group_by(*rows.c).subquery()
    lines, found = conn.execute(select(func.count(), func.coalesce(func.sum(per_line.c.n), 0))).one()
    return _Count(int(lines), int(found))


def _finest_bucket(counts: list[_Count], window: _Window, budget: int) -> int:
    """The finest bucket size whose points fit the budget; a line has at most one point a bucket,
    and never more points than rows."""

    def points(bucket_hours: int) -> int:
        buckets = len(window.buckets(bucket_hours))
        return sum(min(count.rows, count.series * buckets) for count in counts)

    for bucket_hours in BUCKET_HOURS:
        if points(bucket_hours) <= budget:
            return bucket_hours
    raise TooManyPoints(window.hours, sum(count.series for count in counts), points(BUCKET_HOURS[-1]), budget)


def _shown_columns(table: Table, series: _Series) -> list[Any]:
    return [table.c[name] for name in (*series.key, "snapshot_hour", *series.shown)]


def _hourly(
    conn: Connection, table: Table, series: _Series, window: _Window, bucket_hours: int, *, limit: int
) -> list[dict[str, Any]]:
    query = window.where(select(*_shown_columns(table, series)), table).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def _bucketed(
    conn: Connection, table: Table, series: _Series, window: _Window, bucket_hours: int, *, limit: int
) -> list[dict[str, Any]]:
    """Per line and bucket: the last hour's row, the hours with a row, the value's min and max.

    The buckets are grouped in a subquery, then joined back to the table on the primary key at
    each bucket's last hour: plain SQL that every dialect runs, returning one row a bucket.
    """
    value = table.c[series.value]
    bucket = _bucket_of(table.c.snapshot_hour, window, bucket_hours)
    hourly = window.where(
        select(*(table.c[name] for name in series.key), table.c.snapshot_hour, value, bucket.label("bucket")),
        table,
    ).subquery("hourly")
    found_extremes = extremes(hourly.c[series.value], conn.dialect.name)
    keys = [hourly.c[name] for name in series.key]
    grouped = (
        select(
            *keys,
            func.max(hourly.c.snapshot_hour).label("last_hour"),
            func.count().label("hours"),
            found_extremes.low.label("low"),
            found_extremes.high.label("high"),
            *found_extremes.checks,
        )
        .group_by(*keys, hourly.c.bucket)
        .subquery("buckets")
    )
    at_last_hour = and_(
        *(table.c[name] == grouped.c[name] for name in series.key),
        table.c.snapshot_hour == grouped.c.last_hour,
    )
    query = (
        select(
            *_shown_columns(table, series),
            grouped.c.hours,
            grouped.c.low,
            grouped.c.high,
            found_extremes.misordered(grouped).label("misordered"),
        )
        .select_from(grouped.join(table, at_last_hour))
        .limit(limit)
    )
    rows = []
    for found in conn.execute(query):
        row = dict(found._mapping)
        if row.pop("misordered"):
            raise WarehouseSchemaError(
                f"{table.name}.{series.value} holds text that is not a fixed-point amount with 6 decimal "
                f"places (this pipeline never writes such text), around {row['snapshot_hour'].isoformat()}"
                f" for {row['account']}: the minimum and maximum of its bucket cannot be found exactly. "
                "Correct those rows"
            )
        index = window.bucket_index(row["snapshot_hour"], bucket_hours)
        row["bucket_start"] = window.origin + index * bucket_hours * _HOUR
        row[f"{series.value}_min"], row[f"{series.value}_max"] = row.pop("low"), row.pop("high")
        rows.append(row)
    return rows


def _bucket_of(hour: Any, window: _Window, bucket_hours: int) -> ColumnElement[Any]:
    """The bucket an hour falls in, as a balanced tree of comparisons with the buckets' starts
    (bound as the column's own type): portable SQL, exact, about log2(buckets) comparisons a row."""
    indexes = list(window.buckets(bucket_hours))
    starts = [window.origin + index * bucket_hours * _HOUR for index in indexes]

    def among(first: int, last: int) -> ColumnElement[Any]:
        if first == last:
            return literal_column(str(indexes[first]))
        middle = (first + last + 1) // 2
        return case(
            (hour < literal(starts[middle], UTCDateTime), among(first, middle - 1)),
            else_=among(middle, last),
        )

    return among(0, len(indexes) - 1)
