"""Which schema version a deployment's warehouse holds, and bringing it to the head.

Each deployment keeps its revision in ``<table>_ver``. At the head a load asks only that table
(:func:`ensure_current`); otherwise, under the migration lock (``locks.py``): an older revision is
migrated; no version and no tables are created and stamped; unversioned tables (0.2.0's) must pass
``shape.py`` against 0.2.0's or the head's definitions, then are stamped and migrated; an unknown
revision is refused. With ``[kalshi] warehouse_migrations = manual`` a load never changes a table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, and_, exists, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from kalshi_provider.pipelines.settings import DEFAULT_TABLE, MIGRATIONS_AUTO, MIGRATIONS_MANUAL
from kalshi_provider.pipelines.warehouse.engine import DEFAULT_TIMEOUTS
from kalshi_provider.pipelines.warehouse.locks import migration_lock
from kalshi_provider.pipelines.warehouse.migrations import (
    BASELINE,
    HEAD,
    SCRIPT_LOCATION,
    alembic_config,
    release_0_2_0,
    version_table_name,
)
from kalshi_provider.pipelines.warehouse.schema import WarehouseTables, warehouse_tables
from kalshi_provider.pipelines.warehouse.shape import (
    check_existing,
    reflect_tables,
    refuse_forgetful_created,
    refuse_forgetful_schema,
)
from kalshi_provider.pipelines.warehouse.warehouse_errors import WarehouseSchemaError

log = logging.getLogger(__name__)

#: How long a load (or the command) waits for another worker's migration of the same deployment:
#: as long as for any other lock (``WarehouseTimeouts.lock``). SQLite waits its busy timeout.
MIGRATION_WAIT_SECONDS = DEFAULT_TIMEOUTS.lock

CURRENT = "current"  # at the head
BEHIND = "behind"  # at an older revision this code can migrate
UNVERSIONED = "unversioned"  # tables, but no version row (0.2.0, or made by hand)
EMPTY = "empty"  # no tables, no version row
UNKNOWN = "unknown"  # a revision this code does not know: a newer provider's


class WarehouseMigrationRequired(WarehouseSchemaError):
    """The warehouse is behind the code and ``[kalshi] warehouse_migrations`` is ``manual``.

    Permanent: the load fails at once; someone allowed to change the tables runs the migration.
    """


class WarehouseVersionError(WarehouseSchemaError):
    """The version table holds a revision this code does not know, or is not a version table."""


@dataclass(frozen=True)
class WarehouseStatus:
    """What a deployment's warehouse holds, as :func:`warehouse_status` found it.

    :param revision: The version table's revision, or None without one.
    :param state: ``current``, ``behind``, ``unversioned``, ``empty`` or ``unknown``.
    :param pending: The revisions a migration would apply (after stamping, when unversioned).
    :param existing: The deployment's tables that exist (the version table aside).
    """

    table: str
    schema: str | None
    revision: str | None
    state: str
    pending: tuple[str, ...]
    existing: tuple[str, ...]

    @property
    def version_table(self) -> str:
        return version_table_name(self.table)

    @property
    def head(self) -> str:
        return HEAD

    @property
    def current(self) -> bool:
        return self.state == CURRENT

    def describe(self) -> str:
        """One sentence on where the tables stand, for a task log or the command's output."""
        if self.state == CURRENT:
            return f"at the head, revision {HEAD}"
        if self.state == EMPTY:
            return "not created yet: a migration creates them"
        if self.state == UNVERSIONED:
            return (
                f"without a version row ({len(self.existing)} of the tables exist, as release 0.2.0 or a "
                "person made them): a migration checks their shape, records their version and migrates "
                f"them to {HEAD}"
            )
        if self.state == BEHIND:
            pending = ", ".join(self.pending)
            return f"at revision {self.revision}, behind the head {HEAD}: a migration applies {pending}"
        return (
            f"at revision {self.revision}, which this airflow-provider-kalshi does not know (its newest is "
            f"{HEAD}): a newer version migrated them; install that version on every worker"
        )


def _where(table: str, schema: str | None) -> str:
    return f"{schema}.{table}" if schema else table


def ensure_current(
    engine: Engine,
    *,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    migrations: str = MIGRATIONS_AUTO,
    wait_seconds: int = MIGRATION_WAIT_SECONDS,
) -> WarehouseTables:
    """Return the deployment's tables once its warehouse is at the head.

    At the head this costs one query and no reflection. Otherwise ``migrations`` decides:
    ``auto`` migrates (:func:`upgrade_warehouse`), ``manual`` raises
    :class:`WarehouseMigrationRequired`. (A load does not call this first: its first write is
    conditioned on the head, see :func:`head_guard`, and it comes here only when that fails.)

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    :param migrations: ``auto`` or ``manual`` (``[kalshi] warehouse_migrations``).
    :param wait_seconds: How long to wait for another worker's migration.
    """
    catch_up(engine, table_name=table_name, schema=schema, migrations=migrations, wait_seconds=wait_seconds)
    return warehouse_tables(table_name, schema)


def catch_up(
    engine: Engine,
    *,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    migrations: str = MIGRATIONS_AUTO,
    wait_seconds: int = MIGRATION_WAIT_SECONDS,
) -> bool:
    """Bring the warehouse to the head as ``migrations`` allows (see :func:`ensure_current`);
    return whether it was behind (False: it was at the head already, one query)."""
    if migrations not in (MIGRATIONS_AUTO, MIGRATIONS_MANUAL):
        raise WarehouseSchemaError(f"warehouse migrations must be 'auto' or 'manual', got {migrations!r}")
    warehouse_tables(table_name, schema)  # refuses names that are not plain identifiers
    if _quick_revision(engine, table_name, schema) == HEAD:
        return False
    if migrations == MIGRATIONS_MANUAL:
        status = warehouse_status(engine, table_name=table_name, schema=schema)
        if status.current:  # migrated since our look
            return True
        raise WarehouseMigrationRequired(
            f"The warehouse tables of {_where(table_name, schema)} are {status.describe()}. "
            "[kalshi] warehouse_migrations is 'manual', so a load never changes tables: whoever may "
            "change them (the warehouse's DBA) runs the migration, then the task is cleared."
        )
    upgrade_warehouse(engine, table_name=table_name, schema=schema, wait_seconds=wait_seconds)
    return True


class NotAtHead(Exception):
    """Inside a load's transaction: the version table does not hold exactly the head (the load
    rolls back, catches up, and writes again)."""


def version_table(table: str, schema: str | None) -> Table:
    """The deployment's version table (Alembic's, one column ``version_num``)."""
    return Table(
        version_table_name(table), MetaData(schema=schema), Column("version_num", String(32), nullable=False)
    )


def head_guard(version: Table) -> ColumnElement[bool]:
    """True when ``version`` holds exactly the head revision: the condition of a load's first write,
    so a load at the head asks nothing before it writes."""
    return and_(exists().where(version.c.version_num == HEAD), ~exists().where(version.c.version_num != HEAD))


def confirm_head(conn: Connection, version: Table, *also: Any) -> Any:
    """One query: the version row, and ``also`` (scalar subqueries the load needs); raise
    :class:`NotAtHead` unless the version table holds exactly the head. Returns the row."""
    found = conn.execute(select(version.c.version_num, *also)).all()
    if [row[0] for row in found] != [HEAD]:
        raise NotAtHead
    return found[0]


def _quick_revision(engine: Engine, table: str, schema: str | None) -> str | None:
    """The version row in one query, or None (no version table, no row or several, unreadable).

    In a transaction, as every statement: on PostgreSQL the engine's bounds are set per transaction.
    """
    version = version_table(table, schema)
    with engine.connect() as conn:
        try:
            rows = conn.execute(select(version.c.version_num).limit(2)).all()
        except DBAPIError:
            return None  # the slow path finds out why, under the lock
    return rows[0][0] if len(rows) == 1 else None


def warehouse_status(
    engine: Engine, *, table_name: str = DEFAULT_TABLE, schema: str | None = None
) -> WarehouseStatus:
    """Where the deployment's warehouse stands; reads only (the command's ``status``).

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    """
    warehouse_tables(table_name, schema)  # refuses names that are not plain identifiers
    with engine.connect() as conn:
        return _inspect(conn, table_name, schema)[0]


def _inspect(conn: Connection, table: str, schema: str | None) -> tuple[WarehouseStatus, dict[str, Any]]:
    """The status, and the deployment's tables as reflected under 0.2.0's names and the head's (they
    differ since revision 0004 renamed ``…_margin``)."""
    version = version_table(table, schema)
    named = {t.name: t for t in (*release_0_2_0.tables(table, schema), *warehouse_tables(table, schema))}
    found = reflect_tables(conn, [*named.values(), version], schema)
    existing = tuple(sorted(name for name in found if name != version.name))
    revision = None
    if version.name in found:
        if "version_num" not in found[version.name].columns:
            raise WarehouseVersionError(
                f"{_where(version.name, schema)} exists but is not a version table (it has no version_num "
                "column): another application's table has the name this deployment keeps its schema "
                "version under. Set the DAG's 'table' param (or [kalshi] table) to a name not in use."
            )
        heads = conn.execute(select(version.c.version_num).limit(2)).scalars().all()
        if len(heads) > 1:
            raise WarehouseVersionError(f"{_where(version.name, schema)} holds several revisions: {heads}")
        revision = heads[0] if heads else None
    known = _revisions()
    if revision == HEAD:
        state, pending = CURRENT, ()
    elif revision is None:
        state = UNVERSIONED if existing else EMPTY
        pending = known[known.index(BASELINE) + 1 :] if existing else ()
    elif revision in known:
        state, pending = BEHIND, known[known.index(revision) + 1 :]
    else:
        state, pending = UNKNOWN, ()
    return WarehouseStatus(table, schema, revision, state, pending, existing), found


@lru_cache(maxsize=1)
def _revisions() -> tuple[str, ...]:
    """Every revision of the scripts, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(SCRIPT_LOCATION))
    return tuple(reversed([revision.revision for revision in script.walk_revisions()]))


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade_warehouse` did.

    :param before: The status it found (under the lock).
    :param applied: The revisions it ran, oldest first (stamps not included).
    :param created: The tables it created.
    :param stamped: The revision it recorded tables found without a version row at, if any.
    """

    before: WarehouseStatus
    applied: tuple[str, ...]
    created: tuple[str, ...]
    stamped: str | None

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.created or self.stamped)


def upgrade_warehouse(
    engine: Engine,
    *,
    table_name: str = DEFAULT_TABLE,
    schema: str | None = None,
    wait_seconds: int = MIGRATION_WAIT_SECONDS,
) -> Upgrade:
    """Bring the deployment's warehouse to the head under its migration lock (see the module doc).

    On PostgreSQL and SQLite it is one transaction: all of it, or nothing. On MySQL/MariaDB each
    DDL statement commits; every step can run again if one is cut short.

    :param engine: The warehouse, from :func:`~.engine.warehouse_engine`.
    :param table_name: The deployment's table, after which its other tables are named.
    :param schema: The tables' schema; None for the connection's default.
    :param wait_seconds: How long to wait for another worker's migration.
    :raises WarehouseSchemaError: tables that fit no release (nothing is changed).
    :raises WarehouseVersionError: a revision this code does not know.
    :raises WarehouseBusyError: another worker migrated for longer than ``wait_seconds``.
    """
    warehouse_tables(table_name, schema)  # refuses names that are not plain identifiers
    deployment = _where(table_name, schema)
    with migration_lock(engine, deployment, wait_seconds) as conn:
        status, found = _inspect(conn, table_name, schema)
        if status.state == UNKNOWN:
            raise WarehouseVersionError(f"The warehouse tables of {deployment} are {status.describe()}.")
        if status.current:
            return Upgrade(status, (), (), None)
        applied: list[str] = []

        def record(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
            if not step.is_stamp:
                applied.append(step.up_revision_id)

        config = alembic_config(table_name, schema, connection=conn, on_version_apply=record)
        created: tuple[str, ...] = ()
        stamped = None
        if status.state in (EMPTY, UNVERSIONED):
            created, stamped = _adopt(conn, status, found, config)
        if stamped != HEAD:
            from alembic import command

            command.upgrade(config, "head")
    result = Upgrade(status, tuple(applied), created, stamped if status.state == UNVERSIONED else None)
    log.info(
        "Warehouse tables of %s: were %s; created %s, applied %s",
        deployment,
        status.describe(),
        ", ".join(created) or "none",
        ", ".join(result.applied) or "nothing",
    )
    return result


def _adopt(
    conn: Connection, status: WarehouseStatus, found: dict[str, Any], config: Any
) -> tuple[tuple[str, ...], str]:
    """Tables without a version row: check them against the release they fit best, create what
    that release had and they miss, and record that release's revision. Returns (created, stamped)."""
    from alembic import command

    table, schema = status.table, status.schema
    refuse_forgetful_schema(conn, schema)
    head = tuple(warehouse_tables(table, schema))
    if status.state == EMPTY:
        release, revision = head, HEAD
    else:
        baseline = release_0_2_0.tables(table, schema)
        found = {name: tables for name, tables in found.items() if name in status.existing}
        release, revision = min(
            ((baseline, BASELINE), (head, HEAD)), key=lambda candidate: _misfit(candidate[0], found)
        )
        check_existing(conn, release, found, schema)
    missing = [each for each in release if each.name not in status.existing]
    if missing:
        missing[0].metadata.create_all(conn, tables=missing, checkfirst=False)
        refuse_forgetful_created(conn, missing, schema)
    command.stamp(config, revision)
    return tuple(each.name for each in missing), revision


def _misfit(tables: tuple[Table, ...], found: dict[str, Any]) -> tuple[int, int]:
    """How badly the existing tables fit a release: how many of them it does not name (since 0004
    renamed ``…_margin``, a table of one release only), then how many of its columns they lack."""
    named = {table.name for table in tables}
    return sum(name not in named for name in found), _missing_columns(tables, found)


def _missing_columns(tables: tuple[Table, ...], found: dict[str, Any]) -> int:
    """How many of the release's columns the existing tables lack: the release they come from lacks none."""
    return sum(
        column.name not in found[table.name].columns
        for table in tables
        if table.name in found
        for column in table.columns
    )
