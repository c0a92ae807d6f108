"""The simulator's data: accounts it knows and the requests it has seen.

Plain data, no HTTP: the server mutates it under one lock, and tests read copies of it to
assert on what the client actually sent (headers, signature validity, answer).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from kalshi_simulator.signature import PublicKey

_FOUR_PLACES = Decimal("0.0001")

#: The exchange shards of 2026 (shards 2 and 3 started on 2026-08-24) and the percentage of an
#: amount each holds when no breakdown is given: shard 0 gets what the others leave, to the cent.
DEFAULT_SHARES = {0: 40, 1: 30, 2: 20, 3: 10}


#: Kalshi's numbered subaccounts: "0 for primary, 1-63 for subaccounts" (spec 3.32.0).
MAX_SUBACCOUNT = 63
#: FixedPointDollars as Kalshi's answers emit it: "up to 6" decimal places.
_DOLLARS = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,6})?")


def cents_to_dollars(cents: int) -> str:
    """Kalshi's fixed-point dollar string: 123456 -> ``"1234.5600"``."""
    return str((Decimal(cents) / 100).quantize(_FOUR_PLACES))


def dollars_text(amount: Decimal) -> str:
    """A dollar amount as Kalshi writes it: at least 4 decimal places, more when it has them."""
    exponent = amount.as_tuple().exponent
    return str(amount if isinstance(exponent, int) and exponent < -4 else amount.quantize(_FOUR_PLACES))


def dollars_to_cents(dollars: Decimal) -> int:
    """Whole cents, sub-cent amounts truncated as Kalshi's legacy ``balance`` field does."""
    return int((dollars * 100).to_integral_value(rounding=ROUND_DOWN))


def split_cents(cents: int) -> dict[int, int]:
    """``cents`` spread over the shards of ``DEFAULT_SHARES``: shard 0 gets what the others leave."""
    parts = {index: cents * share // 100 for index, share in DEFAULT_SHARES.items() if index}
    parts[0] = cents - sum(parts.values())
    return dict(sorted(parts.items()))


def split_over_shards(cents: int) -> list[dict[str, Any]]:
    """``cents`` spread over the shards of ``DEFAULT_SHARES``, entries adding up to it exactly."""
    return [
        {"exchange_index": index, "balance": cents_to_dollars(part)}
        for index, part in split_cents(cents).items()
    ]


def make_breakdown(
    total: int, breakdown: list[dict[str, Any]] | None, what: str = "breakdown"
) -> list[dict[str, Any]]:
    """A per-shard breakdown list to serve (``resting_order_value_breakdown`` or ``balance_breakdown``).

    ``None`` means "like the live API in 2026": one entry per shard 0-3, adding up to ``total``
    cents exactly (see ``DEFAULT_SHARES``). Pass ``[]`` for an empty list. Entries are copied, not
    validated, so a test can serve odd shapes on purpose.
    """
    if breakdown is None:
        return split_over_shards(total)
    if not isinstance(breakdown, list):
        raise ValueError(f"{what} must be a list of {{'exchange_index': int, 'balance': str}} dicts")
    return json.loads(json.dumps(breakdown))


@dataclass(frozen=True)
class Subaccount:
    """A numbered subaccount (1-63): its per-shard balances are the truth, its totals their sums.

    Unlike the primary's scripted fields (which a test may set inconsistent on purpose), these are
    validated, so ``/portfolio/balance?subaccount=N`` can add them up.
    """

    number: int
    #: ``[{"exchange_index": int, "balance": "<FixedPointDollars>"}]``, one entry per shard.
    breakdown: tuple[dict[str, Any], ...]
    portfolio_value: int = 0
    #: Served as ``updated_ts``; None: the time of the answer.
    updated_ts: int | None = None

    @property
    def balance(self) -> Decimal:
        return sum((Decimal(entry["balance"]) for entry in self.breakdown), Decimal(0))

    def on_shard(self, exchange_index: int) -> Decimal:
        return sum(
            (
                Decimal(entry["balance"])
                for entry in self.breakdown
                if entry["exchange_index"] == exchange_index
            ),
            Decimal(0),
        )


def make_subaccounts(spec: Any) -> dict[int, Subaccount]:
    """Subaccounts from ``{number: cents | {"balance" | "balance_breakdown", "portfolio_value",
    "updated_ts"}}``; numbers may be ints or digit strings (JSON keys). Raises ValueError.

    Cents are spread over shards 0-3 like every default breakdown; a ``balance_breakdown`` gives
    the per-shard dollar strings exactly (sub-cent digits included).
    """
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ValueError("subaccounts must be a dict of subaccount number -> balance in cents or a dict")
    made: dict[int, Subaccount] = {}
    for key, value in spec.items():
        number = _subaccount_number(key)
        if number in made:
            raise ValueError(f"subaccount {number} is given twice")
        made[number] = _subaccount(number, value)
    return dict(sorted(made.items()))


def _subaccount_number(key: Any) -> int:
    if isinstance(key, str) and key.isdigit() and len(key) <= 2:
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= MAX_SUBACCOUNT:
        raise ValueError(f"subaccount numbers run from 1 to {MAX_SUBACCOUNT}, got {key!r}")
    if key == 0:
        raise ValueError(
            "subaccount 0 is the primary account: script it with balance, balance_breakdown, "
            "portfolio_value and updated_ts"
        )
    return key


_SUBACCOUNT_FIELDS = frozenset({"balance", "balance_breakdown", "portfolio_value", "updated_ts"})


def _subaccount(number: int, value: Any) -> Subaccount:
    where = f"subaccount {number}"
    if not isinstance(value, Mapping):
        value = {"balance": value}
    unknown = set(value) - _SUBACCOUNT_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}; known: {sorted(_SUBACCOUNT_FIELDS)}")
    if ("balance" in value) == ("balance_breakdown" in value):
        raise ValueError(f"{where}: give 'balance' (cents) or 'balance_breakdown' (per shard), one of them")
    if "balance" in value:
        breakdown = split_over_shards(check_cents(value["balance"], f"{where} balance"))
    else:
        breakdown = _strict_breakdown(value["balance_breakdown"], where)
    return Subaccount(
        number=number,
        breakdown=tuple(breakdown),
        portfolio_value=check_cents(value.get("portfolio_value", 0), f"{where} portfolio_value"),
        updated_ts=check_timestamp(value.get("updated_ts")),
    )


def _strict_breakdown(entries: Any, where: str) -> list[dict[str, Any]]:
    shape = "a list of {'exchange_index': int >= 0, 'balance': '<dollars>'}"
    if not isinstance(entries, list):
        raise ValueError(f"{where}: balance_breakdown must be {shape}")
    seen: set[int] = set()
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping) or set(entry) != {"exchange_index", "balance"}:
            raise ValueError(f"{where}: balance_breakdown must be {shape}, got {entry!r}")
        index, balance = entry["exchange_index"], entry["balance"]
        if isinstance(index, bool) or not isinstance(index, int) or index < 0 or index in seen:
            raise ValueError(f"{where}: exchange_index must be a distinct integer >= 0, got {index!r}")
        if not isinstance(balance, str) or not _DOLLARS.fullmatch(balance):
            raise ValueError(
                f"{where}: balance must be a dollar string with up to 6 decimals, got {balance!r}"
            )
        seen.add(index)
        out.append({"exchange_index": index, "balance": balance})
    return sorted(out, key=lambda entry: entry["exchange_index"])


def check_restriction(number: Any, subaccounts: Mapping[int, Subaccount]) -> int | None:
    """A restricted key's subaccount: None (an ordinary key), 0 or one of ``subaccounts``."""
    if number is None:
        return None
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_SUBACCOUNT:
        raise ValueError(f"restricted_subaccount must be a subaccount number 0-{MAX_SUBACCOUNT} or null")
    if number and number not in subaccounts:
        raise ValueError(f"restricted_subaccount {number} is not one of the account's subaccounts")
    return number


def check_cents(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of cents, got {value!r}")
    return value


def check_timestamp(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError("updated_ts must be whole seconds since 1970")
    return value


@dataclass
class Account:
    key_id: str
    public_key: PublicKey
    total_resting_order_value: int
    breakdown: list[dict[str, Any]]
    balance: int
    portfolio_value: int
    fcm_member: bool
    balance_breakdown: list[dict[str, Any]] = field(default_factory=list)
    #: Served as ``balance_dollars``; None: the balance in cents as a fixed-point dollar string.
    balance_dollars: str | None = None
    #: Served as ``updated_ts``; None: the time of the answer.
    updated_ts: int | None = None
    #: Subaccounts 1-63 by number. The primary (0) is the fields above: its per-shard rows in
    #: /portfolio/subaccounts/balances are ``balance_breakdown``'s entries.
    subaccounts: dict[int, Subaccount] = field(default_factory=dict)
    #: The subaccount a subaccount-restricted key is locked to; None: an ordinary key.
    restricted_subaccount: int | None = None


@dataclass
class RecordedRequest:
    """One request to a Kalshi path, as received and as answered."""

    method: str
    path: str
    query: str
    key_id: str | None
    #: The KALSHI-ACCESS-TIMESTAMP header as sent (a string), or None.
    timestamp: str | None
    #: The KALSHI-ACCESS-SIGNATURE header as sent, or None.
    signature: str | None
    #: Whether the signature verifies for the key ID (independent of the timestamp's age).
    signature_valid: bool
    #: The 401 ``details`` code auth gave or would have given, or None when it passes.
    auth_error: str | None
    #: Unix time (float seconds) the request was received.
    received_at: float
    #: Whether a scripted fault was applied to it.
    fault: bool = False
    #: HTTP status answered; None while still being handled or when the connection was dropped.
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def copy(self) -> RecordedRequest:
        return dataclasses.replace(self, headers=dict(self.headers))
