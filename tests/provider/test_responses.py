"""Every error shape Kalshi and its proxies send becomes the right exception with a useful message."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from kalshi_provider.exceptions import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiForeignRefusalError,
    KalshiNotFoundError,
    KalshiPermissionError,
    KalshiRateLimitError,
    KalshiResponseError,
    KalshiServerError,
)
from kalshi_provider.readings import ShardAmount
from kalshi_provider.responses import (
    error_from_response,
    parse_balance,
    parse_resting_order_value,
    parse_subaccount_balances,
)


@pytest.mark.parametrize(
    ("status", "body", "kind", "code", "message"),
    [
        (
            401,
            {"error": {"code": "authentication_error", "message": "auth failed", "details": "NOT_FOUND"}},
            KalshiAuthError,
            "authentication_error",
            "auth failed",
        ),
        (
            403,
            {"error": {"code": "permission_denied", "message": "permission denied"}},
            KalshiPermissionError,
            "permission_denied",
            "permission denied",
        ),
        (
            404,
            {"code": "not_found", "message": "not found", "details": None},
            KalshiNotFoundError,
            "not_found",
            "not found",
        ),
        (429, {"error": "too many requests"}, KalshiRateLimitError, None, "too many requests"),
        (400, {"msg": "bad request"}, KalshiAPIError, None, "bad request"),
        (
            502,
            "<html><body>Bad Gateway</body></html>",
            KalshiServerError,
            None,
            "<html><body>Bad Gateway</body></html>",
        ),
        (503, "", KalshiServerError, None, "HTTP 503 with no error message"),
        (500, [1, 2], KalshiServerError, None, "[1, 2]"),
    ],
    ids=[
        "wrapped-401",
        "wrapped-403",
        "flat-404",
        "string-429",
        "msg-400",
        "html-502",
        "empty-503",
        "list-500",
    ],
)
def test_error_shapes(status, body, kind, code, message):
    text = body if isinstance(body, str) else json.dumps(body)
    err = error_from_response(status, text, {})
    assert type(err) is kind
    assert (err.status, err.code) == (status, code)
    assert err.message.startswith(message)


def test_403_says_the_endpoint_is_for_fcm_members():
    err = error_from_response(403, '{"error": {"code": "permission_denied", "message": "permission denied"}}')
    assert "only for FCM members" in str(err)
    assert not err.retryable


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "permission_denied", "message": "permission denied"}},  # as seen live
        {"code": "permission_denied", "message": "permission denied", "details": ""},  # as documented
    ],
    ids=["wrapped", "flat"],
)
def test_only_kalshis_own_json_refusal_is_a_permission_error(body):
    err = error_from_response(403, json.dumps(body), request_label="GET /x")
    assert type(err) is KalshiPermissionError and err.code == "permission_denied"


@pytest.mark.parametrize(
    "text",
    [
        "<html><head><title>403 Forbidden</title></head><body>Blocked by the egress proxy</body></html>",
        '{"error": {"code": "forbidden", "message": "your IP address is not allowed"}}',
        '{"code": "access_denied", "message": "denied by policy"}',
        '{"error": "permission_denied"}',  # the code as a bare string is not Kalshi's error object
        '{"error": {"code": "PERMISSION_DENIED", "message": "permission denied"}}',
        "",
        "Forbidden",
    ],
    ids=["html", "other-code", "flat-other-code", "bare-string", "upper-case", "empty", "text"],
)
def test_any_other_403_is_a_foreign_refusal_that_says_so_and_is_permanent(text):
    from kalshi_provider.exceptions import PERMANENT_ERRORS

    err = error_from_response(403, text, {}, request_label="GET /portfolio/x")
    assert type(err) is KalshiForeignRefusalError
    assert not isinstance(err, KalshiPermissionError)  # never taken as "no FCM access"
    assert isinstance(err, PERMANENT_ERRORS) and not err.retryable
    message = str(err)
    assert message.startswith("HTTP 403") and "did not come from Kalshi's API" in message
    assert "proxy or firewall" in message and "FCM members" not in message


@pytest.mark.parametrize(
    ("details", "hint"),
    [
        ("INCORRECT_API_KEY_SIGNATURE", "the other environment"),
        ("NOT_FOUND", "does not know this API key ID"),
        ("header_timestamp_expired", "clock is off"),
        ("signature_is_missing_from_headers", "stripping them"),
    ],
)
def test_auth_failures_explain_themselves(details, hint):
    body = {"error": {"code": "authentication_error", "message": "authentication failed", "details": details}}
    assert hint in str(error_from_response(401, json.dumps(body)))


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("0", 0.0), ("soon", None), (None, None)])
def test_retry_after(header, seconds):
    headers = {"Retry-After": header} if header else {}
    assert error_from_response(429, '{"error": "too many requests"}', headers).retry_after == seconds


def test_retry_after_as_http_date_is_in_the_future():
    err = error_from_response(503, "", {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert err.retry_after > 0


def test_value_with_extra_fields_and_breakdown():
    body = {
        "total_resting_order_value": 123456,
        "resting_order_value_breakdown": [{"exchange_index": 0, "balance": "1234.5600"}],
        "something_new": True,
    }
    reading = parse_resting_order_value(body)
    assert reading.total_cents == 123456
    assert reading.breakdown == (ShardAmount(0, Decimal("1234.5600")),)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "JSON list"),
        ({}, "no 'total_resting_order_value'"),
        ({"total_resting_order_value": "100"}, "got str"),
        ({"total_resting_order_value": 100.0}, "got float"),
        ({"total_resting_order_value": True}, "got bool"),
        ({"total_resting_order_value": None}, "got NoneType"),
        ({"total_resting_order_value": -1}, "outside 0"),
        ({"total_resting_order_value": 2**63}, "outside 0"),
    ],
)
def test_bad_bodies_raise_response_errors(body, expected):
    with pytest.raises(KalshiResponseError, match=expected):
        parse_resting_order_value(body)


@pytest.mark.parametrize(
    ("breakdown", "expected"),
    [
        ({}, "not a list"),
        ([{"balance": "1"}], "an entry is not"),
        ([{"exchange_index": 0, "balance": 1}], "must be a decimal string"),
        ([{"exchange_index": 0, "balance": "NaN"}], "finite"),
        ([{"exchange_index": 0, "balance": "1.2345678"}], "more than 6 decimal places"),
        ([{"exchange_index": -1, "balance": "1"}], "exchange_index must be"),
        ([{"exchange_index": 2**31, "balance": "1"}], "exchange_index must be"),
        ([{"exchange_index": 1, "balance": "1"}, {"exchange_index": 1, "balance": "2"}], "repeats"),
        ([{"exchange_index": 0, "balance": "1e30"}], "does not fit"),
    ],
)
def test_a_breakdown_that_cannot_be_stored_is_left_out_and_the_total_kept(breakdown, expected):
    parsed = parse_resting_order_value(
        {"total_resting_order_value": 1234, "resting_order_value_breakdown": breakdown}
    )
    assert (parsed.total_cents, parsed.breakdown) == (1234, ())
    assert expected in parsed.breakdown_problem


# -- GET /portfolio/balance --------------------------------------------------------------------------

BALANCE_BODY = {
    "balance": 500000,
    "balance_dollars": "5000.0050",
    "portfolio_value": 250000,
    "updated_ts": 1_788_000_000,
    "balance_breakdown": [
        {"exchange_index": 0, "balance": "4000.0050"},
        {"exchange_index": 3, "balance": "1000"},
    ],
    "a_field_kalshi_adds_later": {"anything": [1, 2]},
}


def test_a_balance_answer_parses_exactly_and_ignores_fields_it_does_not_use():
    balance = parse_balance(BALANCE_BODY)
    assert (balance.balance_cents, balance.portfolio_value_cents, balance.updated_ts) == (
        500000,
        250000,
        1_788_000_000,
    )
    assert balance.balance_dollars == Decimal("5000.005") and type(balance.balance_dollars) is Decimal
    assert balance.breakdown == (ShardAmount(0, Decimal("4000.005")), ShardAmount(3, Decimal("1000")))
    assert balance.breakdown_problem is None


def test_a_balance_without_its_optional_breakdown_parses_and_a_negative_balance_is_kept():
    body = {key: BALANCE_BODY[key] for key in ("balance_dollars", "portfolio_value", "updated_ts")}
    balance = parse_balance({**body, "balance": -1250, "balance_dollars": "-12.5"})
    assert (balance.balance_cents, balance.balance_dollars, balance.breakdown) == (
        -1250,
        Decimal("-12.5"),
        (),
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"balance": None}, "'balance' must be a whole number, got NoneType"),
        ({"balance": 1.0}, "'balance' must be a whole number, got float"),
        ({"balance": True}, "'balance' must be a whole number, got bool"),
        ({"balance": 2**63}, "'balance' is 9223372036854775808, outside"),
        ({"portfolio_value": "250000"}, "'portfolio_value' must be a whole number, got str"),
        ({"updated_ts": -1}, "'updated_ts' is -1, outside 0"),
        ({"updated_ts": 1.5}, "'updated_ts' must be a whole number"),
        ({"balance_dollars": 5000.005}, "'balance_dollars' must be a decimal string, got float"),
        ({"balance_dollars": "5000.0000001"}, "more than 6 decimal places"),
        ({"balance_dollars": "lots"}, "is not a decimal number"),
    ],
)
def test_a_balance_field_of_the_wrong_kind_refuses_the_answer(change, expected):
    with pytest.raises(KalshiResponseError, match=expected) as refused:
        parse_balance({**BALANCE_BODY, **change})
    assert str(refused.value).startswith("Kalshi's answer to GET /portfolio/balance")


@pytest.mark.parametrize("missing", ["balance", "balance_dollars", "portfolio_value", "updated_ts"])
def test_a_balance_without_a_required_field_is_refused_naming_it(missing):
    body = {key: value for key, value in BALANCE_BODY.items() if key != missing}
    with pytest.raises(
        KalshiResponseError, match=f"has no '{missing}' field, which Kalshi's spec marks required"
    ):
        parse_balance(body)


@pytest.mark.parametrize("body", [None, [], "balance", 5])
def test_a_balance_answer_that_is_not_an_object_is_refused(body):
    with pytest.raises(KalshiResponseError, match="expected an object with 'balance'"):
        parse_balance(body)


@pytest.mark.parametrize(
    ("breakdown", "expected"),
    [
        ("shards", "not a list"),
        ([{"exchange_index": 0}], "an entry is not"),
        ([{"exchange_index": 0, "balance": "1.0000001"}], "more than 6 decimal places"),
        ([{"exchange_index": 1, "balance": "1"}, {"exchange_index": 1, "balance": "2"}], "repeats"),
        ([{"exchange_index": True, "balance": "1"}], "exchange_index must be"),
    ],
)
def test_a_balance_breakdown_that_cannot_be_stored_never_costs_the_balance(breakdown, expected):
    balance = parse_balance({**BALANCE_BODY, "balance_breakdown": breakdown})
    assert (balance.balance_cents, balance.balance_dollars, balance.breakdown) == (
        500000,
        Decimal("5000.005"),
        (),
    )
    assert balance.breakdown_problem.startswith("Kalshi's balance_breakdown: ")
    assert expected in balance.breakdown_problem


# --- GET /portfolio/subaccounts/balances ---------------------------------------------------------

ROW = {"subaccount_number": 0, "exchange_index": 0, "balance": "12.345678", "updated_ts": 1_700_000_000}


def _rows(*changes: dict) -> dict:
    return {"subaccount_balances": [ROW | change for change in changes]}


def test_subaccount_balances_parse_exactly_and_ignore_fields_they_do_not_use():
    body = _rows({}, {"exchange_index": 1, "balance": "-0.5"}, {"subaccount_number": 63, "extra": [1]})
    parsed = parse_subaccount_balances(body)
    assert [(r.subaccount_number, r.exchange_index, r.balance_dollars) for r in parsed.rows] == [
        (0, 0, Decimal("12.345678")),
        (0, 1, Decimal("-0.5")),
        (63, 0, Decimal("12.345678")),
    ]
    assert parsed.total_by_subaccount() == {0: Decimal("11.845678"), 63: Decimal("12.345678")}
    assert parse_subaccount_balances({"subaccount_balances": []}).rows == ()


def test_subaccount_rows_without_an_exchange_index_parse_when_none_has_one():
    body = {
        "subaccount_balances": [
            {k: v for k, v in (ROW | {"subaccount_number": n}).items() if k != "exchange_index"}
            for n in (0, 1)
        ]
    }
    assert [(r.subaccount_number, r.exchange_index) for r in parse_subaccount_balances(body).rows] == [
        (0, None),
        (1, None),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, "empty"),
        ([], "a JSON list"),
        ({"balances": []}, "without 'subaccount_balances'"),
        ({"subaccount_balances": {"0": "1"}}, "not a list"),
        (_rows({"balance": 12.5}), "decimal string"),  # a float is not Kalshi's dollar string
        (_rows({"balance": "1.0000001"}), "more than 6 decimal places"),
        (_rows({"balance": "NaN"}), "finite"),
        (_rows({"balance": "9" * 65}), "at most 64 characters"),
        (_rows({"subaccount_number": 64}), "from 0 to 63"),
        (_rows({"subaccount_number": -1}), "from 0 to 63"),
        (_rows({"subaccount_number": True}), "from 0 to 63"),
        (_rows({"subaccount_number": 1.0}), "from 0 to 63"),
        (_rows({"exchange_index": "0"}), "exchange_index"),
        (_rows({"updated_ts": -1}), "updated_ts"),
        (_rows({}, {}), "listed twice"),  # the same (subaccount, shard) twice
        (
            {
                "subaccount_balances": [
                    ROW,
                    {k: v for k, v in ROW.items() if k != "exchange_index"} | {"subaccount_number": 1},
                ]
            },
            "others do not",
        ),
        ({"subaccount_balances": [{"subaccount_number": 0}]}, "lacks 'balance', 'updated_ts'"),
        ({"subaccount_balances": ["0"]}, "lacks"),
        ({"subaccount_balances": [ROW] * 4097}, "more than the 4096"),
    ],
)
def test_a_subaccount_answer_that_is_not_kalshis_is_refused_whole(body, expected):
    with pytest.raises(KalshiResponseError, match=re.escape(expected)):
        parse_subaccount_balances(body)
