"""The fault matrix's shared DAG run, made once per test session and used by two test modules.

The fault matrix (tests/e2e/reliability) checks every ``batch`` row of it; the secret-leak sweep
(tests/security) searches everything it left behind for key material. Keeping one run for both
saves a few minutes of Airflow; whichever module asks first makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.reliability.harness import Batch, CaseOutcome, cap_retry_delay
from tests.e2e.reliability.matrix import CASES
from tests.fixtures.airflow import AirflowHome, sqlite_warehouse

BATCH_CASES = tuple(case for case in CASES if case.group == "batch")


@dataclass
class MatrixRun:
    home: AirflowHome
    batch: Batch
    result: Any
    #: case id -> what that case's account ended as
    outcomes: dict[str, CaseOutcome]


_RUNS: dict[str, MatrixRun] = {}


def matrix_run_once(request: pytest.FixtureRequest) -> MatrixRun:
    if "run" not in _RUNS:
        template = request.getfixturevalue("migrated_airflow_home")
        workdir = request.getfixturevalue("tmp_path_factory").mktemp("fault-matrix")
        home = cap_retry_delay(template.copy(workdir / "airflow"))
        batch = Batch(home, workdir)
        warehouse = sqlite_warehouse(home, workdir / "warehouse.db")
        request.config.add_cleanup(warehouse.dispose)
        request.config.add_cleanup(batch.close)
        for case in BATCH_CASES:
            batch.add(case)
        result, outcomes = batch.run(warehouse)
        by_case = {outcome.run.case.id: outcome for outcome in outcomes.values()}
        _RUNS["run"] = MatrixRun(home, batch, result, by_case)
    return _RUNS["run"]
