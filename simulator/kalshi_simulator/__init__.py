"""A local stand-in for Kalshi's Trade API v2, for tests and demos without a real account.

It enforces Kalshi's request signing (checked independently of the provider's signing code, so a
signing mistake there fails here), serves the few endpoints the provider calls, and can script
failures (errors, delays, dropped connections) so retry and error handling are testable against
real HTTP.
Standard library plus ``cryptography`` only; it binds to loopback addresses only.
"""

from __future__ import annotations

from kalshi_simulator.keys import generate_private_key, load_public_key, private_pem, public_pem
from kalshi_simulator.server import KalshiSimulator
from kalshi_simulator.state import RecordedRequest

__all__ = [
    "KalshiSimulator",
    "RecordedRequest",
    "generate_private_key",
    "load_public_key",
    "private_pem",
    "public_pem",
]
