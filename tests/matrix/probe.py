"""Runs inside one Airflow line's venv (its own Python, the installed wheel, no repository on the path).

Asks that Airflow, in one process, what a user's deployment would show: the DAG folder as its
DagBag parses it, the schedules the dag-processor stores, the connection form the UI receives,
and the chart plugin's answers to an anonymous caller, a reader of every DAG, readers of one DAG
each (two DAGs wrote to the warehouse) and a user who may read none.
Prints one JSON object; the test module asserts on it.

Usage: python probe.py DAG_FOLDER
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

HOURLY = "kalshi_total_resting_order_value"
QUALITY = "kalshi_resting_order_value_quality"
OUTSIDER = "outsider"
#: User name -> the only DAG they may read (the others of ``OneReaderAuthManager`` read them all).
READS_ONE = {"hourly_reader": HOURLY, "quality_reader": QUALITY}
#: Accounts the probe writes itself, beside the hourly DAG's: one by the quality DAG's id (a second
#: writer), one without a DAG id (rows written before DAG ids were recorded).
SECOND_WRITER, UNRECORDED = "kalshi_desk_b", "kalshi_legacy"

#: (method, dag id, user) of every DAG access question the chart plugin asked.
ACCESS_QUESTIONS: list[tuple[str, str | None, str]] = []


def dag_folder(path: str) -> dict[str, Any]:
    from kalshi_provider.version_compat import AIRFLOW_V_3_2_PLUS

    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    try:  # 3.2 split the serializer (DagSerialization) from the scheduler's DAG class
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    except ImportError:
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=path)
    schedules = {}
    for dag_id, dag in bag.dags.items():
        stored = Serializer.from_dict(Serializer.to_dict(dag))  # what the scheduler reads
        condition = getattr(stored.timetable, "asset_condition", None)
        schedules[dag_id] = {
            "timetable": type(stored.timetable).__name__,
            "summary": stored.timetable.summary,
            "assets": sorted(_asset_names(condition)) if condition else [],
        }
    return {
        "import_errors": {name: str(error)[-2000:] for name, error in bag.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
        "schedules": schedules,
        "our_warnings": [
            f"{w.category.__name__}: {w.message}" for w in caught if "kalshi_provider" in str(w.filename)
        ],
    }


def _asset_names(condition: Any) -> list[str]:
    # iter_assets yields (key, asset) pairs on some lines and assets on others.
    return [(item[1] if isinstance(item, tuple) else item).name for item in condition.iter_assets()]


def connection_form() -> dict[str, Any]:
    """The data of ``GET /ui/connections/hook_meta``, from which the UI builds the form."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    build = getattr(HookMetaService.hook_meta_data, "__wrapped__", HookMetaService.hook_meta_data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metas = build()
        [meta] = [m for m in metas if m.connection_type == "kalshi"]
        meta = json.loads(meta.model_dump_json())
    meta["hook_warnings"] = [str(w.message) for w in caught if "KalshiHook" in str(w.message)]
    return meta


def chart_access(home: str) -> dict[str, Any]:
    """The chart as Airflow's API server serves it: the server's own app, with the plugins mounted.

    Building that app also proves the plugin lets the API server start (on 3.0 a plugin with
    Airflow 2 menu items stops it unless the FAB provider is installed).
    """
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    class OneReaderAuthManager(SimpleAuthManager):
        """Simple auth, except that ``outsider`` may read no DAG and the ``READS_ONE`` users one DAG
        each, as FAB's DAG-level roles allow; records each question."""

        def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
            ACCESS_QUESTIONS.append((method, details.id if details else None, user.get_name()))
            if user.get_name() == OUTSIDER:
                return False
            if user.get_name() in READS_ONE and details is not None:
                return details.id == READS_ONE[user.get_name()]
            return super().is_authorized_dag(
                method=method, user=user, access_entity=access_entity, details=details
            )

    sys.modules["__main__"].OneReaderAuthManager = OneReaderAuthManager  # importable by name
    _write_as_other_dags()
    client = TestClient(create_app())
    manager = get_auth_manager()
    tokens = {
        name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role="viewer"))
        for name in ("reader", OUTSIDER, *READS_ONE)
    }
    reader = tokens["reader"]
    answers = {}
    for name, headers in (
        ("anonymous", {}),
        ("forged", {"Authorization": "Bearer not-a-jwt"}),
        *((name, {"Authorization": f"Bearer {tokens[name]}"}) for name in (OUTSIDER, "reader", *READS_ONE)),
    ):
        response = client.get("/kalshi/data?hours=24", headers=headers)
        answers[name] = {"status": response.status_code, "body": response.text[:2000]}
    page = client.get("/kalshi/chart?hours=24", headers={"Authorization": f"Bearer {reader}"})
    answers["reader_chart"] = {"status": page.status_code, "has_svg": "<svg" in page.text}
    page = client.get("/kalshi/chart?hours=24")  # a browser opening the address, no header
    answers["anonymous_chart"] = {
        "status": page.status_code,
        "content_type": page.headers.get("content-type", ""),
        "body": page.text[:3000],
    }
    return {"answers": answers, "questions": ACCESS_QUESTIONS}


def _write_as_other_dags() -> None:
    """This hour's rows of ``SECOND_WRITER`` as the quality DAG's id, and of ``UNRECORDED`` without
    one, with the wheel's own ``store_reading``, into the warehouse the chart reads."""
    from datetime import datetime, timedelta, timezone

    from airflow.models.connection import Connection

    from kalshi_provider.pipelines.warehouse import store_reading, warehouse_engine
    from kalshi_provider.readings import AccountReading, RestingOrderValue

    engine, _ = warehouse_engine(get_connection=Connection.get_connection_from_secrets)
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    try:
        for account, dag_id in ((SECOND_WRITER, QUALITY), (UNRECORDED, None)):
            reading = AccountReading(account, hour + timedelta(seconds=1), RestingOrderValue(7))
            store_reading(engine, reading, snapshot_hour=hour, dag_run_id="probe", dag_id=dag_id)
    finally:
        engine.dispose()


def main() -> None:
    import os
    from importlib.metadata import version

    result: dict[str, Any] = {
        "airflow": version("apache-airflow"),
        "airflow_core": version("apache-airflow-core"),
        "task_sdk": version("apache-airflow-task-sdk"),
        "sqlalchemy": version("sqlalchemy"),
    }
    for name, check in (
        ("dag_folder", lambda: dag_folder(sys.argv[1])),
        ("form", connection_form),
        ("chart", lambda: chart_access(os.environ["AIRFLOW_HOME"])),
    ):
        try:
            result[name] = check()
        except Exception as err:  # reported, not raised: the other checks still run
            import traceback

            result[name] = {"error": "".join(traceback.format_exception(err))[-4000:]}
    print("PROBE-RESULT " + json.dumps(result, default=str))


if __name__ == "__main__":
    main()
