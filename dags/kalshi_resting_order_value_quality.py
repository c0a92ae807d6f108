"""Check the hourly Kalshi table: every expected hour present, no implausible jumps.

Runs after every load (scheduled on the table's Asset) and at minute 30 of every hour, so a
pipeline that stopped writing altogether is noticed too. Problems fail the check task, which
Airflow shows like any failure and which sends an alert through the ``alert_conn_id`` connection
(a Slack-style webhook or SMTP) when that connection exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from kalshi_provider.assets import RESTING_ORDER_VALUE_ASSET
from kalshi_provider.notifications.alert import KalshiAlertNotifier
from kalshi_provider.pipeline import DEFAULT_TABLE, DEFAULT_WAREHOUSE_CONN_ID

with DAG(
    dag_id="kalshi_resting_order_value_quality",
    description="Freshness and plausibility of the hourly Kalshi resting order value table",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 * * * *", timezone="UTC"),
        assets=RESTING_ORDER_VALUE_ASSET,
    ),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "kalshi_conn_ids": Param(["kalshi_default"], type="array", items={"type": "string"}, minItems=1),
        "warehouse_conn_id": Param(DEFAULT_WAREHOUSE_CONN_ID, type="string"),
        "table": Param(DEFAULT_TABLE, type="string", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"),
        "schema": Param(None, type=["null", "string"]),
        "window_hours": Param(24, type="integer", minimum=1, maximum=2160),
        "grace_minutes": Param(15, type="integer", minimum=0, maximum=59),
        "max_change_percent": Param(500, type="number", exclusiveMinimum=0),
        "alert_conn_id": Param("kalshi_alerts", type="string"),
    },
    tags=["kalshi"],
    doc_md=__doc__,
):

    @task(
        retries=0,  # a data problem does not go away by asking again a minute later
        on_failure_callback=KalshiAlertNotifier(conn_id="{{ params.alert_conn_id }}"),
    )
    def check_freshness_and_quality(params=None) -> dict:
        from kalshi_provider.quality import QualityRules, find_problems, report
        from kalshi_provider.warehouse import read_snapshots, warehouse_engine

        rules = QualityRules(
            window_hours=params["window_hours"],
            grace_minutes=params["grace_minutes"],
            max_change_percent=float(params["max_change_percent"]),
        )
        now = datetime.now(timezone.utc)
        engine, description = warehouse_engine(params["warehouse_conn_id"])
        try:
            rows = read_snapshots(
                engine,
                since=now - timedelta(hours=rules.window_hours + 1),
                table_name=params["table"],
                schema=params["schema"],
            )
        finally:
            engine.dispose()
        problems = find_problems(rows, params["kalshi_conn_ids"], now, rules)
        if problems:
            from kalshi_provider.exceptions import KalshiDataQualityError

            raise KalshiDataQualityError(report(problems))
        return {"rows_checked": len(rows), "warehouse": description}

    check_freshness_and_quality()
