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


def cents_to_dollars(cents: int) -> str:
    """Kalshi's fixed-point dollar string: 123456 -> ``"1234.5600"``."""
    return str((Decimal(cents) / 100).quantize(_FOUR_PLACES))


def make_breakdown(total: int, breakdown: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The ``resting_order_value_breakdown`` list to serve.

    ``None`` means "like the live API for a single exchange": one entry for exchange 0 holding
    the whole total. Pass ``[]`` for an empty list. Entries are copied, not validated, so a
    test can serve odd shapes on purpose.
    """
    if breakdown is None:
        return [{"exchange_index": 0, "balance": cents_to_dollars(total)}]
    if not isinstance(breakdown, list):
        raise ValueError("breakdown must be a list of {'exchange_index': int, 'balance': str} dicts")
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
