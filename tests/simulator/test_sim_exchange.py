"""/exchange/status, /exchange/schedule and the portfolio endpoints while the exchange is inactive."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from kalshi_provider.signing import KalshiAuth
from kalshi_simulator.exchange import EASTERN, parse_datetime, weekly_windows

STATUS = "/exchange/status"
SCHEDULE = "/exchange/schedule"
PORTFOLIO = [
    "/portfolio/balance",
    "/portfolio/summary/total_resting_order_value",
    "/portfolio/subaccounts/balances",
]
RESUME = "2026-12-10T10:00:00Z"


def status(simulator):
    return requests.get(simulator.base_url + STATUS, timeout=5).json()


def signed(simulator, account, path):
    return requests.get(
        simulator.base_url + path, auth=KalshiAuth(account.key_id, account.private_key), timeout=5
    )


def test_an_active_exchange_reports_every_shard(simulator, kalshi_account):
    shard = {"exchange_active": True, "trading_active": True, "intra_exchange_transfers_active": True}
    assert status(simulator) == {
        **shard,
        "exchange_estimated_resume_time": None,
        "exchange_index_statuses": [
            {"exchange_index": index, "description": f"Exchange index {index}", **shard} for index in range(4)
        ],
    }


def test_maintenance_stops_the_portfolio_endpoints_only(simulator, kalshi_account):
    simulator.exchange.start_maintenance(RESUME)
    body = status(simulator)
    assert (body["exchange_active"], body["trading_active"], body["exchange_estimated_resume_time"]) == (
        False,
        False,
        RESUME,
    )
    assert not any(shard["exchange_active"] for shard in body["exchange_index_statuses"])
    for path in PORTFOLIO:
        response = signed(simulator, kalshi_account, path)
        assert response.status_code == 503
        assert response.json() == {
            "error": {
                "code": "service_unavailable",
                "message": "the exchange is under maintenance",
                "details": "",
            }
        }
    assert requests.get(simulator.base_url + SCHEDULE, timeout=5).status_code == 200
    # A bad signature is still a 401: the maintenance answer is for authenticated calls.
    stale = requests.get(simulator.base_url + PORTFOLIO[0], timeout=5)
    assert stale.status_code == 401
    assert [record.status for record in simulator.requests][-2:] == [200, 401]

    simulator.exchange.end_maintenance()
    assert status(simulator)["exchange_estimated_resume_time"] is None
    assert all(signed(simulator, kalshi_account, path).status_code == 200 for path in PORTFOLIO)


def test_one_shard_in_maintenance_leaves_the_exchange_active(simulator, kalshi_account):
    simulator.exchange.start_maintenance(exchange_index=2)
    body = status(simulator)
    assert (body["exchange_active"], body["trading_active"]) == (True, True)  # the top level is shard 0
    assert [shard["exchange_active"] for shard in body["exchange_index_statuses"]] == [
        True,
        True,
        False,
        True,
    ]
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 200
    simulator.exchange.update(trading_active=False, exchange_index=[0, 1])  # a trading pause
    body = status(simulator)
    assert (body["exchange_active"], body["trading_active"]) == (True, False)
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 200


def test_the_inactive_answer_is_scriptable(simulator, kalshi_account):
    simulator.exchange.update(
        maintenance=True, portfolio_while_inactive={"status": 504, "body": "<html>gateway</html>"}
    )
    response = signed(simulator, kalshi_account, PORTFOLIO[0])
    assert (response.status_code, response.text) == (504, "<html>gateway</html>")
    simulator.exchange.update(portfolio_while_inactive={})  # answer as if active
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 200
    simulator.exchange.update(portfolio_while_inactive=None)  # the default again
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 503


def test_a_queued_fault_comes_before_the_maintenance_answer(simulator, kalshi_account):
    simulator.exchange.start_maintenance()
    simulator.push_faults([{"status": 429}])
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 429
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 503


def test_the_per_shard_array_can_be_absent(simulator, kalshi_account):
    simulator.exchange.update(index_statuses_available=False)
    assert "exchange_index_statuses" not in status(simulator)
    simulator.exchange.update(index_statuses_available=True, exchange_indexes=[0, 1, 2, 3, 4])
    assert [shard["exchange_index"] for shard in status(simulator)["exchange_index_statuses"]] == [
        0,
        1,
        2,
        3,
        4,
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exchange_active": "false"}, "true or false"),
        ({"maintenance": True, "trading_active": False}, "one or the other"),
        ({"exchange_index": 2}, "give a flag too"),
        ({"exchange_active": False, "exchange_index": 9}, "shards"),
        # Each below pairs a good change with a bad one: neither may apply.
        ({"maintenance": True, "exchange_estimated_resume_time": "soon"}, "RFC 3339"),
        ({"maintenance": True, "exchange_estimated_resume_time": "2026-12-10T10:00:00"}, "offset"),
        ({"maintenance": True, "exchange_indexes": [1, 2]}, "includes 0"),
        ({"maintenance": True, "maintenance_windows": [{"start_datetime": RESUME}]}, "windows must be"),
        (
            {
                "maintenance": True,
                "maintenance_windows": [{"start_datetime": RESUME, "end_datetime": RESUME}],
            },
            "end after",
        ),
        ({"maintenance": True, "portfolio_while_inactive": {"status": 503, "times": 2}}, "'times'"),
        ({"maintenance": True, "portfolio_while_inactive": {"statuss": 503}}, "statuss"),
        ({"maintenance": True, "colour": "red"}, "colour"),
    ],
)
def test_bad_exchange_changes_change_nothing(simulator, kalshi_account, changes, message):
    before = requests.get(simulator.control_url + "/exchange", timeout=5).json()
    with pytest.raises(ValueError, match=message):
        simulator.exchange.update(**changes)
    assert requests.get(simulator.control_url + "/exchange", timeout=5).json() == before


# -- the schedule ---------------------------------------------------------------------------------


def test_the_default_schedule_is_kalshis_thursday_window(simulator, kalshi_account):
    schedule = requests.get(simulator.base_url + SCHEDULE, timeout=5).json()["schedule"]
    now = datetime.now(timezone.utc)
    windows = [
        (parse_datetime(w["start_datetime"]), parse_datetime(w["end_datetime"]))
        for w in schedule["maintenance_windows"]
    ]
    assert len(windows) >= 6
    for start, end in windows:
        local = start.astimezone(EASTERN)
        assert (local.strftime("%A %H:%M"), end - start) == ("Thursday 03:00", timedelta(hours=2))
    assert windows[0][0] < now - timedelta(days=7)  # last week's window, for a check of past hours
    assert any(now < start < now + timedelta(days=7) for start, _ in windows)  # and the next one
    (week,) = schedule["standard_hours"]
    assert (
        parse_datetime(week["start_time"]) <= windows[0][0]
        and parse_datetime(week["end_time"]) > windows[-1][1]
    )
    assert week["thursday"] == [
        {"open_time": "00:00", "close_time": "03:00"},
        {"open_time": "05:00", "close_time": "24:00"},
    ]
    assert week["monday"] == [{"open_time": "00:00", "close_time": "24:00"}]


def test_the_weekly_window_follows_daylight_saving_time():
    # US daylight saving time started on Sunday 2026-03-08: 03:00 ET is 08:00 UTC before, 07:00 after.
    windows = weekly_windows(datetime(2026, 3, 1, 12, tzinfo=timezone.utc))
    starts = [w["start_datetime"] for w in windows]
    assert "2026-03-05T08:00:00Z" in starts and "2026-03-12T07:00:00Z" in starts
    assert starts[0] == "2026-02-19T08:00:00Z" and starts[-1] == "2026-03-26T07:00:00Z"


def test_maintenance_windows_and_hours_are_scriptable(simulator, kalshi_account):
    windows = [{"start_datetime": "2026-12-24T08:00:00Z", "end_datetime": "2026-12-24T11:30:00-05:00"}]
    odd_hours = [{"monday": [{"open_time": "20:00", "close_time": "02:00"}]}]  # served as given
    simulator.exchange.update(maintenance_windows=windows, standard_hours=odd_hours)
    schedule = requests.get(simulator.base_url + SCHEDULE, timeout=5).json()["schedule"]
    assert schedule == {"standard_hours": odd_hours, "maintenance_windows": windows}
    simulator.exchange.update(maintenance_windows=[], standard_hours=None)
    schedule = requests.get(simulator.base_url + SCHEDULE, timeout=5).json()["schedule"]
    assert schedule["maintenance_windows"] == [] and len(schedule["standard_hours"]) == 1


# -- the control API ------------------------------------------------------------------------------


def test_the_exchange_over_the_control_api(simulator, kalshi_account):
    url = simulator.control_url + "/exchange"
    change = {"maintenance": True, "exchange_estimated_resume_time": RESUME, "maintenance_windows": []}
    answer = requests.patch(url, json=change, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == status(simulator)
    assert answer.json()["status"]["exchange_estimated_resume_time"] == RESUME
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 503

    refused = requests.patch(url, json={"maintenance": False, "exchange_indexes": [3]}, timeout=5)
    assert refused.status_code == 400 and "includes 0" in refused.json()["error"]["message"]
    assert status(simulator)["exchange_active"] is False  # nothing of the refused change applied

    shown = requests.get(url, timeout=5).json()
    assert shown["schedule"]["maintenance_windows"] == []
    assert shown["portfolio_while_inactive"]["status"] == 503
    assert requests.delete(url, timeout=5).json()["status"]["exchange_active"] is True
    assert signed(simulator, kalshi_account, PORTFOLIO[0]).status_code == 200
    assert requests.patch(url, json={}, timeout=5).status_code == 400
    assert requests.post(url, json={"maintenance": True}, timeout=5).status_code == 405
