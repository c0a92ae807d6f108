"""The ``[kalshi]`` section of Airflow's config: its options, their defaults and allowed values.

Airflow takes a distribution's settings only from its provider info (the ``config`` key), so they
are declared here, as data, for ``airflow config list`` and ``get-value`` and so that their
defaults apply where a deployment sets nothing. The pipelines built on the provider read them
(``kalshi_provider.pipelines.settings``); nothing here imports them.
"""

from __future__ import annotations

CONFIG_SECTION = "kalshi"

DEFAULT_WAREHOUSE_CONN_ID = "kalshi_warehouse"
DEFAULT_TABLE = "kalshi_total_resting_order_value"
#: ``warehouse_migrations``: a load brings a warehouse behind the code to the head itself (under a
#: database lock, so racing workers migrate once) ...
MIGRATIONS_AUTO = "auto"
#: ... or fails at once, naming the command to run (warehouses that take DDL only from their DBAs).
MIGRATIONS_MANUAL = "manual"


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
#: constants above, are Airflow's own where a deployment sets nothing. Every option the pipelines'
#: settings ask for is declared, and nothing else (tests/pipelines/test_settings.py).
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
            "balance_floors": _option(
                "Floors on the available balance per account and exchange shard, in dollars, as "
                "JSON: the quality DAG alerts on an hour whose balance on a shard is below its floor "
                "(docs/quality-checks.md). The DAG's balance_floors param takes it as its default; "
                "empty for none.",
                default="",
                example='{"kalshi_default": {"0": "25000.00"}}',
                version_added="0.3.0",
            ),
        },
    }
}
