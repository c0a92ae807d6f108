"""Every default and setting of the pipelines, defined once and imported everywhere else.

The hourly DAG, the quality DAG and the chart in the UI all take their warehouse from
:func:`warehouse_target`, so by default they read and write the same table. A deployment changes
it in one place, Airflow's ``[kalshi]`` config section (or ``AIRFLOW__KALSHI__TABLE`` etc.), which
:mod:`kalshi_provider.config_declaration` declares to Airflow. Import-light: DAG files import this
module at every parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The [kalshi] section's names, defaults and values are declared where Airflow reads a
# distribution's settings (the provider info), and read here.
from kalshi_provider.config_declaration import (
    CONFIG_SECTION,
    DEFAULT_TABLE,
    DEFAULT_WAREHOUSE_CONN_ID,
    MIGRATIONS_AUTO,
    MIGRATIONS_MANUAL,
)

HOURLY_DAG_ID = "kalshi_total_resting_order_value"
QUALITY_DAG_ID = "kalshi_resting_order_value_quality"

DEFAULT_KALSHI_CONN_ID = "kalshi_default"
#: How late after its ``run_after`` a run may still record its hour.
DEFAULT_MAX_LATENESS_MINUTES = 30
#: Points one answer of the chart (its page or its JSON) may hold: a point is one value of one line
#: at one time. Sized for a risk team's largest view, 90 days of 50 accounts with 4 exchange shards
#: each: 50 x (1 total + 1 balance + 4 shards' balance minus resting) x 91 days = 27,300 points at
#: one point a day.
CHART_POINTS_BUDGET = 30_000

#: Table and schema names: a plain SQL identifier, never quoted from untrusted text.
IDENTIFIER_RULE = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
IDENTIFIER = re.compile(IDENTIFIER_RULE)


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


#: Longest ``[kalshi] balance_floors`` read: 500 accounts of a few shards each fit in far less.
MAX_FLOORS_SETTING_LENGTH = 256 * 1024


def balance_floors() -> dict:
    """``[kalshi] balance_floors``: the quality DAG's default floors, checked
    (``quality_rules.parse_balance_floors``); empty for none. Raises ``InvalidFloorsError`` naming
    the setting when it is not such JSON."""
    import json

    from airflow.configuration import conf

    from kalshi_provider.pipelines.quality_rules import InvalidFloorsError, parse_balance_floors

    text = (conf.get(CONFIG_SECTION, "balance_floors", fallback="") or "").strip()
    if not text:
        return {}
    if len(text) > MAX_FLOORS_SETTING_LENGTH:
        raise InvalidFloorsError(
            f"[{CONFIG_SECTION}] balance_floors is {len(text)} characters; "
            f"at most {MAX_FLOORS_SETTING_LENGTH}"
        )
    try:
        value = json.loads(text)  # a number with a fraction stays a float, which the check refuses
    except (ValueError, RecursionError):
        raise InvalidFloorsError(
            f"[{CONFIG_SECTION}] balance_floors is not JSON; write it as "
            '{"kalshi_default": {"0": "25000.00"}}'
        ) from None
    try:
        parse_balance_floors(value)
    except InvalidFloorsError as err:
        raise InvalidFloorsError(f"[{CONFIG_SECTION}] {err}") from None
    return value
