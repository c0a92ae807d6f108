"""Errors the warehouse raises; each is also a ``ValueError`` so plain callers can catch that."""

from __future__ import annotations

from kalshi_provider.exceptions import KalshiConfigError, KalshiError


class InvalidIdentifierError(KalshiConfigError, ValueError):
    """A table or schema name is not a plain SQL identifier (we never quote arbitrary text)."""


class InvalidSnapshotError(KalshiError, ValueError):
    """A row would break the warehouse's rules (an hour not on the hour, an observation outside it)."""


class WarehouseConnectionError(KalshiConfigError):
    """The Airflow connection named for the warehouse does not exist (and the embedded file may not
    stand in for it), or is not a SQL connection that builds engines."""


class VolatileWarehouseError(KalshiConfigError, ValueError):
    """The warehouse would forget what is written: an in-memory or temporary SQLite database, a
    relative SQLite path, or a temporary or unlogged PostgreSQL table.

    Permanent: the task fails at once instead of logging "Wrote the total" to a database that the
    next session, or the chart, never sees.
    """


class WarehouseSchemaError(KalshiConfigError, ValueError):
    """A table that already exists cannot hold the rows exactly (a column type, the primary key).

    Permanent: the DAG fails at once instead of retrying, and nothing is written.
    """
