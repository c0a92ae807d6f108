"""One account's reading of Kalshi: the typed record from the hook's answer to the warehouse row.

The records are frozen and check themselves when built, so a reading that exists holds only exact
values (integers and ``Decimal``, never floats) that fit the warehouse's columns. ``to_xcom`` and
``from_xcom`` give the JSON-safe form that travels from the fetch task to the load task; nothing
on the way rebuilds a reading from string keys of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

#: Largest amount in cents: what a BIGINT column holds.
MAX_CENTS = 2**63 - 1
#: Kalshi's fixed-point dollar strings carry at most six decimal places; stored as Numeric(24, 6).
DOLLAR_SCALE = 6
DOLLAR_PRECISION = 24
DOLLAR_QUANTUM = Decimal(1).scaleb(-DOLLAR_SCALE)
_MAX_DOLLARS = Decimal(10) ** (DOLLAR_PRECISION - DOLLAR_SCALE)
#: Exchange shard numbers are small non-negative integers (0-3 in 2026); an INTEGER column.
MAX_EXCHANGE_INDEX = 2**31 - 1


class InvalidReadingError(ValueError):
    """A value that a reading cannot hold exactly; the message names the field and the problem."""


def _cents(value: object, what: str) -> int:
    # bool is an int subclass, and 12.0 is not a number of cents: both are refused.
    if type(value) is not int:
        raise InvalidReadingError(f"{what} must be a whole number of cents, got {type(value).__name__}")
    if not 0 <= value <= MAX_CENTS:
        raise InvalidReadingError(f"{what} is outside 0..{MAX_CENTS} cents")
    return value


def exact_dollars(value: object, what: str = "dollar amount") -> Decimal:
    """A Decimal with at most six decimal places from a Decimal or its exact string; never rounds."""
    if not isinstance(value, (Decimal, str)):
        raise InvalidReadingError(f"{what} must be a decimal string, got {type(value).__name__}")
    if isinstance(value, str) and not 0 < len(value) <= 64:
        raise InvalidReadingError(f"{what} must be a decimal string of at most 64 characters")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidReadingError(f"{what} {str(value)[:64]!r} is not a decimal number") from None
    if not amount.is_finite():
        raise InvalidReadingError(f"{what} must be a finite number")
    if abs(amount) >= _MAX_DOLLARS:
        raise InvalidReadingError(f"{what} does not fit Numeric({DOLLAR_PRECISION}, {DOLLAR_SCALE})")
    if amount.as_tuple().exponent < -DOLLAR_SCALE and amount != amount.quantize(DOLLAR_QUANTUM):
        raise InvalidReadingError(
            f"{what} {str(value)[:64]!r} has more than {DOLLAR_SCALE} decimal places: "
            "it is refused, not rounded"
        )
    return amount.quantize(DOLLAR_QUANTUM)


@dataclass(frozen=True)
class ShardAmount:
    """One exchange shard's amount in exact dollars (Kalshi's ``exchange_index`` and ``balance``)."""

    exchange_index: int
    dollars: Decimal

    def __post_init__(self) -> None:
        index = self.exchange_index
        if type(index) is not int or not 0 <= index <= MAX_EXCHANGE_INDEX:
            raise InvalidReadingError(f"exchange_index must be a whole number from 0 to {MAX_EXCHANGE_INDEX}")
        object.__setattr__(self, "dollars", exact_dollars(self.dollars, f"exchange {index}'s amount"))


def shard_amounts(entries: Any) -> tuple[ShardAmount, ...]:
    """A breakdown as a tuple of ``ShardAmount``, refusing a repeated ``exchange_index``."""
    amounts = tuple(entries)
    for entry in amounts:
        if not isinstance(entry, ShardAmount):
            raise InvalidReadingError(f"breakdown entries must be ShardAmount, got {type(entry).__name__}")
    indexes = [entry.exchange_index for entry in amounts]
    if len(set(indexes)) != len(indexes):
        raise InvalidReadingError(f"the breakdown repeats an exchange_index: {sorted(indexes)}")
    return amounts


@dataclass(frozen=True)
class RestingOrderValue:
    """``GET /portfolio/summary/total_resting_order_value``: the total in cents and its split per shard."""

    total_cents: int
    breakdown: tuple[ShardAmount, ...] = ()
    #: Why the breakdown Kalshi sent was left out while the total was kept; None when it was usable.
    breakdown_problem: str | None = None

    def __post_init__(self) -> None:
        _cents(self.total_cents, "total_resting_order_value")
        object.__setattr__(self, "breakdown", shard_amounts(self.breakdown))


@dataclass(frozen=True)
class AccountReading:
    """What the fetch task read for one account (its Kalshi connection id) and when the answer arrived."""

    account: str
    observed_at: datetime
    resting_order_value: RestingOrderValue

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not self.account:
            raise InvalidReadingError("account must be a non-empty connection id")
        if not isinstance(self.observed_at, datetime) or self.observed_at.utcoffset() is None:
            raise InvalidReadingError("observed_at must be a timezone-aware datetime")
        object.__setattr__(self, "observed_at", self.observed_at.astimezone(timezone.utc))
        if not isinstance(self.resting_order_value, RestingOrderValue):
            raise InvalidReadingError("resting_order_value must be a RestingOrderValue")

    def to_xcom(self) -> dict[str, Any]:
        """The JSON-safe form (exact decimals as strings); holds no secret."""
        value = self.resting_order_value
        return {
            "account": self.account,
            "observed_at": self.observed_at.isoformat(),
            "resting_order_value": {
                "total_cents": value.total_cents,
                "breakdown": [
                    {"exchange_index": entry.exchange_index, "dollars": str(entry.dollars)}
                    for entry in value.breakdown
                ],
                "breakdown_problem": value.breakdown_problem,
            },
        }

    @classmethod
    def from_xcom(cls, payload: Any) -> AccountReading:
        """Rebuild and re-check a reading from ``to_xcom``'s output."""
        try:
            value = payload["resting_order_value"]
            return cls(
                account=payload["account"],
                observed_at=datetime.fromisoformat(payload["observed_at"]),
                resting_order_value=RestingOrderValue(
                    total_cents=value["total_cents"],
                    breakdown=tuple(
                        ShardAmount(entry["exchange_index"], entry["dollars"]) for entry in value["breakdown"]
                    ),
                    breakdown_problem=value.get("breakdown_problem"),
                ),
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise InvalidReadingError(
                f"not a reading made by AccountReading.to_xcom ({type(err).__name__} on {err})"
            ) from None
