"""Every error shape Kalshi and its proxies send becomes the right exception with a useful message."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from kalshi_provider.exceptions import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiNotFoundError,
    KalshiPermissionError,
    KalshiRateLimitError,
    KalshiResponseError,
    KalshiServerError,
)
from kalshi_provider.readings import ShardAmount
from kalshi_provider.responses import (
    error_from_response,
    parse_resting_order_value,
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
