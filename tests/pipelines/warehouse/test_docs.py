"""docs/tables.md documents every table and column the code writes (the one place they are)."""

from __future__ import annotations

import re
from pathlib import Path

from kalshi_provider.pipelines.settings import DEFAULT_TABLE
from kalshi_provider.pipelines.warehouse import warehouse_tables
from kalshi_provider.pipelines.warehouse.migrations import version_table_name

DOC = Path(__file__).resolve().parents[3] / "docs" / "tables.md"


def _sections() -> dict[str, str]:
    """The page's sections by the table named in their heading (``…_breakdown``, ``…``, ...)."""
    parts = re.split(r"^## `(…[a-z_]*)`.*$", DOC.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_table_has_a_section_naming_each_of_its_columns():
    sections = _sections()
    tables = [*warehouse_tables(), version_table_name(DEFAULT_TABLE)]
    names = [table if isinstance(table, str) else table.name for table in tables]
    assert sorted(sections) == sorted("…" + name[len(DEFAULT_TABLE) :] for name in names)
    missing = [
        f"{table.name}.{column.name}"
        for table in warehouse_tables()
        for column in table.columns
        if f"`{column.name}`" not in sections["…" + table.name[len(DEFAULT_TABLE) :]]
    ]
    assert missing == []
