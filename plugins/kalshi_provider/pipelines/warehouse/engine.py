"""Find the warehouse database, an Airflow SQL connection, and bound every wait on it.

Each engine bounds connecting, statements, locks, idle transactions and dead peers: in the driver's
connect arguments, and on the server per session (MySQL/MariaDB) or per transaction (PostgreSQL,
as ``SET LOCAL``, which PgBouncer passes on where it refuses the ``options`` startup parameter); a
value the connection sets itself is kept. Only the default connection may be absent, and only with
local executors: then the embedded SQLite file stands in (``docs/adr/0004-embedded-sqlite-default.md``).
A warehouse that would forget what is written (in memory, a relative SQLite path) is refused.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

from kalshi_provider.pipelines.settings import DEFAULT_WAREHOUSE_CONN_ID
from kalshi_provider.pipelines.warehouse.warehouse_errors import (
    VolatileWarehouseError,
    WarehouseConnectionError,
)

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
    :param idle_in_transaction: for a transaction left open with nothing running (a worker that hung
        mid-load): PostgreSQL ends the session, which frees the locks it held
        (``idle_in_transaction_session_timeout``).
    :param keepalive_idle: idle seconds before TCP keepalive probes start; after
        ``keepalive_idle + 3 * 10`` s without an answer the connection is dropped.
    """

    connect: int = 10
    statement: int = 60
    lock: int = 30
    idle_in_transaction: int = 60
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
    sqlite, ...). When it does not exist, the embedded SQLite file in ``$AIRFLOW_HOME`` stands in
    for it only if ``conn_id`` is the default one and every executor Airflow is configured with
    runs tasks on this machine (LocalExecutor); any other missing connection is a
    :class:`WarehouseConnectionError`. A SQLite database that forgets (in memory, or a relative
    path) is a :class:`VolatileWarehouseError`. The description never contains a password. Dispose
    the engine when done.

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
    hook = _sql_hook_of(connection)
    _refuse_forgetful_sqlite(_url_of(hook), conn_id)  # before an engine is made for such a URL
    engine = bound_engine(_engine_of(hook), timeouts)
    try:
        _refuse_forgetful_sqlite(engine.url, conn_id, engine)
    except BaseException:
        engine.dispose()
        raise
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


def _engine_of(hook: Any) -> Engine:
    """The hook's engine, made with :func:`engine_options` for its dialect (an engine is only
    configured when made; making one connects nothing)."""
    engine = hook.get_sqlalchemy_engine()
    options = engine_options(engine.url)
    return hook.get_sqlalchemy_engine(engine_kwargs=options) if options else engine


def engine_options(url: str | URL) -> dict[str, Any]:
    """``create_engine`` arguments for the warehouse at ``url``: they spare a load task round trips.

    - ``use_native_hstore=False`` (psycopg, psycopg2): no hstore type lookup at the first connect
      (three round trips); no warehouse column is an hstore.
    - ``pool_reset_on_return=None`` (SQLAlchemy 2): every use of a connection there runs in a
      transaction that the connection itself commits or rolls back before it is returned, so the
      pool's own ROLLBACK is one round trip for nothing (MySQLdb sends it even when idle). Not on
      SQLAlchemy 1.4 (Airflow 3.0), whose connections may return with an implicit transaction open.
    """
    options: dict[str, Any] = {}
    url = make_url(url)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2"):
        options["use_native_hstore"] = False
    if int(sqlalchemy.__version__.split(".")[0]) >= 2:
        options["pool_reset_on_return"] = None
    return options


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
    """The embedded file, where it is the warehouse everyone reads; else why it cannot be."""
    if conn_id != DEFAULT_WAREHOUSE_CONN_ID:
        raise WarehouseConnectionError(
            f"No Airflow connection '{conn_id}' exists, so nothing was written: the warehouse is "
            f"the connection 'warehouse_conn_id' names. {_how_to_create(conn_id)} Or set "
            f"'warehouse_conn_id' to a connection that exists. (Only the default connection "
            f"'{DEFAULT_WAREHOUSE_CONN_ID}' may be absent: then, with LocalExecutor, the rows go to "
            f"the embedded SQLite file {embedded_database_path()}.)"
        )
    if not tasks_run_on_this_machine():
        executor = configured_executor()
        raise WarehouseConnectionError(
            f"No Airflow connection '{conn_id}' exists, so nothing was written. Without it the rows "
            f"would go to the embedded SQLite file {embedded_database_path()}, which is only the "
            "warehouse when tasks run on the machine that also serves the chart (LocalExecutor): "
            f"with the executor '{executor}' every worker would write a file of its own and the "
            f"chart would read another. {_how_to_create(conn_id)}"
        )
    path = embedded_database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    url = URL.create("sqlite", database=str(path))
    engine = bound_engine(create_engine(url, **engine_options(url)), timeouts)
    return engine, f"embedded SQLite file {path} (no '{conn_id}' connection found)"


def _how_to_create(conn_id: str) -> str:
    example = (
        '{"conn_type": "postgres", "host": "db.internal", "port": 5432, "login": "kalshi", '
        '"password": "...", "schema": "warehouse"}'
    )
    return (
        f"Create it where the workers and the API server find connections: `airflow connections "
        f"add {conn_id} --conn-json '{example}'`, or the same JSON in the environment variable "
        f"AIRFLOW_CONN_{conn_id.upper()}."
    )


def configured_executor() -> str:
    """Airflow's ``[core] executor`` setting, as configured (for messages)."""
    from airflow.configuration import conf

    return conf.get("core", "executor", fallback="") or ""


def tasks_run_on_this_machine() -> bool:
    """Whether every executor Airflow is configured with runs tasks on the machine it runs on.

    Airflow's own test (``airflow standalone`` asks it too): the executor class's ``is_local``, true
    for LocalExecutor. A configuration that cannot be read, or an executor that cannot be imported,
    counts as remote. ``airflow dags test`` runs tasks in its own process, which reads the file
    the chart reads when this is true.
    """
    try:
        from airflow.executors.executor_loader import ExecutorLoader

        names = ExecutorLoader.get_executor_names()
        return bool(names) and all(_is_local_executor(name.module_path) for name in names)
    except Exception:  # noqa: BLE001 - not knowing where tasks run is not knowing they run here
        return False


def _is_local_executor(module_path: str) -> bool:
    module, _, class_name = module_path.rpartition(".")
    executor = getattr(importlib.import_module(module), class_name, None)
    return getattr(executor, "is_local", False) is True


def _url_of(hook: Any) -> URL | None:
    """The URL the hook would make its engine for, or None if it cannot say without one."""
    try:
        return make_url(hook.get_uri())
    except Exception:  # a third-party hook's URI; the engine's own URL is checked after
        return None


def _refuse_forgetful_sqlite(url: URL | None, conn_id: str, engine: Engine | None = None) -> None:
    """A SQLite warehouse is a file named by its absolute path. Spellings of "in memory" the name
    shows (empty, ``:memory:``, ``mode=memory``, the ``memdb`` VFS) are refused before an engine
    is made, and so is a relative path (before SQLite creates that file); any other the database
    itself reveals, given the ``engine``: ``PRAGMA database_list`` names no file for it."""
    if url is None or url.get_backend_name() != "sqlite":
        return
    database = url.database or ""
    as_uri = str(url.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:")
    path = database[len("file:") :] if as_uri else database
    memdb = as_uri and str(url.query.get("vfs", "")).lower() == "memdb"
    in_memory = (
        memdb or path in ("", ":memory:") or (as_uri and str(url.query.get("mode", "")).lower() == "memory")
    )
    query = "&".join(f"{name}={value}" for name, value in sorted(url.query.items()))
    shown = repr(database + (f"?{query}" if query else ""))
    if not in_memory and not os.path.isabs(path):
        raise VolatileWarehouseError(
            f"Connection '{conn_id}' names its SQLite file by a relative path ({shown}): each "
            "process would open it relative to the folder it happens to run in, so rows would "
            "scatter over files that later runs and the chart do not read. Set the connection's "
            "host to an absolute path, e.g. /var/lib/airflow/kalshi_warehouse.db."
        )
    if not in_memory and engine is not None:
        with engine.connect() as conn:
            files = {row[1]: row[2] for row in conn.exec_driver_sql("PRAGMA database_list")}
        in_memory = not files.get("main")
    if in_memory:
        raise VolatileWarehouseError(
            f"Connection '{conn_id}' opens a SQLite database held in memory ({shown}): the task "
            "would log that it wrote the rows, and they would be gone when it ends; no later run "
            "and no chart would see them. Set the connection's host to the absolute path of a "
            "database file, e.g. /var/lib/airflow/kalshi_warehouse.db, on a disk every task and "
            "the API server share."
        )


def bound_engine(engine: Engine, timeouts: WarehouseTimeouts = DEFAULT_TIMEOUTS) -> Engine:
    """Give every new connection of ``engine`` the ``timeouts`` its driver understands.

    :param engine: The warehouse engine; returned, with the bounds added as it connects.
    :param timeouts: The bounds; a value the connection's own settings give is kept.
    """
    driver = engine.dialect.driver
    dialect = engine.dialect.name

    @event.listens_for(engine, "do_connect")
    def _add_bounds(dialect_: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        for name, value in _connect_params(dialect, driver, timeouts).items():
            cparams.setdefault(name, value)
        if dialect == "postgresql":
            record.info[_OWN_SETTINGS] = _settings_named_in(str(cparams.get("options") or ""))

    if dialect == "postgresql" and driver in ("psycopg", "psycopg2"):

        @event.listens_for(engine, "begin")
        def _transaction_bounds(conn: Any) -> None:
            own = conn.connection.info.get(_OWN_SETTINGS, frozenset())
            statement = _postgres_transaction_bounds(timeouts, own)
            if statement:
                cursor = conn.connection.dbapi_connection.cursor()
                try:
                    cursor.execute(statement)
                finally:
                    cursor.close()

    if dialect in ("mysql", "mariadb"):

        @event.listens_for(engine, "connect")
        def _session_bounds(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(_mysql_session_bounds(dbapi_connection, timeouts))
            finally:
                cursor.close()

    return engine


#: ``record.info`` key: the server settings a connection's own ``options`` give (they win).
_OWN_SETTINGS = "kalshi_own_settings"
#: ``-c name=value`` or ``--name=value`` in libpq's ``options``.
_OPTION_NAME = re.compile(r"(?:-c\s*|--)([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def _settings_named_in(options: str) -> frozenset[str]:
    return frozenset(name.lower() for name in _OPTION_NAME.findall(options))


def _postgres_transaction_bounds(timeouts: WarehouseTimeouts, own: frozenset[str]) -> str:
    """One statement setting the server's bounds for this transaction only (``set_config(...,
    true)`` is ``SET LOCAL``): it ends with the transaction, so through a transaction pooler it never
    reaches a session another client gets. Settings the connection chose itself are left alone."""
    bounds = {
        "statement_timeout": timeouts.statement,
        "lock_timeout": timeouts.lock,
        "idle_in_transaction_session_timeout": timeouts.idle_in_transaction,
    }
    calls = [
        f"set_config('{name}', '{int(seconds)}s', true)"
        for name, seconds in bounds.items()
        if name not in own
    ]
    return f"SELECT {', '.join(calls)}" if calls else ""


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
        } | _no_server_side_prepare(driver)
    if dialect in ("mysql", "mariadb") and driver in ("mysqldb", "pymysql"):
        return {
            "connect_timeout": timeouts.connect,
            "read_timeout": timeouts.read,
            "write_timeout": timeouts.read,
        } | _autocommit_in_session_bounds(driver)
    if dialect in ("mysql", "mariadb") and driver == "mysqlconnector":
        return {"connection_timeout": timeouts.read}
    if dialect == "sqlite":
        return {"timeout": timeouts.lock}  # the busy timeout: how long to wait for another writer
    return {}


def _no_server_side_prepare(driver: str) -> dict[str, Any]:
    """psycopg 3 prepares a statement on the server once it has run 5 times on a connection; a
    transaction pooler (PgBouncer before 1.21) gives the next transaction another server
    connection, where that statement does not exist. psycopg2 never prepares."""
    return {"prepare_threshold": None} if driver == "psycopg" else {}


def _autocommit_in_session_bounds(driver: str) -> dict[str, Any]:
    """MySQLdb sends ``SET autocommit=0`` as a statement of its own when it connects; left unset
    (its documented ``None``), the session bounds below switch autocommit off in their statement:
    one round trip less, and still before any transaction of SQLAlchemy's (only the dialect's
    first look at the server, which reads, runs before)."""
    return {"autocommit": None} if driver == "mysqldb" else {}


def _mysql_session_bounds(dbapi_connection: Any, timeouts: WarehouseTimeouts) -> str:
    server = str(getattr(dbapi_connection, "get_server_info", lambda: "")())
    statement = (
        f"max_statement_time = {timeouts.statement}"  # MariaDB, in seconds
        if "mariadb" in server.lower()
        else f"max_execution_time = {timeouts.statement * 1000}"  # MySQL, in ms, SELECTs only
    )
    return (
        f"SET SESSION autocommit = 0, innodb_lock_wait_timeout = {timeouts.lock}, "
        f"lock_wait_timeout = {timeouts.lock}, {statement}"
    )
