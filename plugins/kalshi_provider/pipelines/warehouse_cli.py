"""The warehouse's command: where its schema stands (``status``), and bringing it to the head (``migrate``).

Airflow 3.2+ run it as ``airflow kalshi-warehouse`` (the provider info's ``cli`` key); every line,
3.0 and 3.1 included, as the console script ``kalshi-warehouse`` (or ``python -m`` this module).
Both default to the ``[kalshi]`` settings and find the connection as the API server does. Airflow
3.2+ imports this module for every ``airflow`` command, so its top imports nothing heavy.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from collections.abc import Callable
from typing import Any

#: The command group's name (``airflow kalshi-warehouse ...``) and the console script's.
COMMAND = "kalshi-warehouse"
_ARGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--conn-id",),
        {"help": "the warehouse's Airflow connection (default: [kalshi] warehouse_conn_id)"},
    ),
    (("--table",), {"help": "the deployment's table name (default: [kalshi] table)"}),
    (("--schema",), {"help": "the tables' schema (default: [kalshi] schema, else the connection's own)"}),
)
_STATUS_HELP = "Show which schema revision the warehouse tables hold (exit 1 unless at the head)"
_MIGRATE_HELP = "Bring the warehouse tables to the head: create, adopt 0.2.0's tables, or migrate"


def get_cli_commands() -> list:
    """The commands Airflow 3.2+ adds to its CLI (the provider info's ``cli`` key names this)."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    args = tuple(Arg(flags, **options) for flags, options in _ARGS)
    return [
        GroupCommand(
            name=COMMAND,
            help="The Kalshi warehouse tables' schema version",
            subcommands=(
                ActionCommand("status", _STATUS_HELP, lazy_load_command(f"{__name__}.status"), args),
                ActionCommand("migrate", _MIGRATE_HELP, lazy_load_command(f"{__name__}.migrate"), args),
            ),
        )
    ]


def migrate_command(conn_id: str, table: str, schema: str | None) -> str:
    """The exact command that migrates this warehouse, for the Airflow line that runs it."""
    from kalshi_provider.version_compat import AIRFLOW_V_3_2_PLUS

    words = ["airflow", COMMAND] if AIRFLOW_V_3_2_PLUS else [COMMAND]
    words += ["migrate", "--conn-id", conn_id, "--table", table]
    if schema:
        words += ["--schema", schema]
    return shlex.join(words)


def _reported(command: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    """A refusal written for its reader (a table that does not fit, a busy lock) is printed as it
    is, with exit status 1, not as a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> None:
        from kalshi_provider.exceptions import KalshiError

        try:
            command(args)
        except KalshiError as err:
            print(f"{COMMAND} {command.__name__}: {err}", file=sys.stderr)
            raise SystemExit(1) from None

    return run


@_reported
def status(args: argparse.Namespace) -> None:
    """``status``: print where the tables stand; exit 1 unless they are at the head."""
    from kalshi_provider.pipelines.warehouse.versioning import warehouse_status

    target = _target(args)
    engine = _engine(target)
    try:
        found = warehouse_status(engine, table_name=target.table, schema=target.schema)
    finally:
        engine.dispose()
    print(f"Version table: {found.version_table}")
    print(f"Revision: {found.revision or 'none'} (head: {found.head})")
    print(f"State: {found.state}: the tables are {found.describe()}")
    if not found.current:
        raise SystemExit(1)


@_reported
def migrate(args: argparse.Namespace) -> None:
    """``migrate``: bring the tables to the head, under the migration lock loads also take."""
    from kalshi_provider.pipelines.warehouse.versioning import upgrade_warehouse

    target = _target(args)
    engine = _engine(target)
    try:
        done = upgrade_warehouse(engine, table_name=target.table, schema=target.schema)
    finally:
        engine.dispose()
    if not done.changed:
        print(f"Nothing to do: the tables are {done.before.describe()}")
        return
    print(f"The tables were {done.before.describe()}.")
    if done.created:
        print(f"Created: {', '.join(done.created)}")
    if done.stamped:
        print(f"Recorded the tables found as revision {done.stamped}")
    if done.applied:
        print(f"Applied: {', '.join(done.applied)}")
    print(f"Now at the head, revision {done.before.head}.")


def _target(args: argparse.Namespace) -> Any:
    from kalshi_provider.pipelines.settings import WarehouseTarget, warehouse_target

    default = warehouse_target()
    return WarehouseTarget(
        conn_id=args.conn_id or default.conn_id,
        table=args.table or default.table,
        schema=args.schema or default.schema,
    )


def _engine(target: Any) -> Any:
    """The warehouse's engine, found as the API server finds connections (this is no task)."""
    from airflow.models.connection import Connection

    from kalshi_provider.pipelines.warehouse import warehouse_engine

    lookup = Connection.get_connection_from_secrets
    engine, description = warehouse_engine(target.conn_id, get_connection=lookup)
    where = f"{target.schema}.{target.table}" if target.schema else target.table
    print(f"Warehouse: {description}, tables {where}")
    return engine


def main(argv: list[str] | None = None) -> int:
    """The console script ``kalshi-warehouse``: the same command, for every Airflow line."""
    parser = argparse.ArgumentParser(prog=COMMAND, description="The Kalshi warehouse tables' schema version")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, func in (("status", _STATUS_HELP, status), ("migrate", _MIGRATE_HELP, migrate)):
        command = commands.add_parser(name, help=help_text, description=help_text)
        for flags, options in _ARGS:
            command.add_argument(*flags, **options)
        command.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
