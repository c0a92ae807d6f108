"""The control API under ``/_simulator``: drive a simulator running in another process.

Demo scripts and DAG-level tests run the simulator with ``python -m``; this lets them queue
faults, read recorded requests and register keys over HTTP. It has no auth, which is one
reason the server binds to loopback only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from kalshi_simulator.api import error_body

if TYPE_CHECKING:
    from kalshi_simulator.server import KalshiSimulator

CONTROL_PREFIX = "/_simulator"
#: What /portfolio/balance serves, by the name add_account gives it.
_BALANCE_OPTIONS = frozenset(
    {"balance", "portfolio_value", "balance_breakdown", "balance_dollars", "updated_ts"}
)
_ACCOUNT_OPTIONS = (
    frozenset(
        {"total_resting_order_value", "breakdown", "fcm_member", "subaccounts", "restricted_subaccount"}
    )
    | _BALANCE_OPTIONS
)


def handle(sim: KalshiSimulator, method: str, path: str, body: Any) -> tuple[int, Any]:
    """Status and JSON body for one control request. Raises ValueError for a bad body (400)."""
    rest = path[len(CONTROL_PREFIX) :]
    if rest == "/health" and method == "GET":
        return 200, {"status": "ok", "base_url": sim.base_url, "pending_faults": sim.pending_faults}
    if rest == "/faults":
        if method == "POST":
            sim.push_faults(body if isinstance(body, list) else [body])
            return 200, {"pending_faults": sim.pending_faults}
        if method == "DELETE":
            sim.clear_faults()
            return 200, {"pending_faults": 0}
        if method == "GET":
            return 200, {"faults": sim.faults}
    if rest == "/requests":
        if method == "GET":
            return 200, {"requests": [record.to_dict() for record in sim.requests]}
        if method == "DELETE":
            sim.clear_requests()
            return 200, {"requests": []}
    if rest == "/accounts" and method == "POST":
        return _add_account(sim, body)
    if rest.startswith("/accounts/") and method in ("PATCH", "DELETE"):
        return _change_account(sim, method, unquote(rest[len("/accounts/") :]), body)
    if rest == "/exchange":
        if method == "PATCH":
            if not isinstance(body, dict) or not body:
                raise ValueError("body must be a dict of exchange fields (see simulator/README.md)")
            sim.exchange.update(**body)  # all the changes, or none of them
            return 200, sim.exchange.to_dict(datetime.now(timezone.utc))
        if method == "DELETE":
            sim.exchange.reset()
            return 200, sim.exchange.to_dict(datetime.now(timezone.utc))
        if method == "GET":
            return 200, sim.exchange.to_dict(datetime.now(timezone.utc))
    if rest in ("/health", "/faults", "/requests", "/accounts", "/exchange") or rest.startswith("/accounts/"):
        return 405, error_body("method_not_allowed", "method not allowed")
    return 404, error_body("not_found", "no such control endpoint")


def _add_account(sim: KalshiSimulator, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or not {"key_id", "public_key_pem"} <= set(body):
        raise ValueError("body must be {'key_id': str, 'public_key_pem': str, ...}")
    unknown = set(body) - _ACCOUNT_OPTIONS - {"key_id", "public_key_pem"}
    if unknown:
        raise ValueError(f"unknown account fields {sorted(unknown)}; optional: {sorted(_ACCOUNT_OPTIONS)}")
    options = {name: body[name] for name in _ACCOUNT_OPTIONS if name in body}
    sim.add_account(body["key_id"], body["public_key_pem"], **options)
    return 201, {"key_id": body["key_id"]}


def _change_account(sim: KalshiSimulator, method: str, key_id: str, body: Any) -> tuple[int, Any]:
    if method == "DELETE":
        sim.remove_account(key_id)
        return 200, {"key_id": key_id}
    if not isinstance(body, dict) or not body or not set(body) <= _ACCOUNT_OPTIONS:
        raise ValueError(f"body must be a dict with some of {sorted(_ACCOUNT_OPTIONS)}")
    sim.update_account(key_id, **body)  # all the changes, or none of them
    return 200, {"key_id": key_id}
