"""Kalshi's side of the simulator: its paths, answer bodies and error shapes.

Bodies mirror what the live API sends (see FIELD-NOTES.md), including fields the provider
ignores, so a client that only works against a tidy mock fails here too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kalshi_simulator.auth import UNKNOWN_KEY, AuthResult, message_for
from kalshi_simulator.state import Account, cents_to_dollars

API_PREFIX = "/trade-api/v2"

Answer = tuple[int, Any, dict[str, str]]


def error_body(code: str, message: str, details: Any = "") -> dict[str, Any]:
    """Kalshi's wrapped error body."""
    return {"error": {"code": code, "message": message, "details": details}}


def _total_resting_order_value(account: Account | None) -> tuple[int, Any]:
    assert account is not None
    if not account.fcm_member:
        # The live 403 has no "details" key.
        return 403, {"error": {"code": "permission_denied", "message": "permission denied"}}
    return 200, {
        "total_resting_order_value": account.total_resting_order_value,
        "resting_order_value_breakdown": json.loads(json.dumps(account.breakdown)),
    }


def _balance(account: Account | None) -> tuple[int, Any]:
    """Every field Kalshi's spec marks required (balance, balance_dollars, portfolio_value,
    updated_ts), and the optional per-shard balance_breakdown."""
    assert account is not None
    return 200, {
        "balance": account.balance,
        "balance_dollars": account.balance_dollars or cents_to_dollars(account.balance),
        "portfolio_value": account.portfolio_value,
        "updated_ts": int(time.time()) if account.updated_ts is None else account.updated_ts,
        "balance_breakdown": json.loads(json.dumps(account.balance_breakdown)),
    }


def _exchange_status(account: Account | None) -> tuple[int, Any]:
    return 200, {"exchange_active": True, "trading_active": True}


#: Path below /trade-api/v2 -> (needs auth, view). Every route is GET-only.
ROUTES: dict[str, tuple[bool, Callable[[Account | None], tuple[int, Any]]]] = {
    "/portfolio/summary/total_resting_order_value": (True, _total_resting_order_value),
    "/portfolio/balance": (True, _balance),
    "/exchange/status": (False, _exchange_status),
}


def answer(method: str, path: str, auth: AuthResult, account: Callable[[str], Account | None]) -> Answer:
    """The normal (fault-free) answer: status, JSON body, extra headers.

    Routing comes first (404, 405), then auth (401), then the view (which may answer 403).
    ``account`` looks an account up by key ID.
    """
    route = ROUTES.get(path[len(API_PREFIX) :]) if path.startswith(API_PREFIX + "/") else None
    if route is None:
        return 404, error_body("not_found", "not found"), {}
    if method != "GET":
        return 405, error_body("method_not_allowed", "method not allowed"), {"Allow": "GET"}
    needs_auth, view = route
    found = None
    if needs_auth:
        found = account(auth.key_id) if auth.failure is None and auth.key_id else None
        if auth.failure is not None or found is None:  # None: removed since auth looked it up
            failure = auth.failure or UNKNOWN_KEY
            return 401, error_body("authentication_error", message_for(failure), failure), {}
    status, body = view(found)
    return status, body, {}
