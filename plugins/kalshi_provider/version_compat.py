"""Which Airflow 3 line is running, and the few names whose home moved between 3.0 and 3.3.

Airflow's own providers keep such a file (common-compat asks them to copy its flags rather than
import another provider's); common-compat's ``sdk`` re-exports arrived in 1.8.0, after 3.0's
release, so the imports here are what 3.0-era providers do. Import-light: DAG files reach it.
"""

from __future__ import annotations


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    from airflow import __version__
    from packaging.version import Version

    airflow_version = Version(__version__)
    return airflow_version.major, airflow_version.minor, airflow_version.micro


AIRFLOW_V_3_1_PLUS: bool = get_base_airflow_version_tuple() >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS: bool = get_base_airflow_version_tuple() >= (3, 2, 0)

# BaseHook joined the Task SDK in 3.1 (3.0 has only the core class, which warns from 3.1 on).
if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
else:
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

# The task exceptions moved to airflow.sdk.exceptions in 3.2; the old names warn there. Before
# 3.2 the task runner catches the airflow.exceptions classes, which are different classes.
if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )
else:
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )

# DAG(allowed_run_types=...) arrived in 3.2: the Task SDK's run types, by value (what the argument
# takes), come from its API models, already imported by the time a DAG file is parsed. None before.
if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.api.datamodels._generated import DagRunType as _DagRunType

    DAG_RUN_TYPES: tuple[str, ...] | None = tuple(run_type.value for run_type in _DagRunType)
else:
    DAG_RUN_TYPES = None

__all__ = [
    "DAG_RUN_TYPES",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "BaseHook",
]
