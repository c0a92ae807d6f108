"""The simulator's data: accounts it knows and the requests it has seen.

Plain data, no HTTP: the server mutates it under one lock, and tests read copies of it to
assert on what the client actually sent (headers, signature validity, answer).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kalshi_simulator.signature import PublicKey

_FOUR_PLACES = Decimal("0.0001")

#: The exchange shards of 2026 (shards 2 and 3 started on 2026-08-24) and the percentage of an
#: amount each holds when no breakdown is given: shard 0 gets what the others leave, to the cent.
DEFAULT_SHARES = {0: 40, 1: 30, 2: 20, 3: 10}


def cents_to_dollars(cents: int) -> str:
    """Kalshi's fixed-point dollar string: 123456 -> ``"1234.5600"``."""
    return str((Decimal(cents) / 100).quantize(_FOUR_PLACES))


def split_over_shards(cents: int) -> list[dict[str, Any]]:
    """``cents`` spread over the shards of ``DEFAULT_SHARES``, entries adding up to it exactly."""
    parts = {index: cents * share // 100 for index, share in DEFAULT_SHARES.items() if index}
    parts[0] = cents - sum(parts.values())
    return [{"exchange_index": index, "balance": cents_to_dollars(parts[index])} for index in sorted(parts)]


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
