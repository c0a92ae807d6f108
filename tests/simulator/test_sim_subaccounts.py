"""Subaccounts: /portfolio/subaccounts/balances, /portfolio/balance's query, restricted keys."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests

from kalshi_provider.signing import KalshiAuth
from kalshi_simulator.api import RESTRICTED_MESSAGE

SUBACCOUNTS = "/portfolio/subaccounts/balances"
BALANCE = "/portfolio/balance"
TOTAL = "/portfolio/summary/total_resting_order_value"
RESTRICTED = {"error": {"code": "permission_denied", "message": RESTRICTED_MESSAGE, "details": ""}}
#: Subaccount 2's shards, given out of order and with sub-cent digits.
TWO = [{"exchange_index": 2, "balance": "1.004321"}, {"exchange_index": 0, "balance": "3.0000"}]


def get(simulator, account, path, **params):
    auth = KalshiAuth(account.key_id, account.private_key)
    return requests.get(simulator.base_url + path, params=params, auth=auth, timeout=5)


@pytest.fixture
def firm(make_kalshi_account):
    """An account with two numbered subaccounts beside its primary."""
    return make_kalshi_account(
        subaccounts={
            1: 250000,
            2: {"balance_breakdown": TWO, "portfolio_value": 7, "updated_ts": 1_700_000_000},
        }
    )


def test_a_plain_account_lists_its_primary_shards(simulator, kalshi_account):
    rows = get(simulator, kalshi_account, SUBACCOUNTS).json()["subaccount_balances"]
    balance = get(simulator, kalshi_account, BALANCE).json()
    # Subaccount 0's rows are the balance's breakdown: the two answers cannot disagree.
    assert [(row["subaccount_number"], row["exchange_index"], row["balance"]) for row in rows] == [
        (0, entry["exchange_index"], entry["balance"]) for entry in balance["balance_breakdown"]
    ]
    assert sum(Decimal(row["balance"]) for row in rows) == Decimal(balance["balance_dollars"])
    assert all(abs(row["updated_ts"] - time.time()) < 5 for row in rows)


def test_every_subaccount_and_shard_gets_a_row(simulator, firm):
    rows = get(simulator, firm, SUBACCOUNTS).json()["subaccount_balances"]
    assert [(row["subaccount_number"], row["exchange_index"], row["balance"]) for row in rows] == [
        (0, 0, "2000.0000"),
        (0, 1, "1500.0000"),
        (0, 2, "1000.0000"),
        (0, 3, "500.0000"),
        (1, 0, "1000.0000"),
        (1, 1, "750.0000"),
        (1, 2, "500.0000"),
        (1, 3, "250.0000"),
        (2, 0, "3.0000"),
        (2, 2, "1.004321"),
    ]
    assert {row["updated_ts"] for row in rows if row["subaccount_number"] == 2} == {1_700_000_000}
    assert all(set(row) == {"subaccount_number", "exchange_index", "balance", "updated_ts"} for row in rows)


def test_the_default_balance_still_reads_the_primary_only(simulator, firm):
    plain = get(simulator, firm, BALANCE).json()
    assert (plain["balance"], plain["balance_dollars"], plain["portfolio_value"]) == (
        500000,
        "5000.0000",
        250000,
    )
    explicit = get(simulator, firm, BALANCE, subaccount=0).json()
    assert explicit == plain | {"updated_ts": explicit["updated_ts"]}


def test_a_subaccount_balance_is_the_sum_of_its_shards(simulator, firm):
    body = get(simulator, firm, BALANCE, subaccount=2).json()
    assert body == {
        "balance": 400,  # $4.004321: the cents field truncates, as Kalshi's does
        "balance_dollars": "4.004321",
        "portfolio_value": 7,
        "updated_ts": 1_700_000_000,
        "balance_breakdown": sorted(TWO, key=lambda entry: entry["exchange_index"]),
    }


def test_exchange_index_scopes_balance_and_portfolio_value_to_one_shard(simulator, firm):
    shard = get(simulator, firm, BALANCE, subaccount=2, exchange_index=2).json()
    assert (shard["balance"], shard["balance_dollars"], shard["portfolio_value"]) == (100, "1.004321", 1)
    empty = get(simulator, firm, BALANCE, subaccount=2, exchange_index=3).json()
    assert (empty["balance"], empty["balance_dollars"], empty["portfolio_value"]) == (0, "0.0000", 0)
    primary = get(simulator, firm, BALANCE, exchange_index=1).json()
    # 30 % of the balance and of the portfolio value, as the default breakdown splits them.
    assert (primary["balance"], primary["balance_dollars"], primary["portfolio_value"]) == (
        150000,
        "1500.0000",
        75000,
    )
    assert len(primary["balance_breakdown"]) == 4  # the breakdown stays whole


def test_a_shard_of_an_odd_primary_breakdown_is_a_loud_500(simulator, make_kalshi_account):
    account = make_kalshi_account(balance_breakdown=[{"exchange_index": 0, "balance": "abc"}])
    response = get(simulator, account, BALANCE, exchange_index=0)
    assert response.status_code == 500
    assert "exchange_index 0" in response.json()["error"]["message"]
    assert get(simulator, account, BALANCE).status_code == 200  # unscoped, it is served as given


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("subaccount=64", 400),
        ("subaccount=-1", 400),
        ("subaccount=one", 400),
        ("subaccount=", 400),
        ("subaccount=1&subaccount=2", 400),
        ("exchange_index=1000", 400),
        ("exchange_index=%D9%A1", 400),  # a non-ASCII digit
        ("subaccount=5", 404),  # no such subaccount
        ("colour=red", 200),  # an unknown parameter is ignored
    ],
)
def test_bad_balance_queries(simulator, firm, query, status):
    auth = KalshiAuth(firm.key_id, firm.private_key)
    response = requests.get(f"{simulator.base_url}{BALANCE}?{query}", auth=auth, timeout=5)
    assert response.status_code == status
    if status != 200:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_a_restricted_key_is_refused_outside_its_set(simulator, make_kalshi_account):
    key = make_kalshi_account(subaccounts={1: 1000}, restricted_subaccount=1)
    for path in (SUBACCOUNTS, TOTAL):
        response = get(simulator, key, path)
        assert (response.status_code, response.json()) == (403, RESTRICTED)
    other = get(simulator, key, BALANCE, subaccount=0)
    assert (other.status_code, other.json()) == (403, RESTRICTED)


def test_a_restricted_key_reads_its_own_subaccount_without_a_breakdown(simulator, make_kalshi_account):
    key = make_kalshi_account(subaccounts={1: 1000}, restricted_subaccount=1)
    body = get(simulator, key, BALANCE).json()
    assert (body["balance"], body["balance_dollars"], body["portfolio_value"]) == (1000, "10.0000", 0)
    assert "balance_breakdown" not in body
    assert get(simulator, key, BALANCE, subaccount=1).json() == body | {"updated_ts": body["updated_ts"]}
    shard = get(simulator, key, BALANCE, exchange_index=0).json()
    assert (shard["balance_dollars"], "balance_breakdown" in shard) == ("4.0000", False)

    primary_key = make_kalshi_account(restricted_subaccount=0)
    body = get(simulator, primary_key, BALANCE).json()
    assert (body["balance"], "balance_breakdown" in body) == (500000, False)


@pytest.mark.parametrize(
    ("subaccounts", "message"),
    [
        ({0: 5}, "primary"),
        ({64: 5}, "1 to 63"),
        ({"1x": 5}, "1 to 63"),
        ({1: 1.5}, "cents"),
        ({1: {"balance": 1, "balance_breakdown": []}}, "one of them"),
        ({1: {}}, "one of them"),
        ({1: {"balance": 1, "colour": "red"}}, "colour"),
        ({1: {"balance_breakdown": [{"exchange_index": 0, "balance": "1.1234567"}]}}, "6 decimals"),
        ({1: {"balance_breakdown": [{"exchange_index": 0, "balance": 1}]}}, "dollar string"),
        ({1: {"balance_breakdown": [{"exchange_index": 0, "balance": "1"}] * 2}}, "distinct"),
        ({1: {"balance_breakdown": [{"exchange_index": 0}]}}, "balance_breakdown must be"),
        ([1, 2], "dict"),
    ],
)
def test_bad_subaccounts_are_refused(simulator, kalshi_account, subaccounts, message):
    with pytest.raises(ValueError, match=message):
        simulator.update_account(kalshi_account.key_id, subaccounts=subaccounts)


def test_a_refused_change_leaves_the_restriction_and_the_subaccounts_alone(simulator, make_kalshi_account):
    key = make_kalshi_account(subaccounts={1: 1000, 2: 5}, restricted_subaccount=1)
    with pytest.raises(ValueError, match="restricted_subaccount 1"):
        simulator.update_account(key.key_id, subaccounts={2: 7}, balance=1)
    with pytest.raises(ValueError, match="restricted_subaccount 3"):
        simulator.update_account(key.key_id, restricted_subaccount=3)
    body = get(simulator, key, BALANCE).json()
    assert (body["balance"], "balance_breakdown" in body) == (1000, False)
    simulator.update_account(key.key_id, restricted_subaccount=None)  # an ordinary key again
    rows = get(simulator, key, SUBACCOUNTS).json()["subaccount_balances"]
    assert sorted({row["subaccount_number"] for row in rows}) == [0, 1, 2]
    assert get(simulator, key, BALANCE).json()["balance"] == 500000


def test_subaccounts_and_restriction_over_the_control_api(simulator, firm):
    url = simulator.control_url + f"/accounts/{firm.key_id}"
    change = {"subaccounts": {"3": 12, "5": {"balance": 0, "portfolio_value": 9}}, "restricted_subaccount": 5}
    assert requests.patch(url, json=change, timeout=5).status_code == 200
    body = get(simulator, firm, BALANCE).json()
    assert (body["balance"], body["portfolio_value"], "balance_breakdown" in body) == (0, 9, False)
    refused = requests.patch(url, json={"subaccounts": {"3": 12}}, timeout=5)  # 5 would disappear
    assert refused.status_code == 400 and "restricted_subaccount 5" in refused.json()["error"]["message"]
    assert requests.patch(url, json={"restricted_subaccount": None}, timeout=5).status_code == 200
    rows = get(simulator, firm, SUBACCOUNTS).json()["subaccount_balances"]
    assert sorted({row["subaccount_number"] for row in rows}) == [0, 3, 5]
