"""Fixtures for the warehouse tests: the same tests on a SQLite file, PostgreSQL and MariaDB, through
the dialect's upsert and through the portable path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine

from kalshi_provider.pipelines.warehouse import StoredReading, store_reading
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
