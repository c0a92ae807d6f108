"""Floor of the DAG-parse benchmark: a one-task DAG that imports only ``airflow.sdk``."""

from __future__ import annotations

from airflow.sdk import DAG, task

with DAG(dag_id="benchmark_parse_floor", schedule=None):

    @task
    def noop() -> None:
        return None

    noop()
