"""Kalshi's official SDK parses every answer the simulator gives.

The models are those of ``kalshi_python_sync`` 3.34.0 (OpenAPI 3.34.0), pinned and hash-checked in
``requirements-kalshi-sdk.txt`` and unpacked by ``scripts/setup.sh --test`` into
``.venv/kalshi-sdk/``: its wheel asks for Python 3.13, and the one version that installs on 3.11
(3.2.0) predates subaccounts, breakdowns and per-shard statuses. The SDK ignores fields it does
not know, so each check also asserts that every field served is one Kalshi's model defines: a
misspelt optional field would otherwise pass unseen.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from pydantic import BaseModel

from kalshi_provider.signing import KalshiAuth

REPO = Path(__file__).resolve().parents[2]
SDK_DIR = Path(sys.prefix) / "kalshi-sdk"
RESUME = "2026-12-10T10:00:00Z"


def pinned_version() -> str:
    text = (REPO / "requirements-kalshi-sdk.txt").read_text()
    found = re.search(r"^kalshi_python_sync==([0-9.]+) ", text, re.MULTILINE)
    assert found, "requirements-kalshi-sdk.txt pins no kalshi_python_sync version"
    return found.group(1)


@pytest.fixture(scope="module")
def models() -> ModuleType:
    """``kalshi_python_sync.models`` of the pinned SDK, imported from ``.venv/kalshi-sdk``."""
    if not (SDK_DIR / "kalshi_python_sync").is_dir():
        pytest.fail(f"Kalshi's SDK models are missing from {SDK_DIR}: run `bash scripts/setup.sh --test`")
    sys.path.insert(0, str(SDK_DIR))
    try:
        import kalshi_python_sync
        from kalshi_python_sync import models
    finally:
        sys.path.remove(str(SDK_DIR))
    assert Path(kalshi_python_sync.__file__).is_relative_to(SDK_DIR), (
        "another kalshi_python_sync was imported"
    )
    assert kalshi_python_sync.__version__ == pinned_version()
    return models


def parse(model: type, body: Any) -> Any:
    """``model.from_dict(body)``, after checking that Kalshi's model knows every field served."""
    parsed = model.from_dict(body)
    assert_known(parsed, body)
    return parsed


def assert_known(parsed: Any, body: Any, where: str = "") -> None:
    fields = type(parsed).model_fields
    for key, value in body.items():
        assert key in fields, f"{where}{key} is not a field of Kalshi's {type(parsed).__name__}"
        attribute = getattr(parsed, key)
        if isinstance(value, dict) and isinstance(attribute, BaseModel):
            assert_known(attribute, value, f"{where}{key}.")
        elif isinstance(value, list) and isinstance(attribute, list):
            for index, (item, parsed_item) in enumerate(zip(value, attribute, strict=True)):
                if isinstance(item, dict):
                    assert_known(parsed_item, item, f"{where}{key}[{index}].")


def signed(simulator, account, path, **params):
    auth = KalshiAuth(account.key_id, account.private_key)
    response = requests.get(simulator.base_url + path, params=params, auth=auth, timeout=5)
    return response.status_code, response.json()


def public(simulator, path):
    response = requests.get(simulator.base_url + path, timeout=5)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def firm(make_kalshi_account):
    return make_kalshi_account(
        subaccounts={1: 250000, 2: {"balance_breakdown": [{"exchange_index": 2, "balance": "1.004321"}]}}
    )


def test_the_total_parses(simulator, firm, models):
    status, body = signed(simulator, firm, "/portfolio/summary/total_resting_order_value")
    parsed = parse(models.GetPortfolioRestingOrderTotalValueResponse, body)
    assert status == 200 and parsed.total_resting_order_value == 123456
    assert [(shard.exchange_index, shard.balance) for shard in parsed.resting_order_value_breakdown] == [
        (0, "493.8400"),
        (1, "370.3600"),
        (2, "246.9100"),
        (3, "123.4500"),
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, (500000, "5000.0000", 4)),
        ({"subaccount": 1}, (250000, "2500.0000", 4)),
        ({"subaccount": 2}, (100, "1.004321", 1)),
        ({"subaccount": 1, "exchange_index": 3}, (25000, "250.0000", 4)),
        ({"exchange_index": 0}, (200000, "2000.0000", 4)),
    ],
)
def test_every_balance_answer_parses(simulator, firm, models, params, expected):
    status, body = signed(simulator, firm, "/portfolio/balance", **params)
    parsed = parse(models.GetBalanceResponse, body)
    assert status == 200
    assert (parsed.balance, parsed.balance_dollars, len(parsed.balance_breakdown)) == expected


def test_a_restricted_keys_balance_parses_without_its_breakdown(simulator, make_kalshi_account, models):
    key = make_kalshi_account(subaccounts={1: 1000}, restricted_subaccount=1)
    status, body = signed(simulator, key, "/portfolio/balance")
    parsed = parse(models.GetBalanceResponse, body)
    assert (status, parsed.balance, parsed.balance_breakdown) == (200, 1000, None)


def test_the_subaccount_balances_parse(simulator, firm, models):
    status, body = signed(simulator, firm, "/portfolio/subaccounts/balances")
    parsed = parse(models.GetSubaccountBalancesResponse, body)
    assert status == 200
    rows = [(row.subaccount_number, row.exchange_index, row.balance) for row in parsed.subaccount_balances]
    assert len(rows) == 9 and rows[-1] == (2, 2, "1.004321")


@pytest.mark.parametrize("scenario", ["active", "maintenance", "one shard", "no per-shard array"])
def test_every_exchange_status_parses(simulator, kalshi_account, models, scenario):
    if scenario == "maintenance":
        simulator.exchange.start_maintenance(RESUME)
    elif scenario == "one shard":
        simulator.exchange.start_maintenance(RESUME, exchange_index=3)
    elif scenario == "no per-shard array":
        simulator.exchange.update(index_statuses_available=False)
    parsed = parse(models.ExchangeStatus, public(simulator, "/exchange/status"))
    assert parsed.exchange_active is (scenario != "maintenance")
    resume = datetime(2026, 12, 10, 10, tzinfo=timezone.utc) if scenario != "active" else None
    assert parsed.exchange_estimated_resume_time == (resume if scenario != "no per-shard array" else None)
    statuses = parsed.exchange_index_statuses
    assert statuses is None if scenario == "no per-shard array" else len(statuses) == 4


@pytest.mark.parametrize("scripted", [False, True])
def test_the_schedule_parses(simulator, kalshi_account, models, scripted):
    if scripted:
        windows = [{"start_datetime": "2026-12-24T03:00:00-05:00", "end_datetime": "2026-12-24T09:00:00Z"}]
        simulator.exchange.update(maintenance_windows=windows)
    parsed = parse(models.GetExchangeScheduleResponse, public(simulator, "/exchange/schedule"))
    windows = parsed.schedule.maintenance_windows
    assert all(window.end_datetime > window.start_datetime for window in windows) and windows
    thursday = parsed.schedule.standard_hours[0].thursday
    assert [(session.open_time, session.close_time) for session in thursday] == [
        ("00:00", "03:00"),
        ("05:00", "24:00"),
    ]


def test_the_error_bodies_parse(simulator, make_kalshi_account, models):
    """Kalshi's ErrorResponse is the flat shape; the simulator wraps it in "error" as the live API does."""
    key = make_kalshi_account(subaccounts={1: 1000}, restricted_subaccount=1)
    status, body = signed(simulator, key, "/portfolio/subaccounts/balances")
    assert status == 403
    assert parse(models.ErrorResponse, body["error"]).message.startswith("this API key is restricted")
    simulator.exchange.start_maintenance()
    status, body = signed(simulator, key, "/portfolio/balance")
    assert (status, parse(models.ErrorResponse, body["error"]).code) == (503, "service_unavailable")


def test_the_checks_can_fail(models):
    """Controls: 3.34.0's models are strict where 3.2.0's were not, and a misspelt field is caught."""
    with pytest.raises(ValueError, match="balance_dollars"):
        models.GetBalanceResponse.from_dict({"balance": 1, "portfolio_value": 0, "updated_ts": 1})
    misspelt = {"exchange_active": True, "trading_active": True, "exchange_index_status": []}
    with pytest.raises(AssertionError, match="exchange_index_status is not a field"):
        parse(models.ExchangeStatus, misspelt)
