"""Aware UTC datetimes: the one check every timestamp the provider and its pipelines take passes.

A naive datetime's zone is a guess (the worker's? the server's?), and a guessed hour is a wrong
row; so every timestamp that comes in (a reading's arrival, a run's ``run_after``, a window's
bounds, a value bound to a timestamp column) is refused unless it says its zone, then used in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone


def aware_utc(value: object, what: str, error: type[Exception] = ValueError) -> datetime:
    """Return ``value`` in UTC; anything but a timezone-aware ``datetime`` raises ``error``.

    :param what: The value's name, for the message.
    :param error: What the caller raises for a bad value (a ``ValueError`` of its own kind).
    """
    if not isinstance(value, datetime):
        raise error(f"{what} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise error(f"{what} must be timezone-aware, got naive {value.isoformat()} (attach tzinfo, e.g. UTC)")
    return value.astimezone(timezone.utc)
