"""Test-wide setup: a throwaway AIRFLOW_HOME before anything imports Airflow, and shared fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Airflow reads its home and config at import time; never let tests touch ~/airflow.
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="kalshi-tests-airflow-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.postgres",
    "tests.fixtures.mariadb",
    "tests.fixtures.connections",
    "tests.fixtures.airflow",
    "tests.fixtures.stack",
]
