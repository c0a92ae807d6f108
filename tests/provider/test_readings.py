"""The one reading record: exact values only, and a lossless, self-checking trip through XCom."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from kalshi_provider.readings import (
    AccountReading,
    Balance,
    BalanceReading,
    InvalidReadingError,
    RestingOrderValue,
    ShardAmount,
)

OBSERVED = datetime(2026, 9, 1, 12, 0, 7, 123456, tzinfo=timezone.utc)


def _reading(**value) -> AccountReading:
    fields = {"total_cents": 5000, "breakdown": (ShardAmount(0, "30.5"), ShardAmount(2, Decimal("19.5")))}
    fields.update(value)
    return AccountReading("kalshi_default", OBSERVED, RestingOrderValue(**fields))


def test_xcom_round_trip_is_lossless_through_json():
    """What Airflow does between the fetch and the load task: JSON in its metadata DB."""
    reading = _reading(breakdown_problem=None)
    payload = json.loads(json.dumps(reading.to_xcom()))
    assert AccountReading.from_xcom(payload) == reading
    assert payload["resting_order_value"]["breakdown"] == [
        {"exchange_index": 0, "dollars": "30.500000"},
        {"exchange_index": 2, "dollars": "19.500000"},
    ]


def test_a_kept_total_with_a_dropped_breakdown_survives_the_trip():
    reading = _reading(breakdown=(), breakdown_problem="balance '1e999' is not storable")
    assert AccountReading.from_xcom(json.loads(json.dumps(reading.to_xcom()))) == reading


def test_observed_at_is_kept_in_utc():
    plus_two = timezone(timedelta(hours=2))
    reading = AccountReading("a", OBSERVED.astimezone(plus_two), RestingOrderValue(1))
    assert reading.observed_at == OBSERVED and reading.observed_at.tzinfo == timezone.utc
    assert reading.to_xcom()["observed_at"] == "2026-09-01T12:00:07.123456+00:00"


@pytest.mark.parametrize("cents", [-1, 2**63, True, 12.0, "100", None])
def test_totals_are_whole_cents_a_bigint_holds(cents):
    with pytest.raises(InvalidReadingError, match="total_resting_order_value"):
        RestingOrderValue(cents)


@pytest.mark.parametrize(
    ("dollars", "message"),
    [
        ("1.2345678", "more than 6 decimal places"),
        (0.1, "must be a decimal string"),
        ("NaN", "finite"),
        ("1e22", "does not fit a reading: at most 22 digits before the point"),
        ("x" * 65, "at most 64 characters"),
    ],
)
def test_shard_amounts_are_exact_or_refused(dollars, message):
    with pytest.raises(InvalidReadingError, match=message):
        ShardAmount(0, dollars)


def test_a_repeated_exchange_index_is_refused():
    with pytest.raises(InvalidReadingError, match="repeats an exchange_index"):
        RestingOrderValue(1, (ShardAmount(1, "1"), ShardAmount(1, "2")))


def _tampered(change) -> dict:
    payload = _reading().to_xcom()
    change(payload)
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "not a reading made by AccountReading.to_xcom"),
        ("kalshi_default", "not a reading made by AccountReading.to_xcom"),
        (_tampered(lambda p: p.pop("account")), "not a reading made by AccountReading.to_xcom"),
        (_tampered(lambda p: p["resting_order_value"].pop("breakdown")), "not a reading made by"),
        (_tampered(lambda p: p.update(account="")), "account must be a non-empty"),
        (_tampered(lambda p: p.update(observed_at="2026-09-01T12:00:00")), "timezone-aware"),
        (_tampered(lambda p: p["resting_order_value"].update(total_cents=1.5)), "whole number of cents"),
        (
            _tampered(lambda p: p["resting_order_value"]["breakdown"][0].update(dollars="0.0000001")),
            "more than 6 decimal places",
        ),
    ],
)
def test_from_xcom_checks_what_it_is_given(payload, message):
    """An XCom can be edited by hand or come from an older version: it is re-checked, not trusted."""
    with pytest.raises(InvalidReadingError, match=message):
        AccountReading.from_xcom(payload)


# -- the balance beside the total --------------------------------------------------------------------

BALANCE = Balance(
    balance_cents=-250,
    portfolio_value_cents=2**63 - 1,
    balance_dollars="-2.504",
    updated_ts=1_788_000_000,
    breakdown=(ShardAmount(0, "-3"), ShardAmount(3, "0.496")),
)


def _with_balance(**fields) -> AccountReading:
    balance = BalanceReading(OBSERVED + timedelta(milliseconds=40), BALANCE)
    return AccountReading(
        **{"account": "kalshi_default", "observed_at": OBSERVED, "balance": balance, **fields}
    )


@pytest.mark.parametrize(
    "reading",
    [
        _with_balance(resting_order_value=RestingOrderValue(7), try_number=2),
        _with_balance(resting_order_value=None, not_permitted="Kalshi API error 403 (permission_denied)"),
        AccountReading(
            "a",
            OBSERVED,
            None,
            BalanceReading(OBSERVED, problem="no 'balance_dollars' field"),
            not_permitted="403",
        ),
    ],
    ids=["total-and-balance", "not-permitted", "balance-left-out"],
)
def test_a_reading_with_its_balance_survives_the_trip_exactly(reading):
    payload = json.loads(json.dumps(reading.to_xcom()))
    back = AccountReading.from_xcom(payload)
    assert back == reading
    if back.balance.value is not None:
        assert back.balance.value.balance_dollars == Decimal("-2.504")
        assert type(back.balance.value.balance_dollars) is Decimal
        assert payload["balance"]["value"]["balance_dollars"] == "-2.504000"


def test_an_xcom_of_the_total_only_version_still_loads():
    """A run fetched before an upgrade and loaded after it: no balance, no try number, no refusal."""
    payload = _reading().to_xcom()
    for key in ("balance", "not_permitted", "try_number"):
        del payload[key]
    reading = AccountReading.from_xcom(payload)
    assert (reading.balance, reading.not_permitted, reading.try_number) == (None, None, None)
    assert reading.resting_order_value.total_cents == 5000


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resting_order_value": None}, "either the resting order value or why Kalshi did not permit it"),
        ({"resting_order_value": RestingOrderValue(1), "not_permitted": "403"}, "either the resting"),
        ({"resting_order_value": RestingOrderValue(1), "try_number": True}, "try_number"),
        ({"resting_order_value": None, "not_permitted": "x" * 1001}, "1 to 1000 characters"),
        ({"resting_order_value": RestingOrderValue(1), "balance": BALANCE}, "must be a BalanceReading"),
    ],
)
def test_a_reading_holds_the_total_or_the_refusal_never_both_nor_neither(fields, message):
    with pytest.raises(InvalidReadingError, match=message):
        AccountReading("a", OBSERVED, **fields)


def test_a_balance_reading_holds_the_balance_or_the_problem_with_its_answer():
    with pytest.raises(InvalidReadingError, match="either a Balance or the problem"):
        BalanceReading(OBSERVED)
    with pytest.raises(InvalidReadingError, match="either a Balance or the problem"):
        BalanceReading(OBSERVED, BALANCE, problem="both")
    with pytest.raises(InvalidReadingError, match="timezone-aware"):
        BalanceReading(OBSERVED.replace(tzinfo=None), BALANCE)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"balance_cents": 2**63}, "balance is outside"),
        ({"balance_cents": 1.0}, "balance must be a whole number of cents"),
        ({"portfolio_value_cents": False}, "portfolio_value must be a whole number"),
        ({"updated_ts": -1}, "updated_ts"),
        ({"balance_dollars": 2.5}, "must be a decimal string"),
        ({"breakdown": (ShardAmount(1, "1"), ShardAmount(1, "1"))}, "repeats an exchange_index"),
    ],
)
def test_a_balance_holds_only_exact_values_its_columns_take(fields, message):
    values = {"balance_cents": 1, "portfolio_value_cents": 1, "balance_dollars": "0.01", "updated_ts": 0}
    with pytest.raises(InvalidReadingError, match=message):
        Balance(**{**values, **fields})


def test_from_xcom_checks_the_balance_it_is_given():
    payload = _with_balance(resting_order_value=RestingOrderValue(7)).to_xcom()
    payload["balance"]["value"]["balance_dollars"] = "1.0000001"
    with pytest.raises(InvalidReadingError, match="more than 6 decimal places"):
        AccountReading.from_xcom(payload)
    payload["balance"]["value"] = "500000"
    with pytest.raises(InvalidReadingError, match="not a reading made by AccountReading.to_xcom"):
        AccountReading.from_xcom(payload)
