"""Every default and setting of the pipelines, defined once and imported everywhere else.

The hourly DAG, the quality DAG and the chart in the UI all take their warehouse from
:func:`warehouse_target`, so by default they read and write the same table. A deployment changes
it in one place, Airflow's ``[kalshi]`` config section (or ``AIRFLOW__KALSHI__TABLE`` etc.), which
:data:`CONFIG` declares to Airflow through the provider info. Import-light: DAG files import this
module at every parse, and Airflow's provider discovery through the provider info.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOURLY_DAG_ID = "kalshi_total_resting_order_value"
QUALITY_DAG_ID = "kalshi_resting_order_value_quality"

DEFAULT_KALSHI_CONN_ID = "kalshi_default"
DEFAULT_WAREHOUSE_CONN_ID = "kalshi_warehouse"
DEFAULT_TABLE = "kalshi_total_resting_order_value"
#: How late after its ``run_after`` a run may still record its hour.
DEFAULT_MAX_LATENESS_MINUTES = 30
#: Points one answer of the chart (its page or its JSON) may hold: a point is one value of one line
#: at one time. Sized for a risk team's largest view, 90 days of 50 accounts with 4 exchange shards
#: each: 50 x (1 total + 1 balance + 4 free margins) x 91 days = 27,300 points at one point a day.
CHART_POINTS_BUDGET = 30_000

#: Table and schema names: a plain SQL identifier, never quoted from untrusted text.
IDENTIFIER_RULE = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
IDENTIFIER = re.compile(IDENTIFIER_RULE)

#: Airflow config section read by :func:`warehouse_target`.
CONFIG_SECTION = "kalshi"

#: ``[kalshi] warehouse_migrations``: a load brings a warehouse behind the code to the head itself
#: (under a database lock, so racing workers migrate once) ...
MIGRATIONS_AUTO = "auto"
#: ... or fails at once, naming the command to run (warehouses that take DDL only from their DBAs).
MIGRATIONS_MANUAL = "manual"


@dataclass(frozen=True)
class WarehouseTarget:
    """Where the hourly rows live: an Airflow SQL connection, a table name and an optional schema."""

    conn_id: str = DEFAULT_WAREHOUSE_CONN_ID
    table: str = DEFAULT_TABLE
    schema: str | None = None


def warehouse_target() -> WarehouseTarget:
    """The deployment's warehouse: ``[kalshi] warehouse_conn_id``, ``table`` and ``schema``, else defaults."""
    from airflow.configuration import conf

    return WarehouseTarget(
        conn_id=conf.get(CONFIG_SECTION, "warehouse_conn_id", fallback=DEFAULT_WAREHOUSE_CONN_ID),
        table=conf.get(CONFIG_SECTION, "table", fallback=DEFAULT_TABLE),
        schema=conf.get(CONFIG_SECTION, "schema", fallback=None) or None,
    )


def warehouse_migrations() -> str:
    """``[kalshi] warehouse_migrations``: ``auto`` (the default) or ``manual``; anything else is refused."""
    from airflow.configuration import conf

    from kalshi_provider.exceptions import KalshiConfigError

    value = conf.get(CONFIG_SECTION, "warehouse_migrations", fallback=MIGRATIONS_AUTO).strip().lower()
    if value not in (MIGRATIONS_AUTO, MIGRATIONS_MANUAL):
        raise KalshiConfigError(
            f"[{CONFIG_SECTION}] warehouse_migrations is {value[:40]!r}; it must be "
            f"'{MIGRATIONS_AUTO}' (a load migrates the warehouse tables itself) or "
            f"'{MIGRATIONS_MANUAL}' (a load fails and names the command to run)"
        )
    return value


def _option(description: str, default: str, example: str, version_added: str) -> dict[str, str]:
    return {
        "description": description,
        "version_added": version_added,
        "type": "string",
        "example": example,
        "default": default,
    }


#: The ``[kalshi]`` section as Airflow's provider info declares a provider's settings (its
#: ``config`` key): ``airflow config list`` and ``get-value`` show it, and its defaults, the
#: constants above, are Airflow's own where a deployment sets nothing. Every option a reader here
#: asks for is declared, and nothing else (tests/pipelines/test_settings.py).
CONFIG: dict[str, dict] = {
    CONFIG_SECTION: {
        "description": "Where the Kalshi pipelines keep their rows: the hourly DAG writes there, and "
        "the quality DAG and the chart in the UI read from there. The DAGs' params of the same names "
        "take these values as their defaults.",
        "options": {
            "warehouse_conn_id": _option(
                "The Airflow connection of the warehouse: any SQL connection whose hook is a "
                "DbApiHook (PostgreSQL, MySQL, Snowflake, ...). Only the default may be missing, and "
                "only with LocalExecutor: then the rows go to the SQLite file "
                "$AIRFLOW_HOME/kalshi_warehouse.db.",
                default=DEFAULT_WAREHOUSE_CONN_ID,
                example="fcm_warehouse",
                version_added="0.2.0",
            ),
            "table": _option(
                "The totals table, whose name also names the other tables (<table>_balance, "
                "<table>_history, ...): a plain SQL identifier of at most 53 characters.",
                default=DEFAULT_TABLE,
                example="fcm_resting_order_value",
                version_added="0.2.0",
            ),
            "schema": _option(
                "The warehouse schema of the tables; empty for the connection's default schema.",
                default="",
                example="analytics",
                version_added="0.2.0",
            ),
            "warehouse_migrations": _option(
                f"'{MIGRATIONS_AUTO}': a load brings warehouse tables an older release made up to "
                f"date itself, under a database lock. '{MIGRATIONS_MANUAL}': it fails at once and "
                "names the command that migrates them, for warehouses that take schema changes "
                "only from their DBAs.",
                default=MIGRATIONS_AUTO,
                example=MIGRATIONS_MANUAL,
                version_added="0.3.0",
            ),
        },
    }
}
