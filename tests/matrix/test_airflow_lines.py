"""The built wheel on every supported Airflow line: 3.0.6, 3.1.8, 3.2.2 and 3.3.2.

For each line (see ``runner.py`` for how it is installed): the wheel goes in without moving
Airflow or anything else, and with an empty plugins folder and a DAG folder of copies of
``dags/`` Airflow lists the provider and the chart plugin, builds the connection form, tests a
Kalshi connection against the simulator, parses both DAGs with their schedules, runs the hourly
DAG into SQLite (the hour's total, balance, every subaccount's balance, per-shard figures and
history rows), runs it again the way the UI triggers a run (no logical date; an account without
FCM access gets its balance, a refused key fails at once, without retries), refuses a backfill
(3.2+) or skips its run in its first task (3.0, 3.1), and serves the chart's rows only to readers
of the DAGs that wrote them.
On 3.3.2 this is also issue 11's wheel-install test.

The main suite runs on 3.3 in ``.venv``; this module adds 4 to 6 minutes on 2 cores, about as much from a
fresh machine (the installs overlap the other line's checks) as with warm caches.
"""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from kalshi_provider.get_provider_info import get_provider_info
from kalshi_simulator import generate_private_key, private_pem
from tests.fixtures.airflow import hour_of
from tests.matrix.lines import LINES, AirflowLine
from tests.matrix.runner import TRIGGERED_TABLE, Account, LineRun, LineRunner, build_wheel

pytestmark = pytest.mark.slow

DIST = "airflow-provider-kalshi"
HOURLY = "kalshi_total_resting_order_value"
QUALITY = "kalshi_resting_order_value_quality"
FETCH, LOAD = "account_snapshot.fetch", "account_snapshot.load"
CENTS = 424242
[CONNECTION_TYPE] = get_provider_info()["connection-types"]
FIELDS = set(CONNECTION_TYPE["conn-fields"])


def _lines_requested(session: pytest.Session) -> list[AirflowLine]:
    """Only the lines whose tests were collected (``-k 3.3.2`` builds one venv, not four)."""
    wanted = {
        item.callspec.params["line"].version
        for item in session.items
        if item.module.__name__ == __name__ and hasattr(item, "callspec") and "line" in item.callspec.params
    }
    return [line for line in LINES if line.version in wanted]


@pytest.fixture(scope="session")
def line_runs(request, simulator, tmp_path_factory) -> dict[str, LineRun]:
    wheel = build_wheel(tmp_path_factory.mktemp("wheel"))
    runners = []
    for line in _lines_requested(request.session):
        accounts = {}
        # An FCM member, an account without FCM access, and a key Kalshi does not know (a 401).
        for conn_id, member in (("kalshi_default", True), ("kalshi_no_fcm", False), ("kalshi_refused", None)):
            key = generate_private_key("rsa")
            key_id = f"matrix-{line.version}-{uuid.uuid4()}"
            if member is not None:
                simulator.add_account(
                    key_id,
                    key,
                    total_resting_order_value=CENTS,
                    breakdown=[{"exchange_index": 0, "balance": "4242.42"}],
                    fcm_member=member,
                )
            accounts[conn_id] = Account(conn_id, key_id, private_pem(key).decode())
        root = tmp_path_factory.mktemp(f"airflow-{line.version}")
        runners.append(LineRunner(line, root, wheel, accounts, simulator.base_url))
    workers = int(os.environ.get("KALSHI_MATRIX_WORKERS", "2"))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = {run.line.version: run for run in pool.map(lambda runner: runner.execute(), runners)}
    for runner in runners:
        keys = {account.key_id for account in runner.accounts.values()}
        runner.run.requests = [
            (r.key_id, r.method, r.path, r.status, r.signature_valid)
            for r in simulator.requests
            if r.key_id in keys
        ]
        for key_id in keys:
            simulator.remove_account(key_id)
    _report_timings(request.config, runs)
    return runs


def _report_timings(config: pytest.Config, runs: dict[str, LineRun]) -> None:
    """Seconds per step and line, on the terminal: what the matrix costs CI."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for version, run in runs.items():
            steps = ", ".join(f"{name} {step.seconds:.0f}s" for name, step in run.steps.items())
            total = sum(step.seconds for step in run.steps.values())
            failed = f" ERROR {run.error}" if run.error else ""
            reporter.write_line(f"Airflow {version}: {total:.0f}s ({steps}){failed}")


@pytest.fixture(params=LINES, ids=lambda line: line.version)
def line(request) -> AirflowLine:
    return request.param


@pytest.fixture
def run(line, line_runs) -> LineRun:
    return line_runs[line.version]


# --- Installing ---------------------------------------------------------------------------------


def test_the_wheel_installs_without_moving_airflow_or_its_libraries(run: LineRun, line: AirflowLine):
    assert run.step("install_wheel").returncode == 0
    assert run.after_wheel["apache-airflow"] == run.after_wheel["apache-airflow-core"] == line.version
    assert run.after_wheel["apache-airflow-task-sdk"] == line.task_sdk
    added = {name: version for name, version in run.after_wheel.items() if name not in run.before_wheel}
    changed = {
        name: (run.before_wheel[name], version)
        for name, version in run.after_wheel.items()
        if name in run.before_wheel and run.before_wheel[name] != version
    }
    assert changed == {}
    assert set(added) == {DIST}
    # The production wheel, not an editable checkout, and no simulator in it.
    [dist_info] = run.venv.glob("lib/python*/site-packages/airflow_provider_kalshi-*.dist-info")
    origin = json.loads((dist_info / "direct_url.json").read_text())
    assert origin["url"].endswith(".whl") and not origin.get("dir_info", {}).get("editable")
    site = dist_info.parent
    assert not (site / "kalshi_simulator").exists()
    assert (site / "kalshi_provider" / "pipelines" / "ui" / "plugin.py").exists()


# --- What Airflow lists -------------------------------------------------------------------------


def test_providers_list_shows_the_provider(run: LineRun):
    providers = {row["package_name"]: row for row in run.listed("providers_list")}
    assert providers[DIST]["version"] == run.after_wheel[DIST]


def test_plugins_lists_the_chart_with_an_empty_plugins_folder(run: LineRun, line: AirflowLine):
    assert list((run.home / "plugins").iterdir()) == []
    [plugin] = [row for row in run.listed("plugins") if row["name"] == "kalshi_ui"]
    assert DIST in plugin["source"]  # from the distribution's entry point
    assert [(app["url_prefix"], app["name"]) for app in plugin["fastapi_apps"]] == [
        ("/kalshi", "Kalshi resting order value")
    ]
    # No Airflow 2 menu items: on 3.0 they stop the API server unless the FAB provider is installed.
    assert plugin.get("appbuilder_menu_items", []) == []
    if line.version.startswith("3.0."):  # no external views before 3.1: no menu entry at all
        assert "external_views" not in plugin
    else:
        assert [view["href"] for view in plugin["external_views"]] == ["/kalshi/chart"]


def test_the_connection_form_has_the_kalshi_fields(run: LineRun):
    form = run.probe.get("form")
    assert form and "error" not in form, form
    assert set(form["extra_fields"] or {}) == FIELDS
    for name, field in form["extra_fields"].items():
        assert field["schema"]["title"] == CONNECTION_TYPE["conn-fields"][name]["label"], name
    assert form["extra_fields"]["environment"]["schema"]["enum"] == ["production", "demo"]
    assert form["extra_fields"]["private_key_passphrase"]["schema"]["format"] == "password"
    assert form["standard_fields"]["login"]["title"] == "API key ID"
    assert form["standard_fields"]["host"]["title"] == "Base URL"
    assert form["standard_fields"]["password"]["hidden"] is True
    assert form["hook_warnings"] == []  # 3.2+ warn about hooks that still define the form methods


# --- Connections and DAGs -----------------------------------------------------------------------


def test_connections_test_signs_a_request_the_simulator_accepts(run: LineRun):
    step = run.step("connections_test")
    assert step.returncode == 0 and "Connection success!" in step.output, step.tail()
    key_id = run.accounts["kalshi_default"].key_id
    balance = [r for r in run.requests if r[0] == key_id and r[2].endswith("/portfolio/balance")]
    assert balance and all(status == 200 and valid for _, _, _, status, valid in balance)


def test_the_dag_folder_parses_with_both_schedules(run: LineRun, line: AirflowLine):
    folder = run.probe.get("dag_folder")
    assert folder and "error" not in folder, folder
    assert folder["import_errors"] == {}
    assert folder["dag_ids"] == [QUALITY, HOURLY]
    assert folder["our_warnings"] == []
    hourly, quality = folder["schedules"][HOURLY], folder["schedules"][QUALITY]
    assert (hourly["timetable"], hourly["summary"]) == ("CronTriggerTimetable", "0 * * * *")
    # After every load (the table's Asset) or at minute 30: the same timetable on every line.
    assert (quality["timetable"], quality["summary"]) == ("AssetOrTimeSchedule", "Asset or 30 * * * *")
    assert quality["assets"] == [HOURLY]


#: The simulator's balance (500000 cents over shards 0-3) minus the resting orders (all on shard 0).
BALANCE_MINUS_RESTING = {0: "-2242.420000", 1: "1500.000000", 2: "1000.000000", 3: "500.000000"}


def test_dags_test_writes_the_hours_total_balance_subaccounts_shards_and_history(run: LineRun):
    step = run.step("dags_test")
    [dag_run, *_] = run.airflow.dag_runs(HOURLY)
    assert step.returncode == 0 and dag_run["state"] == "success", step.tail()
    hour = hour_of(dag_run["run_after"])
    # (The probe adds rows of two more accounts to this hour later: only the run's account is read.)
    [row] = [row for row in run.warehouse_rows() if row["account"] == "kalshi_default"]
    assert row["total_resting_order_value_cents"] == CENTS
    assert row["dag_run_id"] == dag_run["run_id"]
    assert hour_of(row["snapshot_hour"]) == hour
    [balance] = [row for row in run.warehouse_rows(f"{HOURLY}_balance") if row["account"] == "kalshi_default"]
    assert (balance["balance_cents"], balance["balance_dollars"]) == (500000, "5000.000000")  # exact text
    assert (balance["dag_run_id"], hour_of(balance["snapshot_hour"])) == (dag_run["run_id"], hour)
    margins = {
        row["exchange_index"]: row["shard_balance_minus_resting_dollars"]
        for row in run.warehouse_rows(f"{HOURLY}_bal_rest")
    }
    assert margins == BALANCE_MINUS_RESTING
    history = [row for row in run.warehouse_rows(f"{HOURLY}_history") if row["account"] == "kalshi_default"]
    assert sorted((row["endpoint"], row["outcome"], row["became_hour_row"]) for row in history) == [
        ("/portfolio/balance", "hour_row", 1),
        ("/portfolio/subaccounts/balances", "hour_row", 1),
        ("/portfolio/summary/total_resting_order_value", "hour_row", 1),
    ]
    # Every subaccount's balance, with the hour's balance row: the simulator's primary, per shard.
    ours = [r for r in run.warehouse_rows(f"{HOURLY}_subacct") if r["account"] == "kalshi_default"]
    stored = {(r["subaccount_number"], r["exchange_index"]) for r in ours}
    assert stored == {(0, shard) for shard in range(4)}


def test_the_warehouse_command_on_every_line_and_inside_airflow_from_3_2(run: LineRun, line: AirflowLine):
    """After the hourly run the warehouse is at the newest revision. ``kalshi-warehouse`` (the
    console script) says so on every line; ``airflow kalshi-warehouse`` only where Airflow reads the
    provider info's ``cli`` key (3.2 and later), which is why the README offers both."""
    script = run.step("warehouse_script")
    assert script.returncode == 0 and "State: current" in script.output, script.tail()
    inside = run.step("warehouse_airflow_cli")
    if tuple(int(part) for part in line.version.split(".")[:2]) >= (3, 2):
        assert inside.returncode == 0 and "State: current" in inside.output, inside.tail()
    else:
        assert inside.returncode != 0 and "invalid choice: 'kalshi-warehouse'" in inside.output, inside.tail()


def test_a_run_without_logical_date_labels_its_hour_and_fails_a_refused_key_at_once(run: LineRun):
    """As the UI or the REST API triggers it: no logical date, the hour from ``run_after``. The
    account without FCM access gets its balance; the key Kalshi does not know fails at once."""
    step = run.step("triggered_run")
    runs = run.airflow.dag_runs(HOURLY)
    assert len(runs) == 2, step.tail()
    triggered = runs[-1]
    assert triggered["logical_date"] is None, triggered
    assert triggered["state"] == "failed", step.tail()  # one account refused
    tasks = run.airflow.task_states(triggered["run_id"])
    assert [tasks[(task, index)][0] for task in (FETCH, LOAD) for index in (0, 1)] == ["success"] * 4, (
        step.tail()
    )
    assert tasks[(FETCH, 2)] == ("failed", 1), step.tail()  # a 401: no task retries
    assert tasks[(LOAD, 2)][0] == "upstream_failed"
    assert "Kalshi does not know this API key ID" in step.output
    assert "Kalshi does not permit this key to read the total resting order value" in step.output
    [row] = run.warehouse_rows(TRIGGERED_TABLE)
    assert (row["account"], row["dag_run_id"]) == ("kalshi_default", triggered["run_id"])
    assert hour_of(row["snapshot_hour"]) == hour_of(triggered["run_after"])
    assert hour_of(triggered["run_after"]) <= datetime.now(timezone.utc)
    balances = {row["account"]: row for row in run.warehouse_rows(f"{TRIGGERED_TABLE}_balance")}
    assert set(balances) == {"kalshi_default", "kalshi_no_fcm"}
    assert balances["kalshi_default"]["total_refusal_reason"] is None
    assert "only for FCM members" in balances["kalshi_no_fcm"]["total_refusal_reason"]
    margins = run.warehouse_rows(f"{TRIGGERED_TABLE}_bal_rest")
    assert {
        row["shard_balance_minus_resting_dollars"] for row in margins if row["account"] == "kalshi_no_fcm"
    } == {None}
    history = run.warehouse_rows(f"{TRIGGERED_TABLE}_history")
    assert sorted((row["account"], row["outcome"]) for row in history) == [
        ("kalshi_default", "hour_row"),  # the total, the balance, the subaccounts
        ("kalshi_default", "hour_row"),
        ("kalshi_default", "hour_row"),
        ("kalshi_no_fcm", "hour_row"),  # the balance, the subaccounts
        ("kalshi_no_fcm", "hour_row"),
        ("kalshi_no_fcm", "not_permitted"),
    ]


def test_a_backfill_is_refused_up_front_or_ends_in_its_first_task(run: LineRun, line: AirflowLine):
    """Kalshi keeps no past readings. From 3.2 on the DAG allows every run type but backfills; 3.0
    and 3.1 create the backfill's run, and its first task skips it, saying why, before any fetch."""
    step = run.step("backfill_create")
    if line.version.startswith(("3.0.", "3.1.")):
        assert step.returncode == 0, step.tail()
        [backfill] = run.airflow.dag_runs(HOURLY, backfill=True)
        first = run.step("backfill_first_task")
        assert first.returncode == 0, first.tail()
        hour = hour_of(backfill["run_after"])
        assert f"This is a backfill run, for the hour {hour:%Y-%m-%d %H:00} UTC" in first.output, first.tail()
        assert "before any request to Kalshi" in first.output
    else:
        assert step.returncode != 0 and "does not allow backfill runs" in step.output, step.tail()
        assert run.airflow.dag_runs(HOURLY, backfill=True) == []


def test_the_chart_answers_each_user_with_the_rows_of_the_dags_they_may_read(run: LineRun):
    chart = run.probe.get("chart")
    assert chart and "error" not in chart, chart
    answers = chart["answers"]
    assert answers["anonymous"]["status"] == 401
    assert answers["forged"]["status"] in (401, 403)
    assert answers["outsider"]["status"] == 403
    assert answers["reader"]["status"] == 200, answers["reader"]
    served = json.loads(answers["reader"]["body"])
    assert [point["cents"] for point in served["series"]["kalshi_default"]] == [CENTS]  # the dags test's row
    shards = served["balance_minus_resting"]["kalshi_default"]
    assert {
        int(index): points[-1]["balance_minus_resting_dollars"] for index, points in shards.items()
    } == BALANCE_MINUS_RESTING
    assert answers["reader_chart"] == {"status": 200, "has_svg": True}
    # A browser opening the page's address: no data, whatever the line.
    page = answers["anonymous_chart"]
    assert page["status"] == 401 and "<svg" not in page["body"] and "kalshi_default" not in page["body"]
    if run.line.version.startswith("3.0."):  # 3.0's UI sends its token only as a header: ask again with it
        assert page["content_type"].startswith("text/html")
        assert 'localStorage.getItem("token")' in page["body"]
    else:  # 3.1+ read the UI's session cookie themselves
        assert page["content_type"].startswith("application/json")

    # Two DAGs wrote: the hourly DAG (kalshi_default), the quality DAG's id (the probe's second
    # writer); one account's rows have no DAG id, and go with the hourly DAG.
    def accounts(name):
        assert answers[name]["status"] == 200, answers[name]
        return set(json.loads(answers[name]["body"])["series"])

    assert accounts("reader") >= {"kalshi_default", "kalshi_desk_b", "kalshi_legacy"}
    assert accounts("hourly_reader") == accounts("reader") - {"kalshi_desk_b"}
    assert accounts("quality_reader") == {"kalshi_desk_b"}
    # Airflow's auth manager was asked about the DAGs of the metadata DB, and nothing else.
    assert {tuple(question[:2]) for question in chart["questions"]} == {("GET", HOURLY), ("GET", QUALITY)}
