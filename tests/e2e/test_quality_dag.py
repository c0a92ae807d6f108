"""The quality DAG run by Airflow against a seeded warehouse, alerting through Airflow's notifiers.

The DAG file is the documented example (``SlackWebhookNotifier`` and ``SmtpNotifier``), taken from
docs/dags-and-settings.md itself; the Slack webhook is a local HTTP receiver and the mail server a local
aiosmtpd, both on loopback.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine

from kalshi_provider.pipelines.warehouse import store_reading
from kalshi_provider.readings import AccountReading, Balance, BalanceReading, RestingOrderValue, ShardAmount
from tests.fixtures.docs import REPO, code_blocks

DAG_ID = "kalshi_resting_order_value_quality"
TASK = "check_freshness_and_quality"

pytestmark = pytest.mark.slow


def readme_quality_dag() -> str:
    """The documented quality DAG file with notifiers (the python block that uses SmtpNotifier)."""
    blocks = code_blocks("python")
    [dag_file] = [block for block in blocks if "SmtpNotifier(" in block and "quality_dag(" in block]
    return dag_file


@pytest.fixture
def slack_webhook():
    """A loopback HTTP endpoint that records the JSON bodies posted to it (Slack's webhook API)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")  # what Slack answers

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX", received
    server.shutdown()
    server.server_close()


class _Mailbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.original_content)))
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback; yields its port and mailbox."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    yield port, mailbox
    controller.stop()


@pytest.fixture
def notifying_home(airflow_home, tmp_path, slack_webhook, smtp_server):
    """An Airflow home whose DAG folder holds only the README's quality DAG, with its connections."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "kalshi_resting_order_value_quality.py").write_text(readme_quality_dag())
    airflow_home.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    airflow_home.set_connection("slack_alerts", "slackwebhook", password=slack_webhook[0])
    airflow_home.set_connection(
        "smtp_alerts",
        "smtp",
        host="127.0.0.1",
        port=smtp_server[0],
        extra={"disable_tls": True, "disable_ssl": True, "timeout": 10},
    )
    return airflow_home


@pytest.fixture
def seeded(notifying_home, tmp_path):
    """A SQLite warehouse and the 7 hours ending with the current one.

    With a 6-hour window and 59 minutes of grace, the checked hours are the first six or the last
    six of them depending on the minute the test runs; the cases below hold for both.
    """
    path = tmp_path / "warehouse.db"
    notifying_home.set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    now = datetime.now(timezone.utc)
    current = now.replace(minute=0, second=0, microsecond=0)
    hours = [current - timedelta(hours=i) for i in reversed(range(7))]

    def write(
        values: dict[datetime, int | None],
        left_out: dict[datetime, str] | None = None,
        *,
        account: str = "kalshi_default",
        balance_hours: set[datetime] | None = None,
    ) -> None:
        """Totals by hour (None: Kalshi refused it, a key without FCM access), with a balance in
        ``balance_hours`` (every hour when not given)."""
        for hour, value in values.items():
            observed = hour + timedelta(seconds=5)
            balance = None
            if balance_hours is None or hour in balance_hours:
                balance = BalanceReading(observed, Balance(5000, 0, "50", 1_772_366_400))
            if value is None:
                reading = AccountReading(
                    account, observed, None, balance, not_permitted="403 permission_denied"
                )
            else:
                value_read = RestingOrderValue(value, breakdown_problem=(left_out or {}).get(hour))
                reading = AccountReading(account, observed, value_read, balance)
            store_reading(engine, reading, snapshot_hour=hour, dag_run_id="seed")

    yield write, hours
    engine.dispose()


CONF = {"window_hours": 6, "grace_minutes": 59}


def test_complete_data_passes_and_notifies_no_one(notifying_home, seeded, slack_webhook, smtp_server):
    write, hours = seeded
    write({hour: 1000 + i for i, hour in enumerate(hours)})
    write(dict.fromkeys(hours), account="kalshi_no_fcm")  # its balance only: Kalshi refuses its total
    result = notifying_home.dags_test(
        DAG_ID, conf={**CONF, "kalshi_conn_ids": ["kalshi_default", "kalshi_no_fcm"]}
    )
    assert result.state == "success", result.output[-3000:]
    assert slack_webhook[1] == []
    assert smtp_server[1].messages == []


def test_missing_hour_jumps_and_left_out_breakdown_fail_the_check_and_reach_slack_and_email(
    notifying_home, seeded, slack_webhook, smtp_server
):
    write, hours = seeded
    values = {hour: 1000 for hour in hours}
    del values[hours[2]]
    values[hours[4]] = 900_000
    values[hours[5]] = 0  # a drop to nothing
    write(
        values,
        left_out={hours[3]: "exchange 1's amount has more than 6 decimal places"},
        balance_hours=set(hours) - {hours[4]},
    )
    result = notifying_home.dags_test(DAG_ID, conf=CONF)
    assert result.state == "failed"
    assert result.tasks[(TASK, -1)] == ("failed", 1)
    problems = [
        f"missing hours {hours[2]:%Y-%m-%d %H:00} UTC",
        "rose from 1000 to 900000 cents",
        "fell from 900000 to 0 cents",
        f"breakdown left out (total stored) for hours {hours[3]:%Y-%m-%d %H:00} UTC",
        f"no balance for hours {hours[4]:%Y-%m-%d %H:00} UTC",
    ]

    [slack] = slack_webhook[1]
    assert f"{DAG_ID}.{TASK} failed (run {result.run_id})" in slack["text"]
    assert all(problem in slack["text"] for problem in problems), slack["text"]

    [(recipients, mail)] = smtp_server[1].messages
    assert recipients == ["data-team@example.com"]
    assert mail["From"] == "airflow@example.com"
    assert mail["Subject"] == f"Kalshi quality check {DAG_ID}.{TASK} failed (run {result.run_id})"
    [html] = [part for part in mail.walk() if part.get_content_type() == "text/html"]
    body = html.get_payload(decode=True).decode()
    assert all(problem in body for problem in problems), body


def test_outside_text_reaches_slack_and_email_without_live_markup(
    notifying_home, seeded, slack_webhook, smtp_server
):
    """A hostile account id in the run's params and a hostile reason for a left-out breakdown (text
    from Kalshi's answer) reach the README's notifiers as text: no Slack mention, link or entity, no
    HTML tag, and no extra line in the report."""
    write, hours = seeded
    hostile_account = "<!channel> <https://evil.example/login|kalshi_default>"
    hostile_reason = "<!here> see <https://evil.example|Kalshi's notice> &amp; <b>act now</b>\n- all fine"
    write({hour: 1000 for hour in hours}, left_out={hours[3]: hostile_reason})
    conf = {**CONF, "kalshi_conn_ids": ["kalshi_default", hostile_account]}
    result = notifying_home.dags_test(DAG_ID, conf=conf)
    assert result.state == "failed"

    [slack] = slack_webhook[1]
    text = slack["text"]
    assert f"{DAG_ID}.{TASK} failed (run {result.run_id})" in text
    assert "<" not in text and ">" not in text, text  # nothing for Slack to act on
    assert "&lt;!channel&gt; &lt;https://evil.example/login|kalshi_default&gt;: no rows" in text
    assert "&lt;!here&gt; see &lt;https://evil.example|Kalshi's notice&gt; &amp;amp; &lt;b&gt;act now" in text
    problems = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(problems) == 2, text  # the reason's line break made no line of its own

    [(_, mail)] = smtp_server[1].messages
    [html] = [part for part in mail.walk() if part.get_content_type() == "text/html"]
    body = html.get_payload(decode=True).decode()
    assert re.findall(r"<[^>]*>", body) == ["<pre>", "</pre>"], body  # the example's own tags only


# -- issue 20: Kalshi maintenance is no outage; balance floors -----------------------------------------


@pytest.fixture
def kalshi_schedule(notifying_home, simulator, kalshi_account):
    """The check's first account, kalshi_default, on the simulator: its schedule is what the check reads."""
    notifying_home.set_kalshi_connection("kalshi_default", kalshi_account, simulator.base_url)
    return simulator.exchange


def _window(hour: datetime) -> dict:
    end = hour + timedelta(hours=1)
    return {"start_datetime": f"{hour:%Y-%m-%dT%H:%M:%SZ}", "end_datetime": f"{end:%Y-%m-%dT%H:%M:%SZ}"}


def test_an_hour_missing_inside_kalshis_maintenance_window_does_not_alert(
    notifying_home, seeded, kalshi_schedule, simulator, slack_webhook, smtp_server
):
    write, hours = seeded
    kalshi_schedule.update(maintenance_windows=[_window(hours[2])])
    write({hour: 1000 for hour in hours if hour != hours[2]})
    result = notifying_home.dags_test(DAG_ID, conf=CONF)
    assert result.state == "success", result.output[-3000:]
    assert f"Kalshi maintenance: no rows for hours {hours[2]:%Y-%m-%d %H:00} UTC" in result.output
    assert slack_webhook[1] == [] and smtp_server[1].messages == []
    schedule_reads = [r for r in simulator.requests if r.path.endswith("/exchange/schedule")]
    assert len(schedule_reads) == 1 and schedule_reads[0].signature is None  # once, and unsigned


def test_an_hour_missing_outside_the_window_still_alerts_and_the_report_tells_them_apart(
    notifying_home, seeded, kalshi_schedule, slack_webhook
):
    write, hours = seeded
    kalshi_schedule.update(maintenance_windows=[_window(hours[2])])
    write({hour: 1000 for hour in hours if hour not in (hours[2], hours[4])})
    result = notifying_home.dags_test(DAG_ID, conf=CONF)
    assert result.state == "failed"
    [slack] = slack_webhook[1]
    lines = slack["text"].splitlines()
    assert f"- kalshi_default: missing hours {hours[4]:%Y-%m-%d %H:00} UTC" in lines, lines
    assert (
        f"- (no alert) kalshi_default: Kalshi maintenance: no rows for hours {hours[2]:%Y-%m-%d %H:00} UTC, "
        "inside Kalshi's published maintenance windows"
    ) in lines, lines


def test_an_unreadable_schedule_leaves_every_missing_hour_an_outage_and_says_so(
    notifying_home, seeded, kalshi_schedule, simulator, slack_webhook
):
    write, hours = seeded
    kalshi_schedule.update(maintenance_windows=[_window(hours[2])])
    simulator.push_faults([{"status": 200, "body": "<html>schedule</html>", "path": "/exchange/schedule"}])
    write({hour: 1000 for hour in hours if hour != hours[2]})
    result = notifying_home.dags_test(DAG_ID, conf=CONF)
    assert result.state == "failed"
    [slack] = slack_webhook[1]
    assert f"missing hours {hours[2]:%Y-%m-%d %H:00} UTC" in slack["text"]
    assert "Kalshi's maintenance schedule was unavailable, so missing hours count as outages" in slack["text"]


def docs_floors_dag() -> str:
    """The DAG file of docs/quality-checks.md, verbatim."""
    [block] = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "quality-checks.md").read_text(), re.S)
    return block


def test_the_docs_floors_alert_on_a_shard_below_its_floor_from_kalshis_own_figure(airflow_home, tmp_path):
    """The documented DAG file, run by Airflow: kalshi_default's shard 0 is one cent under its floor
    (alert), its shard 1 exactly at it and kalshi_desk_b's shard 2 at it (no alert); shard 3 has
    no floor."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "kalshi_quality_floors.py").write_text(docs_floors_dag())
    airflow_home.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    path = tmp_path / "warehouse.db"
    airflow_home.set_connection("kalshi_warehouse", "sqlite", host=str(path))
    engine = create_engine(f"sqlite:///{path}")
    current = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    shards = {
        "kalshi_default": [ShardAmount(0, "24999.99"), ShardAmount(1, "5000"), ShardAmount(3, "0")],
        "kalshi_desk_b": [ShardAmount(2, "1000.50")],
    }
    for hour in [current - timedelta(hours=i) for i in range(3)]:
        for account, breakdown in shards.items():
            observed = hour + timedelta(seconds=5)
            balance = Balance(5000, 0, "50", 1_772_366_400, breakdown=tuple(breakdown))
            reading = AccountReading(
                account, observed, RestingOrderValue(1000), BalanceReading(observed, balance)
            )
            store_reading(engine, reading, snapshot_hour=hour, dag_run_id="seed")
    engine.dispose()
    result = airflow_home.dags_test(DAG_ID, conf={"window_hours": 2, "grace_minutes": 59})
    assert result.state == "failed"
    assert "1 data quality problem(s)" in result.output
    assert "kalshi_default: available balance below its floor:" in result.output
    assert "shard 0: $24,999.990000 below $25,000.000000" in result.output
    assert "shard 1" not in result.output.split("available balance below its floor")[1].split("\n")[0]
