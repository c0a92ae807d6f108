"""The values one load writes: validated up front so the database never sees a doubtful value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation, localcontext

from kalshi_provider.pipelines.warehouse.errors import InvalidSnapshotError
from kalshi_provider.pipelines.warehouse.schema import BALANCE_PRECISION, BALANCE_QUANTUM, BALANCE_SCALE

MAX_CENTS = 2**63  # exclusive: the largest BIGINT is 2**63 - 1
_INT32 = 2**31
_MAX_BALANCE = Decimal(10) ** (BALANCE_PRECISION - BALANCE_SCALE)


def aware_utc(value: object, what: str) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused because their zone is a guess."""
    if not isinstance(value, datetime):
        raise InvalidSnapshotError(f"{what} must be a datetime, got {type(value).__name__} {value!r}")
    if value.utcoffset() is None:
        raise InvalidSnapshotError(
            f"{what} must be timezone-aware, got naive {value.isoformat()} (attach tzinfo, e.g. UTC)"
        )
    return value.astimezone(timezone.utc)


def _whole_number(value: object, what: str, low: int, high: int) -> int:
    """Return ``value`` if it is an int (bool is not) with ``low <= value < high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSnapshotError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    if not low <= value < high:
        raise InvalidSnapshotError(f"{what} must be >= {low} and < {high}, got {value}")
    return value


def exact_balance(value: object) -> Decimal:
    """Return ``value`` as a Decimal of scale 6; floats and extra decimal places are refused, not rounded."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise InvalidSnapshotError(
            f"balance_dollars must be a Decimal (or its exact string), got {type(value).__name__} {value!r}"
        )
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidSnapshotError(f"balance_dollars {value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise InvalidSnapshotError(f"balance_dollars must be finite, got {value!r}")
    if abs(amount) >= _MAX_BALANCE:
        raise InvalidSnapshotError(
            f"balance_dollars {value!r} does not fit Numeric({BALANCE_PRECISION}, {BALANCE_SCALE})"
        )
    with localcontext() as ctx:
        ctx.prec = BALANCE_PRECISION + 10
        quantized = amount.quantize(BALANCE_QUANTUM)
    if quantized != amount:
        raise InvalidSnapshotError(
            f"balance_dollars {value!r} has more than {BALANCE_SCALE} decimal places; refusing to round it"
        )
    return quantized


@dataclass(frozen=True)
class BreakdownEntry:
    """One exchange's share of the resting order value, in exact dollars."""

    exchange_index: int
    balance_dollars: Decimal

    def __post_init__(self) -> None:
        _whole_number(self.exchange_index, "exchange_index", -_INT32, _INT32)
        object.__setattr__(self, "balance_dollars", exact_balance(self.balance_dollars))


@dataclass(frozen=True)
class Snapshot:
    """One account's total resting order value for one UTC hour, as observed at ``observed_at``."""

    account: str
    snapshot_hour: datetime
    total_resting_order_value_cents: int
    observed_at: datetime
    dag_run_id: str | None
    breakdown: tuple[BreakdownEntry, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not self.account:
            raise InvalidSnapshotError(f"account must be a non-empty string, got {self.account!r}")
        hour = aware_utc(self.snapshot_hour, "snapshot_hour")
        if hour != hour.replace(minute=0, second=0, microsecond=0):
            raise InvalidSnapshotError(f"snapshot_hour must be exactly on a UTC hour, got {hour.isoformat()}")
        object.__setattr__(self, "snapshot_hour", hour)
        object.__setattr__(self, "observed_at", aware_utc(self.observed_at, "observed_at"))
        _whole_number(self.total_resting_order_value_cents, "total_resting_order_value_cents", 0, MAX_CENTS)
        if self.dag_run_id is not None and not isinstance(self.dag_run_id, str):
            raise InvalidSnapshotError(f"dag_run_id must be a string or None, got {self.dag_run_id!r}")
        object.__setattr__(self, "breakdown", self._checked_breakdown())

    def _checked_breakdown(self) -> tuple[BreakdownEntry, ...]:
        try:
            if isinstance(self.breakdown, (str, bytes)):
                raise TypeError
            entries = tuple(self.breakdown)
        except TypeError:
            raise InvalidSnapshotError(
                f"breakdown must be a sequence of BreakdownEntry, got {self.breakdown!r}"
            ) from None
        for entry in entries:
            if not isinstance(entry, BreakdownEntry):
                raise InvalidSnapshotError(f"breakdown items must be BreakdownEntry, got {entry!r}")
        indexes = [entry.exchange_index for entry in entries]
        if len(set(indexes)) != len(indexes):
            raise InvalidSnapshotError(f"breakdown repeats an exchange_index: {sorted(indexes)}")
        return entries

    @property
    def key(self) -> tuple[str, datetime]:
        """The primary key: one row per account and hour."""
        return self.account, self.snapshot_hour
