"""Alembic's environment for the warehouse: ``alembic.command`` runs it; nothing imports it.

Online, the caller passes the connection (already locked, see ``locks.py``) and its transaction:
Alembic joins it instead of opening its own. Offline (SQL for a DBA) it needs only the dialect.
"""

from __future__ import annotations

from alembic import context

from kalshi_provider.pipelines.warehouse.migrations import version_table_name

_attributes = context.config.attributes
_options = {
    "version_table": version_table_name(_attributes["kalshi_table"]),
    "version_table_schema": _attributes.get("kalshi_schema"),
    "on_version_apply": _attributes.get("on_version_apply"),
}

if context.is_offline_mode():
    context.configure(dialect_name=_attributes["dialect_name"], literal_binds=True, **_options)
else:
    context.configure(connection=_attributes["connection"], **_options)

with context.begin_transaction():
    context.run_migrations()
