"""The free margin per shard as a pure function: no database, the rules of docs/tables.md."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kalshi_provider.pipelines.warehouse.balance_minus_resting import (
    Breakdown,
    ShardBalanceMinusResting,
    balance_minus_resting,
)

D = Decimal


def _margins(balance: Breakdown | None, resting: Breakdown | None) -> dict[int, tuple]:
    return {
        m.exchange_index: (
            m.shard_balance_dollars,
            m.shard_resting_order_value_dollars,
            m.shard_balance_minus_resting_dollars,
        )
        for m in balance_minus_resting(balance, resting)
    }


def test_each_shard_is_its_balance_minus_its_resting_orders_exactly():
    """Digits a float would lose (17 significant) stay."""
    balance = Breakdown(D("100000000000.000003"), {0: D("100000000000.000001"), 1: D("0.000002")})
    resting = Breakdown(D("0.03"), {0: D("0.01"), 1: D("0.02")})
    assert _margins(balance, resting) == {
        0: (D("100000000000.000001"), D("0.01"), D("99999999999.990001")),
        1: (D("0.000002"), D("0.02"), D("-0.019998")),
    }


def test_a_shard_one_complete_breakdown_omits_counts_as_zero_there():
    balance = Breakdown(D("5"), {0: D("5")})
    resting = Breakdown(D("3"), {0: D("1"), 2: D("2")})
    assert _margins(balance, resting) == {0: (D("5"), D("1"), D("4")), 2: (D("0"), D("2"), D("-2"))}


@pytest.mark.parametrize(
    ("balance", "resting", "expected"),
    [
        # The resting breakdown does not add up to its total: a shard it omits is unknown there.
        (
            Breakdown(D("5"), {0: D("2"), 1: D("3")}),
            Breakdown(D("3"), {0: D("1")}),
            {0: (D("2"), D("1"), D("1")), 1: (D("3"), None, None)},
        ),
        # The balance's split was left out: its shards are unknown, the resting ones known.
        (Breakdown(D("5"), {}, left_out=True), Breakdown(D("1"), {0: D("1")}), {0: (None, D("1"), None)}),
        # A split that adds up but was left out is not complete either: a shard it omits is unknown.
        (
            Breakdown(D("5"), {0: D("2"), 1: D("3")}),
            Breakdown(D("1"), {0: D("1")}, left_out=True),
            {0: (D("2"), D("1"), D("1")), 1: (D("3"), None, None)},
        ),
        # No resting order value for the hour (no FCM access): the resting side is unknown.
        (Breakdown(D("5"), {0: D("2"), 1: D("3")}), None, {0: (D("2"), None, None), 1: (D("3"), None, None)}),
    ],
    ids=["resting-incomplete", "balance-left-out", "resting-left-out", "no-total"],
)
def test_what_is_unknown_stays_none(balance, resting, expected):
    assert _margins(balance, resting) == expected


def test_an_hour_without_a_balance_has_no_free_margin():
    assert balance_minus_resting(None, Breakdown(D("1"), {0: D("1")})) == []


def test_a_difference_beyond_what_the_column_holds_is_unknown_not_rounded():
    """NUMERIC(24, 6) holds less than 10**18 in magnitude; the difference of two amounts that fit
    may not."""
    big = D("999999999999999999.999999")
    (margin,) = balance_minus_resting(Breakdown(-big, {0: -big}), Breakdown(big, {0: big}))
    assert margin == ShardBalanceMinusResting(0, -big, big, None)
