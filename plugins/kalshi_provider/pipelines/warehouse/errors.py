"""Errors the warehouse raises; each is also a ``ValueError`` so plain callers can catch that."""

from __future__ import annotations

from kalshi_provider.exceptions import KalshiConfigError, KalshiError


class InvalidIdentifierError(KalshiConfigError, ValueError):
    """A table or schema name is not a plain SQL identifier (we never quote arbitrary text)."""


class InvalidSnapshotError(KalshiError, ValueError):
    """A snapshot or breakdown entry holds a value the warehouse cannot store faithfully."""


class WarehouseConnectionError(KalshiConfigError):
    """The Airflow connection named for the warehouse cannot give an SQLAlchemy engine."""
