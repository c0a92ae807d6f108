"""Find the warehouse database (an Airflow SQL connection, else a local SQLite file) and bound it.

Every engine made here waits a bounded time for everything: connecting, a statement, a lock held
by another session, and a peer that went away (TCP keepalives). The bounds are added to the
driver's connect arguments as each connection is made, so they apply to whatever engine the
connection's hook builds; a value the connection itself sets (an extra) is kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine

from kalshi_provider.pipelines.settings import DEFAULT_WAREHOUSE_CONN_ID
from kalshi_provider.pipelines.warehouse.errors import WarehouseConnectionError

if TYPE_CHECKING:
    from airflow.sdk import Connection

EMBEDDED_DB_FILENAME = "kalshi_warehouse.db"


@dataclass(frozen=True)
class WarehouseTimeouts:
    """How long the warehouse may make a load wait, in seconds.

    :param connect: to open a connection (PostgreSQL counts the whole handshake: a server that
        accepts but never answers fails here).
    :param statement: for one statement to finish (PostgreSQL ``statement_timeout``, MariaDB
        ``max_statement_time``, MySQL ``max_execution_time``).
    :param lock: for a lock another session holds (PostgreSQL ``lock_timeout``, InnoDB
        ``innodb_lock_wait_timeout`` and ``lock_wait_timeout``, SQLite's busy timeout).
    :param keepalive_idle: idle seconds before TCP keepalive probes start; after
        ``keepalive_idle + 3 * 10`` s without an answer the connection is dropped.
    """

    connect: int = 10
    statement: int = 60
    lock: int = 30
    keepalive_idle: int = 30

    @property
    def read(self) -> int:
        """MySQL drivers' client-side read/write timeout: longer than any statement may run."""
        return self.statement + self.connect


DEFAULT_TIMEOUTS = WarehouseTimeouts()


def warehouse_engine(
    conn_id: str = DEFAULT_WAREHOUSE_CONN_ID,
    *,
    get_connection: Callable[[str], Any] | None = None,
    timeouts: WarehouseTimeouts = DEFAULT_TIMEOUTS,
) -> tuple[Engine, str]:
    """
    Return a bounded engine for the warehouse and a one-line description of it for the task log.

    The connection ``conn_id`` must be of a SQL type (its hook a ``DbApiHook``: postgres, mysql,
    sqlite, ...); when it does not exist, an embedded SQLite file in ``$AIRFLOW_HOME`` is used.
    The description never contains a password. Dispose the engine when done.

    :param conn_id: The Airflow connection of the warehouse.
    :param get_connection: The lookup; the Task SDK's by default (tasks). The API server, which has
        no task supervisor, passes the core model's ``Connection.get_connection_from_secrets``.
    :param timeouts: The bounds the engine's connections get.
    """
    from kalshi_provider.version_compat import AirflowNotFoundException, BaseHook

    try:
        connection = (get_connection or BaseHook.get_connection)(conn_id)
    except AirflowNotFoundException:
        return _embedded_engine(conn_id, timeouts)
    engine = _sql_hook_of(connection).get_sqlalchemy_engine()
    bound_engine(engine, timeouts)
    return engine, f"Airflow connection '{conn_id}' ({engine.url.render_as_string(hide_password=True)})"


def _sql_hook_of(connection: Connection) -> Any:
    """The connection's hook if it is a SQL one; anything else is a permanent config error."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from kalshi_provider.version_compat import AirflowException

    what = f"Connection '{connection.conn_id}' has type '{connection.conn_type}'"
    use = (
        "The warehouse needs a SQL connection (postgres, mysql, sqlite, or another type whose "
        "provider gives a DbApiHook): set 'warehouse_conn_id' to one."
    )
    try:
        hook = _task_sdk_connection(connection).get_hook()
    except (AirflowException, ImportError) as err:
        raise WarehouseConnectionError(
            f"{what}, for which no usable hook is installed ({type(err).__name__}). {use} "
            "If it is a SQL database, install its Airflow provider."
        ) from None
    if not isinstance(hook, DbApiHook):
        raise WarehouseConnectionError(f"{what}, which is not a SQL database ({type(hook).__name__}). {use}")
    return hook


def _task_sdk_connection(connection: Any) -> Any:
    """The hook is chosen by the connection's type and reads the connection itself by id, so a Task
    SDK connection of the same id and type picks it: the API server's lookup gives the core model,
    whose ``get_hook`` goes through a registry Airflow 3.3 deprecates."""
    from airflow.sdk import Connection as TaskSdkConnection

    if isinstance(connection, TaskSdkConnection):
        return connection
    return TaskSdkConnection(conn_id=connection.conn_id, conn_type=connection.conn_type)


def embedded_database_path() -> Path:
    """``$AIRFLOW_HOME/kalshi_warehouse.db``, with Airflow's default home ``~/airflow``."""
    home = os.path.expandvars(os.path.expanduser(os.environ.get("AIRFLOW_HOME") or "~/airflow"))
    return Path(home).resolve() / EMBEDDED_DB_FILENAME


def _embedded_engine(conn_id: str, timeouts: WarehouseTimeouts) -> tuple[Engine, str]:
    path = embedded_database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = bound_engine(create_engine(URL.create("sqlite", database=str(path))), timeouts)
    return engine, f"embedded SQLite file {path} (no '{conn_id}' connection found)"


def bound_engine(engine: Engine, timeouts: WarehouseTimeouts = DEFAULT_TIMEOUTS) -> Engine:
    """Give every new connection of ``engine`` the ``timeouts`` its driver understands."""
    driver = engine.dialect.driver
    dialect = engine.dialect.name

    @event.listens_for(engine, "do_connect")
    def _add_bounds(dialect_: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        for name, value in _connect_params(dialect, driver, timeouts).items():
            cparams.setdefault(name, value)
        if dialect == "postgresql" and driver in ("psycopg", "psycopg2"):
            # Server-side bounds in the startup packet: no extra round trip. Ours first, so a
            # setting in the connection's own options wins.
            ours = f"-c statement_timeout={timeouts.statement}s -c lock_timeout={timeouts.lock}s"
            cparams["options"] = f"{ours} {cparams.get('options') or ''}".strip()

    if dialect in ("mysql", "mariadb"):

        @event.listens_for(engine, "connect")
        def _session_bounds(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(_mysql_session_bounds(dbapi_connection, timeouts))
            finally:
                cursor.close()

    return engine


def _connect_params(dialect: str, driver: str, timeouts: WarehouseTimeouts) -> dict[str, Any]:
    if dialect == "postgresql" and driver in ("psycopg", "psycopg2"):
        return {  # libpq's parameters (both drivers pass them on)
            "connect_timeout": timeouts.connect,
            "keepalives": 1,
            "keepalives_idle": timeouts.keepalive_idle,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            # Sent data unacknowledged this long (a peer that vanished mid-write): give up.
            "tcp_user_timeout": (timeouts.keepalive_idle + 30) * 1000,
        }
    if dialect in ("mysql", "mariadb") and driver in ("mysqldb", "pymysql"):
        return {
            "connect_timeout": timeouts.connect,
            "read_timeout": timeouts.read,
            "write_timeout": timeouts.read,
        }
    if dialect in ("mysql", "mariadb") and driver == "mysqlconnector":
        return {"connection_timeout": timeouts.read}
    if dialect == "sqlite":
        return {"timeout": timeouts.lock}  # the busy timeout: how long to wait for another writer
    return {}


def _mysql_session_bounds(dbapi_connection: Any, timeouts: WarehouseTimeouts) -> str:
    server = str(getattr(dbapi_connection, "get_server_info", lambda: "")())
    statement = (
        f"max_statement_time = {timeouts.statement}"  # MariaDB, in seconds
        if "mariadb" in server.lower()
        else f"max_execution_time = {timeouts.statement * 1000}"  # MySQL, in ms, SELECTs only
    )
    return (
        f"SET SESSION innodb_lock_wait_timeout = {timeouts.lock}, "
        f"lock_wait_timeout = {timeouts.lock}, {statement}"
    )
