"""Fixtures for the warehouse tests: the same tests run on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from kalshi_provider.pipelines.warehouse import BreakdownEntry, Snapshot

BASE_HOUR = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)

SnapshotFactory = Callable[..., Snapshot]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """A real database per dialect: ``sqlite_engine`` or ``postgres_engine`` (fresh schema)."""
    return request.getfixturevalue(
        {"sqlite": "sqlite_engine", "postgresql": "postgres_engine"}[request.param]
    )


@pytest.fixture(params=[False, True], ids=["native", "generic"])
def force_generic(request: pytest.FixtureRequest) -> bool:
    """Run a test through the dialect's ON CONFLICT upsert and through the portable fallback."""
    return request.param


def _make_snapshot(
    *,
    account: str = "acct-1",
    hour: int = 0,
    cents: int = 100,
    observed_minute: int = 5,
    dag_run_id: str | None = "run-1",
    breakdown: dict[int, str] | None = None,
) -> Snapshot:
    snapshot_hour = BASE_HOUR + timedelta(hours=hour)
    return Snapshot(
        account=account,
        snapshot_hour=snapshot_hour,
        total_resting_order_value_cents=cents,
        observed_at=snapshot_hour + timedelta(minutes=observed_minute),
        dag_run_id=dag_run_id,
        breakdown=tuple(BreakdownEntry(i, Decimal(v)) for i, v in (breakdown or {}).items()),
    )


@pytest.fixture
def make_snapshot() -> SnapshotFactory:
    """Build a Snapshot for ``BASE_HOUR + hour``, observed ``observed_minute`` minutes into it."""
    return _make_snapshot
