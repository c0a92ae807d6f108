"""Every subaccount's balance, stored with the hour's balance row (keep-earliest, one transaction,
history), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from kalshi_provider.endpoints import SUBACCOUNT_BALANCES_ENDPOINT
from kalshi_provider.pipelines.warehouse import read_history, warehouse_tables
from kalshi_provider.readings import SubaccountBalance, SubaccountBalances, SubaccountsReading
from tests.pipelines.warehouse.conftest import make_balance, make_load

D = Decimal


def _listed(rows: dict[tuple[int, int | None], str]) -> SubaccountBalances:
    return SubaccountBalances(
        tuple(SubaccountBalance(n, i, D(v), 1_700_000_000 + n) for (n, i), v in rows.items())
    )


def _load(
    minute: int, rows: dict | None = None, *, refused: str | None = None, problem: str | None = None, **kw
):
    load = make_load(observed_minute=minute, balance=make_balance(), **kw)
    observed = load.reading.balance.observed_at + timedelta(milliseconds=20)
    found = SubaccountsReading(
        observed, None if rows is None else _listed(rows), problem=problem, not_permitted=refused
    )
    return dataclasses.replace(load, reading=dataclasses.replace(load.reading, subaccounts=found))


def _stored(engine) -> list[tuple]:
    table = warehouse_tables().subaccounts
    with engine.connect() as conn:
        query = select(table).order_by(*table.primary_key.columns)
        return [
            (r.subaccount_number, r.exchange_index, r.balance_dollars, r.balance_updated_ts)
            for r in conn.execute(query)
        ]


def _subaccount_history(engine) -> list[tuple]:
    rows = [h for h in read_history(engine) if h["endpoint"] == SUBACCOUNT_BALANCES_ENDPOINT]
    return [(h["outcome"], h["note"], json.loads(h["reading_json"])) for h in rows]


def test_every_subaccounts_balance_is_stored_exactly_per_shard(db_engine, store):
    rows = {(0, 0): "2000.004", (0, 1): "-0.000001", (1, 0): "123456789012.345678", (63, 3): "0"}
    store(db_engine, _load(5, rows))
    assert _stored(db_engine) == [
        (0, 0, D("2000.004"), 1_700_000_000),
        (0, 1, D("-0.000001"), 1_700_000_000),
        (1, 0, D("123456789012.345678"), 1_700_000_001),
        (63, 3, D("0"), 1_700_000_063),
    ]
    [(outcome, note, values)] = _subaccount_history(db_engine)
    assert (outcome, note) == ("hour_row", None)
    assert values["subaccount_balances"][2]["balance_dollars"] == "123456789012.345678"


def test_the_hour_keeps_the_subaccounts_of_its_earliest_balance(db_engine, store):
    store(db_engine, _load(20, {(0, 0): "1", (2, 0): "2"}))
    store(db_engine, _load(30, {(0, 0): "9"}))  # later: not kept
    assert _stored(db_engine) == [(0, 0, D("1"), 1_700_000_000), (2, 0, D("2"), 1_700_000_002)]
    store(db_engine, _load(10, {(0, 0): "5", (1, 1): "6"}))  # earlier: takes the hour over, none linger
    assert _stored(db_engine) == [(0, 0, D("5"), 1_700_000_000), (1, 1, D("6"), 1_700_000_001)]
    # In order of observation: :10 (took the hour), :20 (the hour's row when written), :30 (kept out).
    outcomes = [outcome for outcome, _, _ in _subaccount_history(db_engine)]
    assert outcomes == ["hour_row", "hour_row", "earlier_kept"]


def test_a_refusal_or_a_bad_answer_is_recorded_and_costs_nothing_else(db_engine, store):
    refusal = "Kalshi API error 403 (permission_denied): this API key is restricted to a single sub-account"
    stored = store(db_engine, _load(5, refused=refusal))
    assert stored.held and stored.balance.held and _stored(db_engine) == []
    store(db_engine, _load(6, problem="Kalshi's answer: subaccount_number must be ...", account="acct-2"))
    history = _subaccount_history(db_engine)
    assert [(outcome, note) for outcome, note, _ in history] == [
        ("not_permitted", refusal),
        ("left_out", "Kalshi's answer: subaccount_number must be ..."),
    ]


def test_an_answer_without_exchange_index_is_kept_in_the_history_only(db_engine, store):
    store(db_engine, _load(5, {(0, None): "1", (1, None): "2"}))
    assert _stored(db_engine) == []
    [(outcome, note, _)] = _subaccount_history(db_engine)
    assert outcome == "left_out" and "no exchange_index" in note


def test_kalshis_refusal_of_the_list_is_news_once(db_engine, store):
    """A restricted key: the first refusal is reported (newly), the next hours' are not; with the
    total refused too (asked in the load's one version query) or permitted (a query of its own)."""
    refusal = "Kalshi API error 403: this API key is restricted to a single sub-account"
    first = store(db_engine, _load(5, refused=refusal))
    later = store(db_engine, _load(5, refused=refusal, hour=1))
    assert (first.newly_refused_subaccounts, later.newly_refused_subaccounts) == (True, False)
    both = [
        store(db_engine, _load(5, refused=refusal, hour=h, account="b", not_permitted="403 FCM"))
        for h in (0, 1)
    ]
    assert [(s.newly_not_permitted, s.newly_refused_subaccounts) for s in both] == [
        (True, True),
        (False, False),
    ]
    listed = store(db_engine, _load(5, {(0, 0): "1"}, hour=2))
    assert listed.newly_refused_subaccounts is False
    again = store(db_engine, _load(5, refused=refusal, hour=3))  # refused again after a listed hour: news
    assert again.newly_refused_subaccounts is True
