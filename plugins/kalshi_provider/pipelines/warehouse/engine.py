"""Find the warehouse database: an Airflow connection if one is configured, else a local SQLite file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine

from kalshi_provider.pipelines.settings import DEFAULT_WAREHOUSE_CONN_ID
from kalshi_provider.pipelines.warehouse.errors import WarehouseConnectionError

if TYPE_CHECKING:
    from airflow.sdk import Connection

EMBEDDED_DB_FILENAME = "kalshi_warehouse.db"
_SQLITE_BUSY_TIMEOUT_SECONDS = 30  # concurrent task instances wait for each other's write lock


def warehouse_engine(
    conn_id: str = DEFAULT_WAREHOUSE_CONN_ID, *, get_connection: Callable[[str], Any] | None = None
) -> tuple[Engine, str]:
    """
    Return an engine for the warehouse and a one-line description of it for the task log.

    The connection ``conn_id`` (any SQL connection type whose hook builds SQLAlchemy engines:
    postgres, sqlite, ...) is used when it exists; otherwise an embedded SQLite file in
    ``$AIRFLOW_HOME``. The description never contains a password. Dispose the engine when done.

    ``get_connection`` defaults to the Task SDK's lookup (tasks); the API server, which has no
    task supervisor, passes the core model's ``Connection.get_connection_from_secrets``.
    """
    from kalshi_provider.version_compat import AirflowNotFoundException, BaseHook

    try:
        connection = (get_connection or BaseHook.get_connection)(conn_id)
    except AirflowNotFoundException:
        return _embedded_engine(conn_id)
    hook = _hook_of(connection)
    if not callable(getattr(hook, "get_sqlalchemy_engine", None)):
        raise WarehouseConnectionError(
            f"Connection '{conn_id}' has type '{connection.conn_type}', whose hook "
            f"({type(hook).__name__}) cannot build an SQLAlchemy engine; use a SQL connection "
            "type such as postgres or sqlite"
        )
    engine = hook.get_sqlalchemy_engine()
    return engine, f"Airflow connection '{conn_id}' ({engine.url.render_as_string(hide_password=True)})"


def _hook_of(connection: Connection) -> Any:
    """The connection's hook; an unknown type or an unimportable provider is a config error."""
    from kalshi_provider.version_compat import AirflowException

    try:
        return connection.get_hook()
    except (AirflowException, ImportError) as err:
        raise WarehouseConnectionError(
            f"Connection '{connection.conn_id}' has type '{connection.conn_type}', for which no "
            f"usable hook is installed ({err}); install the provider for it or use postgres or sqlite"
        ) from err


def embedded_database_path() -> Path:
    """``$AIRFLOW_HOME/kalshi_warehouse.db``, with Airflow's default home ``~/airflow``."""
    home = os.path.expandvars(os.path.expanduser(os.environ.get("AIRFLOW_HOME") or "~/airflow"))
    return Path(home).resolve() / EMBEDDED_DB_FILENAME


def _embedded_engine(conn_id: str) -> tuple[Engine, str]:
    path = embedded_database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    url = URL.create("sqlite", database=str(path))
    engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_SECONDS})
    return engine, f"embedded SQLite file {path} (no '{conn_id}' connection found)"
