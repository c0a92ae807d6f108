"""What reflection does not say about existing tables: whether a table outlives its session
(PostgreSQL), and whether its key columns compare text byte for byte (else ``FCM_A`` and ``fcm_a``
are one account). Each engine is asked the way it answers exactly: PostgreSQL's
``pg_collation.collisdeterministic``, MySQL/MariaDB's ``information_schema.COLUMNS.COLLATION_NAME``
(only ``_bin`` compares bytes, inherited defaults included), SQLite by comparing through the
column itself (``NOCASE`` and ``RTRIM`` are its only other built-in collations).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Table, bindparam, text
from sqlalchemy.engine import Connection


@dataclass
class TableFacts:
    """One existing table: its schema, ``p`` (permanent), ``u`` (unlogged) or ``t`` (temporary), and
    its key columns whose collation is not exact, each with what it is."""

    namespace: str | None = None
    persistence: str = "p"
    inexact: dict[str, str] = field(default_factory=dict)


def table_facts(
    conn: Connection, tables: Sequence[Table], keys: Mapping[str, Collection[str]]
) -> dict[str, TableFacts]:
    """Facts about ``tables`` (all existing), by table name, in one query.

    :param keys: Per table name, the key columns it has whose collation to check.
    """
    if not tables:
        return {}
    name = conn.dialect.name
    if name == "postgresql":
        return _postgres(conn, tables, keys)
    if name in ("mysql", "mariadb"):
        return _mysql(conn, tables, keys)
    if name == "sqlite":
        return _sqlite(conn, tables, keys)
    return {table.name: TableFacts() for table in tables}  # another engine: nothing more to ask


def _all_keys(keys: Mapping[str, Collection[str]]) -> list[str]:
    return sorted({column for columns in keys.values() for column in columns})


def _postgres(
    conn: Connection, tables: Sequence[Table], keys: Mapping[str, Collection[str]]
) -> dict[str, TableFacts]:
    # to_regclass resolves each name through the search_path, as the load's statements will.
    names = [conn.dialect.identifier_preparer.format_table(table) for table in tables]
    rows = conn.execute(
        text(
            "SELECT c.relname, n.nspname, c.relpersistence, a.attname, co.collname, co.collisdeterministic "
            "FROM pg_catalog.pg_class AS c "
            "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 "
            "AND NOT a.attisdropped AND a.attname = ANY(CAST(:keys AS text[])) "
            "LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation "
            "WHERE c.oid IN (SELECT to_regclass(name) FROM unnest(CAST(:names AS text[])) AS name)"
        ),
        {"keys": _all_keys(keys), "names": names},
    )
    facts: dict[str, TableFacts] = {}
    for table, namespace, persistence, column, collation, deterministic in rows:
        found = facts.setdefault(table, TableFacts(namespace, persistence))
        if column in keys.get(table, ()) and collation is not None and not deterministic:
            found.inexact[column] = f"the nondeterministic collation {collation}"
    return facts


def _mysql(
    conn: Connection, tables: Sequence[Table], keys: Mapping[str, Collection[str]]
) -> dict[str, TableFacts]:
    schema = tables[0].schema
    query = text(
        "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME IN :tables "
        "AND COLUMN_NAME IN :keys"
    ).bindparams(bindparam("tables", expanding=True), bindparam("keys", expanding=True))
    names = [table.name for table in tables]
    rows = conn.execute(query, {"schema": schema, "tables": names, "keys": _all_keys(keys)})
    facts = {table.name: TableFacts(schema) for table in tables}
    for table, column, collation in rows:
        if column in keys.get(table, ()) and collation is not None and not _binary_mysql_collation(collation):
            facts[table].inexact[column] = f"the collation {collation}" + _mysql_why(collation)
    return facts


def _binary_mysql_collation(collation: str) -> bool:
    name = collation.lower()
    return name == "binary" or name.endswith("_bin")


def _mysql_why(collation: str) -> str:
    name = collation.lower()
    if "_ci" in name or "_ai" in name:
        return " (case- or accent-insensitive)"
    return " (not binary)"


def _sqlite(
    conn: Connection, tables: Sequence[Table], keys: Mapping[str, Collection[str]]
) -> dict[str, TableFacts]:
    """Compare through each column: a row-less ``UNION ALL`` keeps the column's collation for the
    literal row below it, so ``'a' = 'A'`` is true under NOCASE and ``'a' = 'a '`` under RTRIM.
    One derived table per table, joined into one row."""
    preparer = conn.dialect.identifier_preparer
    probed = [(table, list(keys.get(table.name, ()))) for table in tables]
    probed = [(table, columns) for table, columns in probed if columns]
    facts = {table.name: TableFacts() for table in tables}
    if not probed:
        return facts
    probes, sources = [], []
    for number, (table, columns) in enumerate(probed):
        selected = ", ".join(f"{preparer.quote(column)} AS c{index}" for index, column in enumerate(columns))
        literals = ", ".join("'a'" for _ in columns)
        source = preparer.format_table(table)
        sources.append(f"(SELECT {selected} FROM {source} WHERE 0 UNION ALL SELECT {literals}) AS t{number}")
        probes += [f"t{number}.c{index} = 'A', t{number}.c{index} = 'a '" for index in range(len(columns))]
    row = iter(conn.exec_driver_sql(f"SELECT {', '.join(probes)} FROM {' CROSS JOIN '.join(sources)}").one())
    for table, columns in probed:
        for column in columns:
            case_blind, pad_blind = next(row), next(row)
            if case_blind:
                facts[table.name].inexact[column] = "the collation NOCASE (case-insensitive)"
            elif pad_blind:
                facts[table.name].inexact[column] = "the collation RTRIM (trailing spaces ignored)"
    return facts
