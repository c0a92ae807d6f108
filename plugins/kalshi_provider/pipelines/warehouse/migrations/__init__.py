"""The warehouse's Alembic migrations: one script directory for every deployment.

A deployment is one ``table`` (and schema), its tables and its version table ``<table>_ver`` named
after it, so several can share a database. Table, schema and connection reach ``env.py`` through the
Alembic config's attributes (``kalshi_table``, ``kalshi_schema``, ``connection``), as Airflow's FAB
provider passes its own; :func:`alembic_config` builds the config in code (no ``alembic.ini``).
``0001_v0_2_0`` is release 0.2.0's tables (``release_0_2_0.py``); later revisions lead to ``schema.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent
#: 0.2.0's schema: what tables found without a version row are stamped at, once they pass its check.
BASELINE = "0001_v0_2_0"
#: The newest revision, the schema ``schema.py`` defines (a test checks it is the scripts' head).
HEAD = "0005_subaccounts"
#: Appended to the ``table`` param: at most 6 characters, since Alembic names the version table's
#: primary key ``<version table>_pkc`` and a 53-character table name must leave it 63 characters.
VERSION_SUFFIX = "_ver"


def version_table_name(table: str) -> str:
    """The deployment's version table (in its schema)."""
    return table + VERSION_SUFFIX


def alembic_config(table: str, schema: str | None, **attributes: Any) -> Config:
    """An Alembic config for the deployment ``table`` (a checked identifier) in ``schema``.

    :param attributes: more for ``env.py``: ``connection`` (online), ``dialect_name`` (offline
        SQL), ``on_version_apply`` (called after each step, as Alembic's option of that name).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.attributes.update(kalshi_table=table, kalshi_schema=schema, **attributes)
    return config


def deployment() -> tuple[str, str | None]:
    """Inside a revision: the table name and schema it migrates."""
    from alembic import context

    attributes = context.config.attributes
    return attributes["kalshi_table"], attributes.get("kalshi_schema")
