"""Helpers for the simulator's own tests: build Kalshi auth headers by hand.

The tests need to send deliberately wrong headers (stale timestamps, other paddings), which
KalshiAuth would never produce, so they sign with signing.sign or cryptography directly.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kalshi_provider.signing import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PrivateKey,
    now_ms,
    sign,
    signing_message,
)

HeaderMaker = Callable[..., dict[str, str]]


def make_headers(
    key_id: str,
    key: PrivateKey,
    method: str,
    path: str,
    *,
    timestamp: str | None = None,
    signer: Callable[[bytes], str] | None = None,
) -> dict[str, str]:
    """Kalshi auth headers for ``method`` ``path``; ``signer`` replaces signing.sign."""
    ts = now_ms() if timestamp is None else timestamp
    message = signing_message(ts, method, path)
    signature = signer(message) if signer else sign(key, message)
    return {KEY_HEADER: key_id, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}


@pytest.fixture
def headers_for() -> HeaderMaker:
    return make_headers
