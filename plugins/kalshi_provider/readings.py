"""One account's reading of Kalshi: the typed record from the hook's answers to the warehouse rows.

Frozen records that check themselves when built: only exact values (integers, ``Decimal``) in
Kalshi's formats, within bounds. An :class:`AccountReading` holds the total (or Kalshi's refusal,
for a key without FCM access) and, when asked for, the balance (:class:`BalanceReading`), each with
its answer's arrival. ``to_xcom``/``from_xcom`` carry it from the fetch to the load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from kalshi_provider.exchange_status import ExchangePause
from kalshi_provider.limits import MAX_HOST_LENGTH
from kalshi_provider.timestamps import aware_utc

#: Kalshi types its amounts in cents int64: a balance may be negative, a total may not.
MAX_CENTS = 2**63 - 1
MIN_CENTS = -(2**63)
#: Kalshi's fixed-point dollar strings carry at most six decimal places.
DOLLAR_SCALE = 6
DOLLAR_QUANTUM = Decimal(1).scaleb(-DOLLAR_SCALE)
#: Digits before the point a reading holds: with six after them, what Python's decimal context (28
#: digits) quantizes exactly. Kalshi's amounts have a dozen at most.
_INTEGER_DIGITS = 22
_MAX_DOLLARS = Decimal(10) ** _INTEGER_DIGITS
#: Exchange shard numbers are small non-negative integers (0-3 in 2026); one of 2**31 or more is no
#: shard number.
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


def _signed_cents(value: object, what: str) -> int:
    if type(value) is not int:
        raise InvalidReadingError(f"{what} must be a whole number of cents, got {type(value).__name__}")
    if not MIN_CENTS <= value <= MAX_CENTS:
        raise InvalidReadingError(f"{what} is outside {MIN_CENTS}..{MAX_CENTS} cents (a BIGINT)")
    return value


def _aware(value: object, what: str) -> datetime:
    return aware_utc(value, what, InvalidReadingError)


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
        raise InvalidReadingError(
            f"{what} does not fit a reading: at most {_INTEGER_DIGITS} digits before the point"
        )
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


def _received_at() -> Any:
    """The ``received_at`` field of a value read from one of Kalshi's answers: when the answer
    arrived (UTC), set by the hook from the transport's clock after the whole answer was read, so
    no caller can stamp an answer before it arrives. Keyword-only, not compared, and not part of
    ``to_xcom``: a reading carries it as its ``observed_at``. None for a value built otherwise."""
    return field(default=None, compare=False, kw_only=True)


def _check_received_at(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value, "received_at")


@dataclass(frozen=True)
class RestingOrderValue:
    """``GET /portfolio/summary/total_resting_order_value``: the total in cents and its split per shard."""

    total_cents: int
    breakdown: tuple[ShardAmount, ...] = ()
    #: Why the breakdown Kalshi sent was left out while the total was kept; None when it was usable.
    breakdown_problem: str | None = None
    received_at: datetime | None = _received_at()

    def __post_init__(self) -> None:
        _cents(self.total_cents, "total_resting_order_value")
        object.__setattr__(self, "breakdown", shard_amounts(self.breakdown))
        object.__setattr__(self, "received_at", _check_received_at(self.received_at))


@dataclass(frozen=True)
class Balance:
    """``GET /portfolio/balance``: the account's cash, the value of its positions, and its cash per shard.

    ``balance_cents`` and ``portfolio_value_cents`` are Kalshi's ``balance`` and ``portfolio_value``
    (cents, int64: a balance may be negative), ``balance_dollars`` its exact fixed-point
    ``balance_dollars``, ``updated_ts`` when Kalshi last changed the balance (Unix seconds, as sent),
    and ``breakdown`` its optional ``balance_breakdown`` per exchange shard.
    """

    balance_cents: int
    portfolio_value_cents: int
    balance_dollars: Decimal
    updated_ts: int
    breakdown: tuple[ShardAmount, ...] = ()
    #: Why the breakdown Kalshi sent was left out while the balance was kept; None when usable.
    breakdown_problem: str | None = None
    received_at: datetime | None = _received_at()

    def __post_init__(self) -> None:
        object.__setattr__(self, "received_at", _check_received_at(self.received_at))
        _signed_cents(self.balance_cents, "balance")
        _signed_cents(self.portfolio_value_cents, "portfolio_value")
        object.__setattr__(self, "balance_dollars", exact_dollars(self.balance_dollars, "balance_dollars"))
        if type(self.updated_ts) is not int or not 0 <= self.updated_ts <= MAX_CENTS:
            raise InvalidReadingError("updated_ts must be a whole number of seconds since 1970 (0 or more)")
        object.__setattr__(self, "breakdown", shard_amounts(self.breakdown))
        _optional_text(self.breakdown_problem, "breakdown_problem")

    def to_xcom(self) -> dict[str, Any]:
        return {
            "balance_cents": self.balance_cents,
            "portfolio_value_cents": self.portfolio_value_cents,
            "balance_dollars": str(self.balance_dollars),
            "updated_ts": self.updated_ts,
            "breakdown": _shards_to_xcom(self.breakdown),
            "breakdown_problem": self.breakdown_problem,
        }

    @classmethod
    def from_xcom(cls, value: Any) -> Balance:
        return cls(
            balance_cents=value["balance_cents"],
            portfolio_value_cents=value["portfolio_value_cents"],
            balance_dollars=value["balance_dollars"],
            updated_ts=value["updated_ts"],
            breakdown=_shards_from_xcom(value["breakdown"]),
            breakdown_problem=value.get("breakdown_problem"),
        )


#: Kalshi numbers subaccounts 0 (the primary) to 63 ("Maximum 63 numbered subaccounts per user").
MAX_SUBACCOUNT = 63
#: Rows one subaccount answer may hold: one per (subaccount, exchange shard), 64 subaccounts on up
#: to 64 shards. More is no answer Kalshi documents, and is refused rather than stored in part.
MAX_SUBACCOUNT_ROWS = 64 * 64


@dataclass(frozen=True)
class SubaccountBalance:
    """One row of ``GET /portfolio/subaccounts/balances``: a subaccount's balance on one shard.

    :param subaccount_number: 0 for the primary account, 1-63 for numbered subaccounts.
    :param exchange_index: The shard the balance is held on; None when Kalshi's answer names none
        (its spec requires it since 2026-07; every row of one answer names one, or none does).
    :param balance_dollars: Kalshi's ``balance``, a fixed-point dollar string, exactly.
    :param updated_ts: Kalshi's ``updated_ts``: when the balance last changed (Unix seconds).
    """

    subaccount_number: int
    exchange_index: int | None
    balance_dollars: Decimal
    updated_ts: int

    def __post_init__(self) -> None:
        number = self.subaccount_number
        if type(number) is not int or not 0 <= number <= MAX_SUBACCOUNT:
            raise InvalidReadingError(f"subaccount_number must be a whole number from 0 to {MAX_SUBACCOUNT}")
        index = self.exchange_index
        if index is not None and (type(index) is not int or not 0 <= index <= MAX_EXCHANGE_INDEX):
            raise InvalidReadingError(f"exchange_index must be a whole number from 0 to {MAX_EXCHANGE_INDEX}")
        what = f"subaccount {number}'s balance"
        object.__setattr__(self, "balance_dollars", exact_dollars(self.balance_dollars, what))
        if type(self.updated_ts) is not int or not 0 <= self.updated_ts <= MAX_CENTS:
            raise InvalidReadingError("updated_ts must be a whole number of seconds since 1970 (0 or more)")


@dataclass(frozen=True)
class SubaccountBalances:
    """``GET /portfolio/subaccounts/balances``: every subaccount's balance, the primary's included,
    one row per (subaccount, shard), at most once each and at most ``MAX_SUBACCOUNT_ROWS``."""

    rows: tuple[SubaccountBalance, ...]
    received_at: datetime | None = _received_at()

    def __post_init__(self) -> None:
        rows = tuple(self.rows)
        if len(rows) > MAX_SUBACCOUNT_ROWS:
            raise InvalidReadingError(f"more than {MAX_SUBACCOUNT_ROWS} subaccount balance rows")
        if not all(isinstance(row, SubaccountBalance) for row in rows):
            raise InvalidReadingError("subaccount balance rows must be SubaccountBalance")
        if len({row.exchange_index is None for row in rows}) > 1:
            raise InvalidReadingError("some rows name an exchange_index and others do not")
        keys = [(row.subaccount_number, row.exchange_index) for row in rows]
        if len(set(keys)) != len(keys):
            repeated = sorted({key for key in keys if keys.count(key) > 1}, key=str)[:5]
            raise InvalidReadingError(f"a (subaccount_number, exchange_index) is listed twice: {repeated}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "received_at", _check_received_at(self.received_at))

    def total_by_subaccount(self) -> dict[int, Decimal]:
        """Each subaccount's balance summed over its shards, exactly."""
        totals: dict[int, Decimal] = {}
        for row in self.rows:
            totals[row.subaccount_number] = (
                totals.get(row.subaccount_number, Decimal(0)) + row.balance_dollars
            )
        return totals

    def to_xcom(self) -> list[dict[str, Any]]:
        return [
            {
                "subaccount_number": row.subaccount_number,
                "exchange_index": row.exchange_index,
                "balance_dollars": str(row.balance_dollars),
                "updated_ts": row.updated_ts,
            }
            for row in self.rows
        ]

    @classmethod
    def from_xcom(cls, value: Any) -> SubaccountBalances:
        if not isinstance(value, list):
            raise InvalidReadingError("subaccount balances must be a list")
        return cls(
            tuple(
                SubaccountBalance(
                    row["subaccount_number"], row["exchange_index"], row["balance_dollars"], row["updated_ts"]
                )
                for row in value
            )
        )


@dataclass(frozen=True)
class BalanceReading:
    """The fetch's ``GET /portfolio/balance``: when its answer arrived, and the balance, or why the
    answer could not be used (a body that is not Kalshi's documented one): exactly one of the two."""

    observed_at: datetime
    value: Balance | None = None
    problem: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "observed_at", _aware(self.observed_at, "the balance's observed_at"))
        if self.value is not None and not isinstance(self.value, Balance):
            raise InvalidReadingError("a balance reading's value must be a Balance")
        _optional_text(self.problem, "the balance's problem")
        if (self.value is None) == (self.problem is None):
            raise InvalidReadingError(
                "a balance reading holds either a Balance or the problem with its answer"
            )

    def to_xcom(self) -> dict[str, Any]:
        return {
            "observed_at": self.observed_at.isoformat(),
            "value": None if self.value is None else self.value.to_xcom(),
            "problem": self.problem,
        }

    @classmethod
    def from_xcom(cls, payload: Any) -> BalanceReading:
        value = payload["value"]
        return cls(
            observed_at=datetime.fromisoformat(payload["observed_at"]),
            value=None if value is None else Balance.from_xcom(value),
            problem=payload.get("problem"),
        )


@dataclass(frozen=True)
class SubaccountsReading:
    """The fetch's ``GET /portfolio/subaccounts/balances``: when its answer arrived, and every
    subaccount's balance, or why there is none: Kalshi's refusal (``not_permitted``: a key
    restricted to one subaccount may not list them) or the problem with the answer. Exactly one."""

    observed_at: datetime
    value: SubaccountBalances | None = None
    problem: str | None = None
    not_permitted: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "observed_at", _aware(self.observed_at, "the subaccounts' observed_at"))
        if self.value is not None and not isinstance(self.value, SubaccountBalances):
            raise InvalidReadingError("a subaccounts reading's value must be SubaccountBalances")
        _optional_text(self.problem, "the subaccounts' problem")
        _optional_text(self.not_permitted, "the subaccounts' refusal")
        if sum(x is not None for x in (self.value, self.problem, self.not_permitted)) != 1:
            raise InvalidReadingError(
                "a subaccounts reading holds exactly one of: the balances, the problem, Kalshi's refusal"
            )

    def to_xcom(self) -> dict[str, Any]:
        return {
            "observed_at": self.observed_at.isoformat(),
            "value": None if self.value is None else self.value.to_xcom(),
            "problem": self.problem,
            "not_permitted": self.not_permitted,
        }

    @classmethod
    def from_xcom(cls, payload: Any) -> SubaccountsReading:
        value = payload["value"]
        return cls(
            observed_at=datetime.fromisoformat(payload["observed_at"]),
            value=None if value is None else SubaccountBalances.from_xcom(value),
            problem=payload.get("problem"),
            not_permitted=payload.get("not_permitted"),
        )


@dataclass(frozen=True)
class AccountReading:
    """What the fetch task read for one account (its Kalshi connection id) and when the answers arrived.

    ``observed_at`` is when the total's answer arrived. ``resting_order_value`` is None only when
    Kalshi refused it (403: the key's account is not an FCM member), and ``not_permitted`` then
    says so in Kalshi's words; ``balance`` is None when the fetch did not ask for it (the total-
    only operator), and so is ``subaccounts`` (also in readings of earlier versions).
    ``try_number`` is the fetch task's try that took the reading, ``source`` the base URL the
    answers came from (never a secret: connections hold no credentials in it).
    ``exchange_paused`` is set, and nothing else was read, when Kalshi's exchange said it was not
    active after the first call failed; ``observed_at`` is then when that status arrived.
    """

    account: str
    observed_at: datetime
    resting_order_value: RestingOrderValue | None
    balance: BalanceReading | None = None
    not_permitted: str | None = None
    try_number: int | None = None
    source: str | None = None
    exchange_paused: ExchangePause | None = None
    subaccounts: SubaccountsReading | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not self.account:
            raise InvalidReadingError("account must be a non-empty connection id")
        object.__setattr__(self, "observed_at", _aware(self.observed_at, "observed_at"))
        value = self.resting_order_value
        if value is not None and not isinstance(value, RestingOrderValue):
            raise InvalidReadingError("resting_order_value must be a RestingOrderValue")
        _optional_text(self.not_permitted, "not_permitted")
        if self.exchange_paused is not None:
            if not isinstance(self.exchange_paused, ExchangePause):
                raise InvalidReadingError("exchange_paused must be an ExchangePause")
            if value is not None or self.not_permitted is not None or self.balance is not None:
                raise InvalidReadingError("a reading of a paused exchange holds nothing Kalshi answered")
        elif (value is None) == (self.not_permitted is None):
            raise InvalidReadingError(
                "a reading holds either the resting order value or why Kalshi did not permit it"
            )
        if self.balance is not None and not isinstance(self.balance, BalanceReading):
            raise InvalidReadingError("balance must be a BalanceReading")
        if self.subaccounts is not None and not isinstance(self.subaccounts, SubaccountsReading):
            raise InvalidReadingError("subaccounts must be a SubaccountsReading")
        if self.try_number is not None and (type(self.try_number) is not int or self.try_number < 0):
            raise InvalidReadingError("try_number must be a whole number of 0 or more")
        if self.source is not None and (
            not isinstance(self.source, str) or not 0 < len(self.source) <= MAX_HOST_LENGTH
        ):
            raise InvalidReadingError(
                f"source must be None or a base URL of at most {MAX_HOST_LENGTH} characters"
            )

    def to_xcom(self) -> dict[str, Any]:
        """The JSON-safe form (exact decimals as strings); holds no secret."""
        value = self.resting_order_value
        return {
            "account": self.account,
            "observed_at": self.observed_at.isoformat(),
            "resting_order_value": None
            if value is None
            else {
                "total_cents": value.total_cents,
                "breakdown": _shards_to_xcom(value.breakdown),
                "breakdown_problem": value.breakdown_problem,
            },
            "not_permitted": self.not_permitted,
            "balance": None if self.balance is None else self.balance.to_xcom(),
            "try_number": self.try_number,
            "source": self.source,
            "exchange_paused": None if self.exchange_paused is None else self.exchange_paused.to_xcom(),
            "subaccounts": None if self.subaccounts is None else self.subaccounts.to_xcom(),
        }

    @classmethod
    def from_xcom(cls, payload: Any) -> AccountReading:
        """Rebuild and re-check a reading from ``to_xcom``'s output (also an older version's, which
        has neither the balance nor the try number)."""
        try:
            value = payload["resting_order_value"]
            balance = payload.get("balance")
            paused = payload.get("exchange_paused")
            subaccounts = payload.get("subaccounts")
            return cls(
                account=payload["account"],
                observed_at=datetime.fromisoformat(payload["observed_at"]),
                resting_order_value=None
                if value is None
                else RestingOrderValue(
                    total_cents=value["total_cents"],
                    breakdown=_shards_from_xcom(value["breakdown"]),
                    breakdown_problem=value.get("breakdown_problem"),
                ),
                balance=None if balance is None else BalanceReading.from_xcom(balance),
                not_permitted=payload.get("not_permitted"),
                try_number=payload.get("try_number"),
                source=payload.get("source"),
                exchange_paused=None if paused is None else ExchangePause.from_xcom(paused),
                subaccounts=None if subaccounts is None else SubaccountsReading.from_xcom(subaccounts),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            if isinstance(err, InvalidReadingError):
                raise
            raise InvalidReadingError(
                f"not a reading made by AccountReading.to_xcom ({type(err).__name__} on {str(err)[:100]})"
            ) from None


#: Longest text a reading carries (a left-out breakdown's reason, Kalshi's refusal): more is cut.
MAX_NOTE_LENGTH = 1000


def _optional_text(value: object, what: str) -> None:
    if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_NOTE_LENGTH):
        raise InvalidReadingError(f"{what} must be None or a text of 1 to {MAX_NOTE_LENGTH} characters")


def _shards_to_xcom(entries: tuple[ShardAmount, ...]) -> list[dict[str, Any]]:
    return [{"exchange_index": entry.exchange_index, "dollars": str(entry.dollars)} for entry in entries]


def _shards_from_xcom(entries: Any) -> tuple[ShardAmount, ...]:
    return tuple(ShardAmount(entry["exchange_index"], entry["dollars"]) for entry in entries)
