"""An auth manager for the chart's tests: Airflow's simple one, where what each user may read is set
per DAG, as FAB's DAG-level roles set it in a deployment. Airflow itself lists a user's readable
DAGs from it (``get_authorized_dag_ids`` asks ``is_authorized_dag`` about every DAG it knows)."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID

#: The second desk's DAG, built by the same factory under another id.
DESK_B_DAG_ID = "kalshi_desk_b"
#: User name -> the DAGs they may read.
READS = {"desk_a": {HOURLY_DAG_ID}, "desk_b": {DESK_B_DAG_ID}, "both": {HOURLY_DAG_ID, DESK_B_DAG_ID}}


class DagScopedAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if details is not None and details.id is not None:
            return method == "GET" and details.id in READS.get(user.get_name(), set())
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
