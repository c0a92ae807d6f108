"""The quality DAG: every expected hour present in the hourly table, no implausible jumps either
way, every hour's breakdown and balance stored (a key without FCM access counts as present while
its balance arrives), and, with the ``balance_floors`` param, no shard's available balance below
its floor. An hour missing wholly inside one of Kalshi's published maintenance windows
(``GET /exchange/schedule``, read once per run when an hour is missing) is reported as "Kalshi
maintenance" without alerting; see docs/quality-checks.md.

It runs after every load (scheduled on the table's Asset) and at minute 30 of every hour, so a
pipeline that stopped writing altogether is noticed too. Problems fail the check task, which
Airflow shows like any failure and which calls the notifiers given to :func:`quality_dag`. The
failure's text is the report of ``quality_rules``, whose outside texts carry no live markup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, task

from kalshi_provider.pipelines.quality_rules import CONN_ID_RULE, parse_balance_floors
from kalshi_provider.pipelines.settings import (
    DEFAULT_KALSHI_CONN_ID,
    IDENTIFIER_RULE,
    QUALITY_DAG_ID,
    WarehouseTarget,
    warehouse_target,
)
from kalshi_provider.pipelines.settings import balance_floors as settings_balance_floors
from kalshi_provider.pipelines.table_asset import resting_order_value_asset
from kalshi_provider.version_compat import AIRFLOW_V_3_2_PLUS

log = logging.getLogger(__name__)


# The same timetable classes on every line: the Task SDK re-exports them from 3.2 on; 3.0 and 3.1
# have them only in Airflow core, where they schedule Task SDK DAGs just the same.
if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
else:
    from airflow.timetables.assets import AssetOrTimeSchedule  # type: ignore[no-redef]
    from airflow.timetables.trigger import CronTriggerTimetable  # type: ignore[no-redef]


def quality_dag(
    dag_id: str = QUALITY_DAG_ID,
    *,
    kalshi_conn_ids: Sequence[str] = (DEFAULT_KALSHI_CONN_ID,),
    warehouse: WarehouseTarget | None = None,
    on_failure_callback: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
    balance_floors: dict[str, dict[str, str | int]] | None = None,
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    **dag_kwargs: Any,
) -> DAG:
    """
    Build the DAG that checks the hourly table's freshness and plausibility.

    :param dag_id: The DAG's id.
    :param kalshi_conn_ids: Accounts expected in the table (the ``kalshi_conn_ids`` param's default).
    :param warehouse: The table to check; defaults to
        :func:`~kalshi_provider.pipelines.settings.warehouse_target`.
    :param on_failure_callback: Notifier(s) called when the check fails, e.g. Airflow's
        ``SlackWebhookNotifier`` (apache-airflow-providers-slack) or ``SmtpNotifier``
        (apache-airflow-providers-smtp), or any callable taking the task's context. Without one the
        failed task in the UI is the alert.
    :param balance_floors: Floors on the available balance per account and exchange shard, in
        dollars (``{"kalshi_default": {"0": "25000.00"}}``): the ``balance_floors`` param's default;
        None takes ``[kalshi] balance_floors``.
        Checked here, so a bad entry fails the DAG file's import naming it (docs/quality-checks.md).
    :param start_date: First hour the DAG may run for (no catch-up).
    :param dag_kwargs: Further ``DAG`` arguments.

    A DAG file checking two accounts and mailing the risk desk when a check fails:

    .. code-block:: python

        # Airflow DAG: the Kalshi quality checks, mailing the risk desk when one fails.

        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        from kalshi_provider.pipelines.quality import quality_dag

        dag = quality_dag(
            kalshi_conn_ids=["kalshi_desk_a", "kalshi_desk_b"],
            on_failure_callback=SmtpNotifier(
                smtp_conn_id="smtp_alerts",
                from_email="airflow@example.com",
                to="risk-desk@example.com",
                subject="Kalshi quality check failed (run {{ run_id }})",
                html_content="<pre>{{ exception | e }}</pre>",
            ),
        )
    """
    target = warehouse or warehouse_target()
    # Checked now: a bad floor fails the DAG file's import, naming the entry. The param holds the
    # checked floors as exact decimal strings (JSON-safe, as a triggered run's conf would hold them).
    floors = {
        account: {str(index): str(floor) for index, floor in shards.items()}
        for account, shards in parse_balance_floors(
            balance_floors if balance_floors is not None else settings_balance_floors()
        ).items()
    }
    with DAG(
        dag_id=dag_id,
        description="Freshness and plausibility of the hourly Kalshi resting order value table",
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable("30 * * * *", timezone="UTC"),
            assets=resting_order_value_asset(target.table),
        ),
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        # A backstop above the warehouse engine's own connect and statement timeouts: a hung
        # check fails instead of holding the next half-hour's run (max_active_runs=1).
        default_args={
            "retries": 1,
            "retry_delay": timedelta(minutes=2),
            "execution_timeout": timedelta(minutes=5),
        },
        params={
            "kalshi_conn_ids": Param(
                list(kalshi_conn_ids), type="array", items={"type": "string"}, minItems=1
            ),
            # Names only Airflow accepts, so neither can carry markup into an error's alert.
            "warehouse_conn_id": Param(target.conn_id, type="string", pattern=CONN_ID_RULE),
            "table": Param(target.table, type="string", pattern=IDENTIFIER_RULE),
            "schema": Param(target.schema, type=["null", "string"], pattern=IDENTIFIER_RULE),
            "window_hours": Param(24, type="integer", minimum=1, maximum=2160),
            "grace_minutes": Param(15, type="integer", minimum=0, maximum=59),
            "max_change_percent": Param(
                500,
                type="number",
                exclusiveMinimum=0,
                description="Largest change from one hour to the next, either way: 500 flags a rise "
                "to more than 6x or a fall to less than 1/6 of the earlier value.",
            ),
            "balance_floors": Param(
                floors,
                type="object",
                description="Optional floors on the available balance per account and exchange shard, "
                'in dollars: {"kalshi_default": {"0": "25000.00"}}. An hour whose balance on a shard is '
                "below its floor alerts.",
            ),
        },
        tags=["kalshi"],
        doc_md=__doc__,
        **dag_kwargs,
    ) as dag:

        @task(
            retries=0,  # a data problem does not go away by asking again a minute later
            on_failure_callback=on_failure_callback,
        )
        def check_freshness_and_quality(params=None) -> dict:
            from kalshi_provider.pipelines.quality_rules import (
                QualityRules,
                balance_floor_problems,
                expected_hours,
                find_problems,
                parse_balance_floors,
                report,
                separate_maintenance,
                subaccount_changes,
            )
            from kalshi_provider.pipelines.warehouse import (
                read_balances,
                read_snapshots,
                read_subaccounts,
                warehouse_engine,
            )

            floors = parse_balance_floors(params.get("balance_floors"))  # refused before any read
            rules = QualityRules(
                window_hours=params["window_hours"],
                grace_minutes=params["grace_minutes"],
                max_change_percent=float(params["max_change_percent"]),
            )
            now = datetime.now(timezone.utc)
            engine, description = warehouse_engine(params["warehouse_conn_id"])
            window = {
                "since": now - timedelta(hours=rules.window_hours + 1),
                "table_name": params["table"],
                "schema": params["schema"],
            }
            try:
                rows = read_snapshots(engine, include_breakdown=True, **window)  # breakdowns left out too
                balances = read_balances(engine, **window)
                subaccounts = read_subaccounts(engine, **window)
            finally:
                engine.dispose()
            problems = find_problems(rows, params["kalshi_conn_ids"], now, rules, balances)
            notices, schedule_problem = [], None
            if any(problem.kind in ("no_rows", "missing_hours") for problem in problems):
                windows, schedule_problem = maintenance_windows(params["kalshi_conn_ids"])
                problems, notices = separate_maintenance(problems, windows)
            problems += balance_floor_problems(balances, floors, expected_hours(now, rules))
            problems += subaccount_changes(subaccounts, params["kalshi_conn_ids"], now, rules)
            text = report(problems, notices, schedule_problem)
            if problems:
                from kalshi_provider.exceptions import KalshiDataQualityError

                raise KalshiDataQualityError(text)
            if notices:
                log.warning("%s", text)
            return {
                "rows_checked": len(rows),
                "balances_checked": len(balances),
                "warehouse": description,
                "kalshi_maintenance": [str(notice) for notice in notices],
            }

        check_freshness_and_quality()
    return dag


def maintenance_windows(kalshi_conn_ids: Sequence[str]) -> tuple[tuple[Any, ...], str | None]:
    """Kalshi's published maintenance windows, read unsigned through the first account's connection
    (its host); or none, and why, when they cannot be read: then every missing hour alerts."""
    from kalshi_provider.exceptions import KalshiError
    from kalshi_provider.hooks.kalshi import KalshiHook

    try:
        return KalshiHook(kalshi_conn_ids[0]).get_maintenance_windows(), None
    except KalshiError as err:
        problem = str(err)
    except Exception as err:  # noqa: BLE001 - e.g. no such connection: the check goes on without it
        # Only the type: an unexpected error's text can hold a connection field's value.
        problem = f"{type(err).__name__} while reading it through the connection {kalshi_conn_ids[0]!r}"
    log.warning("Kalshi's maintenance schedule is unavailable, missing hours alert as outages: %s", problem)
    return (), problem
