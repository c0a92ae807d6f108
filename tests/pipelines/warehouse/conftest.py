"""Fixtures for the warehouse tests: the same tests on a SQLite file, PostgreSQL and MariaDB, through
the dialect's upsert and through the portable path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import cycle

import pytest
from sqlalchemy.engine import Engine

from kalshi_provider.pipelines.warehouse import StoredReading, prepare_tables, store_reading
from kalshi_provider.readings import AccountReading, Balance, BalanceReading, RestingOrderValue, ShardAmount

BASE_HOUR = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
ENGINES = {"sqlite": "sqlite_engine", "postgresql": "postgres_engine", "mariadb": "mariadb_engine"}


@dataclass(frozen=True)
class Load:
    """One account-hour as the load task stores it: a reading, the run's hour and its run id."""

    reading: AccountReading
    hour: datetime
    dag_run_id: str | None

    @property
    def observed_at(self) -> datetime:
        return self.reading.observed_at


def shards(breakdown: dict[int, str] | None) -> tuple[ShardAmount, ...]:
    return tuple(ShardAmount(index, Decimal(dollars)) for index, dollars in (breakdown or {}).items())


def make_load(
    *,
    account: str = "acct-1",
    hour: int = 0,
    cents: int = 100,
    observed_minute: int = 5,
    dag_run_id: str | None = "run-1",
    breakdown: dict[int, str] | None = None,
    problem: str | None = None,
    not_permitted: str | None = None,
    balance: Balance | None = None,
    balance_problem: str | None = None,
    balance_delay: timedelta = timedelta(milliseconds=30),
    try_number: int | None = None,
) -> Load:
    """A reading of ``account`` observed ``observed_minute`` minutes into ``BASE_HOUR + hour``.

    With ``not_permitted``, Kalshi refused the total; with ``balance`` (or ``balance_problem``) the
    fetch also read the balance, ``balance_delay`` after the total.
    """
    snapshot_hour = BASE_HOUR + timedelta(hours=hour)
    observed = snapshot_hour + timedelta(minutes=observed_minute)
    value = None
    if not_permitted is None:
        value = RestingOrderValue(cents, shards(breakdown), breakdown_problem=problem)
    balance_reading = None
    if balance is not None or balance_problem is not None:
        balance_reading = BalanceReading(observed + balance_delay, balance, balance_problem)
    reading = AccountReading(
        account, observed, value, balance_reading, not_permitted=not_permitted, try_number=try_number
    )
    return Load(reading, snapshot_hour, dag_run_id)


def make_balance(
    cents: int = 500000,
    dollars: str | None = None,
    *,
    portfolio: int = 250000,
    updated_ts: int = 1_772_366_400,
    breakdown: dict[int, str] | None = None,
    problem: str | None = None,
) -> Balance:
    """A balance of ``cents`` (``dollars`` if given, else the cents in dollars), per ``breakdown``."""
    return Balance(
        cents,
        portfolio,
        Decimal(dollars) if dollars is not None else Decimal(cents).scaleb(-2),
        updated_ts,
        shards(breakdown),
        problem,
    )


#: Free margins that a float or a plain text comparison orders wrongly, and unknown ones (None).
MARGINS = [
    "9.000000",
    "10.000000",
    "-5.500000",
    "-12.000000",
    "123456789012.345678",
    "123456789012.345679",
    None,
    "0.000001",
    "-0.000001",
    "-123456789012.345679",
    "-123456789012.345678",
    "0.000000",
    "100.000000",
]
#: Balances likewise (never NULL).
BALANCES = ["999.999999", "1000.000000", "99999999999999.999999", "99999999999999.999998", "5.000000"]


def seed_chart_tables(engine: Engine, *, accounts: int, hours: int, end: datetime, shards: int = 2) -> None:
    """``hours`` hours ending with ``end`` of ``accounts`` accounts, written straight into the three
    tables the chart reads, with values that order wrongly as floats or as plain text."""
    tables = prepare_tables(engine)
    margins, balances = cycle(MARGINS), cycle(BALANCES)
    totals, balance_rows, margin_rows = [], [], []
    for account in range(accounts):
        for offset in range(hours):
            hour = end - timedelta(hours=offset)
            key = {"account": f"acct_{account}", "snapshot_hour": hour}
            cents = (offset * 7919 + account * 104_729) % 2_000_003  # 10 cents sort below 9 as text
            stamps = {"observed_at": hour, "dag_run_id": "seed", "loaded_at": hour}
            totals.append(key | stamps | {"total_resting_order_value_cents": cents})
            balance_rows.append(
                key
                | stamps
                | {
                    "balance_cents": 1,
                    "balance_dollars": Decimal(next(balances)),
                    "portfolio_value_cents": 2,
                    "balance_updated_ts": 3,
                    "total_refusal_reason": "403" if offset % 5 == 0 else None,
                }
            )
            for shard in range(shards):
                margin = next(margins)
                margin_rows.append(
                    key
                    | {
                        "exchange_index": shard,
                        "shard_balance_dollars": Decimal("1.000000"),
                        "shard_resting_order_value_dollars": None,
                        "shard_balance_minus_resting_dollars": None if margin is None else Decimal(margin),
                    }
                )
    with engine.begin() as conn:
        conn.execute(tables.totals.insert(), totals)
        conn.execute(tables.balance.insert(), balance_rows)
        conn.execute(tables.balance_minus_resting.insert(), margin_rows)


Store = Callable[..., StoredReading]


@pytest.fixture(params=list(ENGINES))
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """A real database per engine, each test with its own fresh schema (database) or file."""
    return request.getfixturevalue(ENGINES[request.param])


@pytest.fixture(params=[False, True], ids=["upsert", "portable"])
def portable(request: pytest.FixtureRequest) -> bool:
    """Run a test through the dialect's own upsert and through the portable path."""
    return request.param


@pytest.fixture
def store(portable: bool) -> Store:
    """``store(engine, load, **table)``: ``store_reading`` on the path this test runs."""

    def _store(engine: Engine, load: Load, **options) -> StoredReading:
        return store_reading(
            engine,
            load.reading,
            snapshot_hour=load.hour,
            dag_run_id=load.dag_run_id,
            portable=portable,
            **options,
        )

    return _store
