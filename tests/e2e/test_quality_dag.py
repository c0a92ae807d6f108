"""The quality DAG run by Airflow against a seeded warehouse, alerting a real local webhook."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import create_engine

from kalshi_provider.pipelines.warehouse import store_reading
from kalshi_provider.readings import AccountReading, RestingOrderValue

DAG_ID = "kalshi_resting_order_value_quality"
TASK = "check_freshness_and_quality"

pytestmark = pytest.mark.slow


@pytest.fixture
def webhook():
    """A loopback HTTP endpoint that records the JSON bodies posted to it (a Slack stand-in)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/services/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def seeded(airflow_home, tmp_path, webhook):
    """A SQLite warehouse and the 7 hours ending with the current one.

    With a 6-hour window and 59 minutes of grace, the checked hours are the first six or the last
    six of them depending on the minute the test runs; the cases below hold for both.
    """
    path = tmp_path / "warehouse.db"
    airflow_home.set_connection("kalshi_warehouse", "sqlite", host=str(path))
    airflow_home.set_connection("kalshi_alerts", "http", host=webhook[0])
    engine = create_engine(f"sqlite:///{path}")
    now = datetime.now(timezone.utc)
    current = now.replace(minute=0, second=0, microsecond=0)
    hours = [current - timedelta(hours=i) for i in reversed(range(7))]

    def write(values: dict[datetime, int], left_out: dict[datetime, str] | None = None) -> None:
        for hour, value in values.items():
            problem = (left_out or {}).get(hour)
            value_read = RestingOrderValue(value, breakdown_problem=problem)
            reading = AccountReading("kalshi_default", hour + timedelta(seconds=5), value_read)
            store_reading(engine, reading, snapshot_hour=hour, dag_run_id="seed")

    yield write, hours
    engine.dispose()


CONF = {"window_hours": 6, "grace_minutes": 59}


def test_complete_data_passes_and_sends_nothing(airflow_home, seeded, webhook):
    write, hours = seeded
    write({hour: 1000 + i for i, hour in enumerate(hours)})
    result = airflow_home.dags_test(DAG_ID, conf=CONF)
    assert result.state == "success", result.output[-3000:]
    assert webhook[1] == []


def test_missing_hour_jumps_and_left_out_breakdown_fail_the_check_and_alert(airflow_home, seeded, webhook):
    write, hours = seeded
    values = {hour: 1000 for hour in hours}
    del values[hours[2]]
    values[hours[4]] = 900_000
    values[hours[5]] = 0  # a drop to nothing
    write(values, left_out={hours[3]: "exchange 1's amount has more than 6 decimal places"})
    result = airflow_home.dags_test(DAG_ID, conf=CONF)
    assert result.state == "failed"
    assert result.tasks[(TASK, -1)] == ("failed", 1)
    [alert] = webhook[1]
    assert f"missing hours {hours[2]:%Y-%m-%d %H:00} UTC" in alert["text"]
    assert "rose from 1000 to 900000 cents" in alert["text"]
    assert "fell from 900000 to 0 cents" in alert["text"]
    assert f"breakdown left out (total stored) for hours {hours[3]:%Y-%m-%d %H:00} UTC" in alert["text"]
    assert f"{DAG_ID}.{TASK}" in alert["text"]
