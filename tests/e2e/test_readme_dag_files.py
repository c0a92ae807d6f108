"""The documented DAG files, copied verbatim into a DAG folder, are what Airflow's DAG processor loads.

A DAG file is a python block of the README or a docs/ page whose first line names it:
``# <your DAG folder>/NAME.py``.
Airflow's DAG processor runs once over a folder of them (``airflow dag-processor --num-runs 1``)
with its default settings, ``[core] dag_discovery_safe_mode`` on, and the test reads what it
recorded in the metadata DB: the DAGs and the import errors. A file that safe mode skips leaves
neither, which is why the control below matters.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.airflow import REPO, AirflowHome
from tests.fixtures.docs import code_blocks

pytestmark = pytest.mark.slow

MARKER = re.compile(r"# <your DAG folder>/(\w+\.py)")
FACTORIES = ("hourly_dag(", "quality_dag(")


def readme_dag_files() -> list[tuple[str, str]]:
    """(file name, whole text) of every DAG file the README and the docs/ pages show, in order (the
    README first), marker line included."""
    files = []
    for block in code_blocks("python"):
        marker = MARKER.fullmatch(block.partition("\n")[0])
        if marker:
            files.append((marker.group(1), block))
        else:  # a block that builds a DAG must say which file it is, or it escapes this check
            assert not any(factory in block for factory in FACTORIES), block
    return files


def parse_like_the_dag_processor(template: AirflowHome, folder: Path) -> tuple[list[str], dict[str, str]]:
    """The DAG ids and import errors (file name -> traceback) the DAG processor records for ``folder``,
    in a fresh AIRFLOW_HOME made from the migrated ``template``."""
    airflow_home = template.copy(folder.with_name(folder.name + "-home"), dags_folder=folder)
    assert "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE" not in airflow_home.env  # Airflow's default
    done = airflow_home.airflow("dag-processor", "--num-runs", "1", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with sqlite3.connect(airflow_home.path / "airflow.db") as db:
        dag_ids = sorted(row[0] for row in db.execute("SELECT dag_id FROM dag"))
        errors = dict(db.execute("SELECT filename, stacktrace FROM import_error"))
    return dag_ids, errors


def test_every_readme_dag_file_loads_under_the_default_settings(migrated_airflow_home, tmp_path):
    files = readme_dag_files()
    # The README's install section's two files, then the quality DAG with notifiers (same file name)
    # from docs/dags-and-settings.md, and with balance floors from docs/quality-checks.md.
    assert [name for name, _ in files] == [
        "kalshi_total_resting_order_value.py",
        "kalshi_resting_order_value_quality.py",
        "kalshi_resting_order_value_quality.py",
        "kalshi_resting_order_value_quality.py",
    ]
    # One folder per version of a file name: the first folder is the install section's pair.
    folders: dict[int, dict[str, str]] = {}
    seen: Counter[str] = Counter()
    for name, text in files:
        folders.setdefault(seen[name], {})[name] = text
        seen[name] += 1
    for index, contents in folders.items():
        folder = tmp_path / f"dags-{index}"
        folder.mkdir()
        for name, text in contents.items():
            (folder / name).write_text(text)
        dag_ids, errors = parse_like_the_dag_processor(migrated_airflow_home, folder)
        assert errors == {}
        assert dag_ids == sorted(Path(name).stem for name in contents)  # each file's DAG id is its name


def test_the_repositorys_dag_folder_holds_the_readmes_lines():
    """One source of truth: ``dags/`` is the install section's files, marker line aside."""
    first_of_each = dict(reversed(readme_dag_files()))  # the first block of each name wins
    in_repo = {path.name: path.read_text() for path in (REPO / "dags").glob("*.py")}
    assert set(in_repo) == set(first_of_each)
    for name, text in first_of_each.items():
        assert in_repo[name] == text.partition("\n")[2], name


def test_control_a_dag_file_without_the_word_airflow_is_skipped_silently(migrated_airflow_home, tmp_path):
    """What the README's files looked like before: the check above would have failed on them."""
    [(name, text)] = readme_dag_files()[:1]
    without = "\n".join(line for line in text.splitlines() if "airflow" not in line.lower()) + "\n"
    assert "hourly_dag()" in without and "dag" in without.lower()
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / name).write_text(without)
    assert parse_like_the_dag_processor(migrated_airflow_home, folder) == ([], {})
