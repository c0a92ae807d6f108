"""Kalshi's side of the simulator: its paths, answer bodies and error shapes.

Bodies mirror what the live API sends (see FIELD-NOTES.md) and Kalshi's spec (3.32.0), including
fields the provider ignores, so a client that only works against a tidy mock fails here too.
Where Kalshi documents no behaviour (a bad query parameter, an unknown subaccount), the answer is
the simulator's choice and says so in ``simulator/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from kalshi_simulator.auth import UNKNOWN_KEY, AuthResult, message_for
from kalshi_simulator.exchange import Exchange
from kalshi_simulator.state import (
    MAX_SUBACCOUNT,
    Account,
    Subaccount,
    cents_to_dollars,
    dollars_text,
    dollars_to_cents,
    split_cents,
)

API_PREFIX = "/trade-api/v2"
#: Kalshi's documented answer to a subaccount-restricted key outside its allowed set
#: (docs.kalshi.com/getting_started/subaccounts); the status is 403, the error code undocumented.
RESTRICTED_MESSAGE = "this API key is restricted to a single sub-account and cannot access this endpoint"
_MAX_QUERY_FIELDS = 16
_MAX_EXCHANGE_INDEX = 999

Answer = tuple[int, Any, dict[str, str]]


def error_body(code: str, message: str, details: Any = "") -> dict[str, Any]:
    """Kalshi's wrapped error body."""
    return {"error": {"code": code, "message": message, "details": details}}


@dataclass(frozen=True)
class Call:
    """What a view needs to answer one request."""

    #: The caller's account (a snapshot); None on routes without auth.
    account: Account | None
    #: The raw query string.
    query: str
    exchange: Exchange
    #: Unix time (float seconds) of the request.
    now: float


def _restricted() -> tuple[int, Any]:
    return 403, error_body("permission_denied", RESTRICTED_MESSAGE)


def _total_resting_order_value(call: Call) -> tuple[int, Any]:
    account = call.account
    assert account is not None
    if account.restricted_subaccount is not None:
        # Kalshi lists a restricted key's portfolio reads as "balance, positions, fills,
        # settlements": the simulator keeps this FCM-wide figure out of that set.
        return _restricted()
    if not account.fcm_member:
        # The live 403 has no "details" key.
        return 403, {"error": {"code": "permission_denied", "message": "permission denied"}}
    return 200, {
        "total_resting_order_value": account.total_resting_order_value,
        "resting_order_value_breakdown": json.loads(json.dumps(account.breakdown)),
    }


def _balance(call: Call) -> tuple[int, Any]:
    """Every field Kalshi's spec marks required (balance, balance_dollars, portfolio_value,
    updated_ts), and the per-shard balance_breakdown except for a restricted key.

    ``subaccount`` picks the subaccount (default 0, or a restricted key's own), ``exchange_index``
    scopes the balance and portfolio value to one shard (default: all shards summed).
    """
    account = call.account
    assert account is not None
    try:
        params = parse_qs(call.query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS)
        subaccount = _int_param(params, "subaccount", MAX_SUBACCOUNT)
        shard = _int_param(params, "exchange_index", _MAX_EXCHANGE_INDEX)
    except ValueError as exc:
        return 400, error_body("bad_request", str(exc))
    restricted = account.restricted_subaccount
    if restricted is not None:
        if subaccount not in (None, restricted):  # "naming any other subaccount is rejected"
            return _restricted()
        subaccount = restricted
    now = int(call.now)
    if not subaccount:
        try:
            body = _primary_balance(account, shard, now)
        except ValueError as exc:
            return 500, error_body("internal_server_error", str(exc))
    elif subaccount in account.subaccounts:
        body = _subaccount_balance(account.subaccounts[subaccount], shard, now)
    else:
        return 404, error_body("not_found", f"subaccount {subaccount} does not exist")
    if restricted is not None:  # "omitted only when using a subaccount-restricted API key"
        del body["balance_breakdown"]
    return 200, body


def _primary_balance(account: Account, shard: int | None, now: int) -> dict[str, Any]:
    """Subaccount 0: the scripted fields as they are, or one shard of them."""
    breakdown = json.loads(json.dumps(account.balance_breakdown))
    updated_ts = now if account.updated_ts is None else account.updated_ts
    if shard is None:
        return {
            "balance": account.balance,
            "balance_dollars": account.balance_dollars or cents_to_dollars(account.balance),
            "portfolio_value": account.portfolio_value,
            "updated_ts": updated_ts,
            "balance_breakdown": breakdown,
        }
    try:
        on_shard = sum(
            (
                Decimal(entry["balance"])
                for entry in breakdown
                if isinstance(entry, dict) and entry.get("exchange_index") == shard
            ),
            Decimal(0),
        )
    except (InvalidOperation, KeyError, TypeError, ValueError):
        raise ValueError(
            f"the scripted balance_breakdown cannot be scoped to exchange_index {shard}"
        ) from None
    return {
        "balance": dollars_to_cents(on_shard),
        "balance_dollars": dollars_text(on_shard),
        "portfolio_value": split_cents(account.portfolio_value).get(shard, 0),
        "updated_ts": updated_ts,
        "balance_breakdown": breakdown,
    }


def _subaccount_balance(subaccount: Subaccount, shard: int | None, now: int) -> dict[str, Any]:
    """A numbered subaccount: the sum of its shards, or one of them."""
    amount = subaccount.balance if shard is None else subaccount.on_shard(shard)
    portfolio_value = subaccount.portfolio_value
    return {
        "balance": dollars_to_cents(amount),
        "balance_dollars": dollars_text(amount),
        "portfolio_value": portfolio_value if shard is None else split_cents(portfolio_value).get(shard, 0),
        "updated_ts": now if subaccount.updated_ts is None else subaccount.updated_ts,
        "balance_breakdown": [dict(entry) for entry in subaccount.breakdown],
    }


def _subaccount_balances(call: Call) -> tuple[int, Any]:
    """One row per (subaccount, shard), the primary's rows being its ``balance_breakdown``."""
    account = call.account
    assert account is not None
    if account.restricted_subaccount is not None:  # it cannot "manage subaccounts"
        return _restricted()
    now = int(call.now)
    primary_ts = now if account.updated_ts is None else account.updated_ts
    rows: list[Any] = [
        {"subaccount_number": 0, **entry, "updated_ts": primary_ts} if isinstance(entry, dict) else entry
        for entry in json.loads(json.dumps(account.balance_breakdown))
    ]
    for number, subaccount in account.subaccounts.items():
        updated_ts = now if subaccount.updated_ts is None else subaccount.updated_ts
        rows += [
            {"subaccount_number": number, **entry, "updated_ts": updated_ts} for entry in subaccount.breakdown
        ]
    return 200, {"subaccount_balances": rows}


def _exchange_status(call: Call) -> tuple[int, Any]:
    return 200, call.exchange.status_body()


def _exchange_schedule(call: Call) -> tuple[int, Any]:
    return 200, call.exchange.schedule_body(datetime.fromtimestamp(call.now, timezone.utc))


def _int_param(params: dict[str, list[str]], name: str, maximum: int) -> int | None:
    values = params.get(name)
    if values is None:
        return None
    text = values[0]
    if len(values) > 1 or not text.isascii() or not text.isdigit() or len(text) > 3 or int(text) > maximum:
        raise ValueError(f"{name} must be one integer from 0 to {maximum}")
    return int(text)


#: Path below /trade-api/v2 -> (needs auth, view). Every route is GET-only.
ROUTES: dict[str, tuple[bool, Callable[[Call], tuple[int, Any]]]] = {
    "/portfolio/summary/total_resting_order_value": (True, _total_resting_order_value),
    "/portfolio/balance": (True, _balance),
    "/portfolio/subaccounts/balances": (True, _subaccount_balances),
    "/exchange/status": (False, _exchange_status),
    "/exchange/schedule": (False, _exchange_schedule),
}


def needs_auth(path: str) -> bool:
    """Whether ``path`` is a signed route (an unknown path is not)."""
    route = ROUTES.get(path[len(API_PREFIX) :]) if path.startswith(API_PREFIX + "/") else None
    return route is not None and route[0]


def answer(
    method: str,
    path: str,
    query: str,
    auth: AuthResult,
    account: Callable[[str], Account | None],
    exchange: Exchange,
    now: float,
) -> Answer:
    """The normal (fault-free) answer: status, JSON body, extra headers.

    Routing comes first (404, 405), then auth (401), then the view (which may answer 400, 403,
    404). ``account`` looks an account up by key ID.
    """
    route = ROUTES.get(path[len(API_PREFIX) :]) if path.startswith(API_PREFIX + "/") else None
    if route is None:
        return 404, error_body("not_found", "not found"), {}
    if method != "GET":
        return 405, error_body("method_not_allowed", "method not allowed"), {"Allow": "GET"}
    signed, view = route
    found = None
    if signed:
        found = account(auth.key_id) if auth.failure is None and auth.key_id else None
        if auth.failure is not None or found is None:  # None: removed since auth looked it up
            failure = auth.failure or UNKNOWN_KEY
            return 401, error_body("authentication_error", message_for(failure), failure), {}
    status, body = view(Call(found, query, exchange, now))
    return status, body, {}
