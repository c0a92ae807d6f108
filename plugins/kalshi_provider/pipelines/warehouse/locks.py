"""Database locks: one migrator per deployment at a time, and SQLite write transactions.

Workers that find the warehouse behind all at once migrate it once: the first migrates, the others
wait (bounded), then find it current. PostgreSQL: ``pg_advisory_xact_lock`` under ``lock_timeout``,
in the migration's transaction; MySQL/MariaDB: ``GET_LOCK`` (their DDL commits implicitly); SQLite:
``BEGIN IMMEDIATE`` under the busy timeout (per file); other engines: none (a racing migrator's DDL
fails and its task retries). Locks are per schema and table, so deployments do not wait for each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from kalshi_provider.exceptions import KalshiError

#: PostgreSQL's SQLSTATE for a lock not granted within lock_timeout.
_PG_LOCK_NOT_AVAILABLE = "55P03"


class WarehouseBusyError(KalshiError):
    """Another worker held the deployment's migration lock for longer than we may wait.

    Retryable: the next try will most likely find the warehouse migrated.
    """

    retryable = True


def sqlite_begin_immediate(conn: Connection) -> None:
    """
    Open the SQLite transaction ourselves, taking the write lock up front.

    pysqlite only begins a transaction at the first INSERT/UPDATE/DELETE, so a SAVEPOINT issued
    before that would open (and its RELEASE commit) a transaction of its own, and two writers that
    both read first would deadlock upgrading their locks. DDL run after it is part of the
    transaction too.
    """
    dbapi_conn = conn.connection.driver_connection
    if getattr(dbapi_conn, "autocommit", None) is True or getattr(dbapi_conn, "in_transaction", True):
        return  # Python 3.12 autocommit mode, or a transaction an engine event already began
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def migration_lock(engine: Engine, deployment: str, wait_seconds: int) -> Iterator[Connection]:
    """A connection, in a transaction, holding ``deployment``'s migration lock; committed on exit.

    :param deployment: What the lock is named after (schema and table name).
    :param wait_seconds: How long to wait for a lock someone else holds (SQLite: the engine's busy
        timeout instead).
    :raises WarehouseBusyError: when the wait ran out.
    """
    dialect = engine.dialect.name
    with engine.connect() as conn:
        if dialect == "postgresql":
            with conn.begin():
                _pg_lock(conn, deployment, wait_seconds)
                yield conn
        elif dialect in ("mysql", "mariadb"):
            name = _lock_name(deployment)
            with conn.begin():
                granted = conn.execute(select(func.get_lock(name, wait_seconds))).scalar()
            if granted != 1:
                raise _busy(deployment, wait_seconds)
            try:
                with conn.begin():
                    yield conn
            finally:
                with conn.begin():
                    conn.execute(select(func.release_lock(name)))
        elif dialect == "sqlite":
            with conn.begin():
                _sqlite_lock(conn, deployment)
                yield conn
        else:
            with conn.begin():
                yield conn


def _pg_lock(conn: Connection, deployment: str, wait_seconds: int) -> None:
    # SET takes no bind parameters; the value is an int we made.
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'")
    try:
        conn.execute(select(func.pg_advisory_xact_lock(_lock_key(deployment))))
    except OperationalError as err:
        code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
        if code == _PG_LOCK_NOT_AVAILABLE:
            raise _busy(deployment, wait_seconds) from None
        raise


def _sqlite_lock(conn: Connection, deployment: str) -> None:
    """The write lock, waited for as long as the engine's busy timeout (``bound_engine``: the
    warehouse's lock timeout) allows, as every write waits."""
    try:
        sqlite_begin_immediate(conn)
    except OperationalError as err:
        if "locked" in str(err.orig).lower():
            raise _busy(deployment, None) from None
        raise


def _busy(deployment: str, wait_seconds: int | None) -> WarehouseBusyError:
    waited = "the engine's busy timeout" if wait_seconds is None else f"{wait_seconds} s"
    return WarehouseBusyError(
        f"Another session held the migration lock of the warehouse tables of {deployment} for longer "
        f"than {waited}, so this try stopped waiting; the task's next try will most likely find them "
        "migrated. If this repeats, look for a session that holds the lock (a migration that hangs)."
    )


def _digest(deployment: str) -> bytes:
    return hashlib.sha256(f"kalshi-warehouse-migration:{deployment}".encode()).digest()


def _lock_key(deployment: str) -> int:
    """PostgreSQL's advisory lock key: a signed 64-bit integer."""
    return int.from_bytes(_digest(deployment)[:8], "big", signed=True)


def _lock_name(deployment: str) -> str:
    """MySQL/MariaDB's lock name: at most 64 characters, the same for every worker."""
    return "kalshi_warehouse_" + _digest(deployment).hex()[:40]
