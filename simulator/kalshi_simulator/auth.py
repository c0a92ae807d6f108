"""Kalshi's authentication rules as the simulator enforces them.

Kept apart from the HTTP plumbing so that each rule, its order and its 401 ``details`` code
live in one place. Signatures are checked by ``signature.py``, written from Kalshi's documentation
independently of the provider, so a signing mistake in the provider shows up as a 401 here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kalshi_simulator.signature import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PublicKey,
    signature_is_valid,
    signed_message,
)

MISSING = "signature_is_missing_from_headers"
EXPIRED = "header_timestamp_expired"
UNKNOWN_KEY = "NOT_FOUND"
BAD_SIGNATURE = "INCORRECT_API_KEY_SIGNATURE"

_MESSAGES = {
    MISSING: f"the {KEY_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are all required",
    EXPIRED: f"{TIMESTAMP_HEADER} must be the current Unix time in milliseconds",
    UNKNOWN_KEY: "no API key with this key ID exists",
    BAD_SIGNATURE: "the request signature does not match",
}
_DIGITS = re.compile(r"[0-9]{1,19}")  # bounded: int() of a huge header would raise


@dataclass(frozen=True)
class AuthResult:
    """What the auth headers of one request said, and Kalshi's verdict on them."""

    key_id: str | None
    timestamp: str | None
    signature: str | None
    #: The signature verifies against the key's public key (the timestamp is not judged here).
    signature_valid: bool
    #: The 401 ``details`` code, or None when the request is authenticated.
    failure: str | None

    @property
    def message(self) -> str:
        return message_for(self.failure)


def message_for(failure: str | None) -> str:
    """The human text Kalshi's 401 body carries for a ``details`` code."""
    return _MESSAGES.get(failure or "", "")


def authenticate(
    header: Callable[[str], str | None],
    method: str,
    target: str,
    lookup: Callable[[str], PublicKey | None],
    now_ms: int,
    skew_ms: float,
) -> AuthResult:
    """Judge one request. ``header`` reads a header case-insensitively, ``target`` is the
    request target as sent (path and query), ``lookup`` maps a key ID to its public key.

    Checks run in the order Kalshi reports them: missing header, stale timestamp, unknown key,
    bad signature.
    """
    key_id = header(KEY_HEADER) or None
    timestamp = header(TIMESTAMP_HEADER) or None
    signature = header(SIGNATURE_HEADER) or None
    public_key = lookup(key_id) if key_id else None
    valid = bool(
        public_key is not None
        and timestamp is not None
        and signature is not None
        and signature_is_valid(public_key, signed_message(timestamp, method, target), signature)
    )
    if key_id is None or timestamp is None or signature is None:
        failure: str | None = MISSING
    elif not _DIGITS.fullmatch(timestamp) or abs(now_ms - int(timestamp)) > skew_ms:
        failure = EXPIRED
    elif public_key is None:
        failure = UNKNOWN_KEY
    elif not valid:
        failure = BAD_SIGNATURE
    else:
        failure = None
    return AuthResult(key_id, timestamp, signature, valid, failure)
