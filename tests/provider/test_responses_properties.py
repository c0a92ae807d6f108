"""Whatever Kalshi (or a proxy in front of it) sends, the parsers give a checked value or a KalshiError.

``responses.decode_json``, ``parse_resting_order_value`` and ``error_from_response`` promise to
be total: a correct non-negative integer equal to the input when the body is valid, else one of
the project's own exceptions, never a KeyError, TypeError, JSONDecodeError or the like. These
properties feed them arbitrary JSON values, text, bytes, status codes and headers.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
import requests
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from kalshi_provider.exceptions import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiError,
    KalshiForeignRefusalError,
    KalshiNotFoundError,
    KalshiPermissionError,
    KalshiRateLimitError,
    KalshiResponseError,
    KalshiServerError,
)
from kalshi_provider.readings import MAX_CENTS, MAX_EXCHANGE_INDEX, MIN_CENTS, RestingOrderValue
from kalshi_provider.responses import (
    decode_json,
    error_from_response,
    parse_balance,
    parse_resting_order_value,
)

CI = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELD = "total_resting_order_value"
BREAKDOWN = "resting_order_value_breakdown"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
valid_cents = st.integers(min_value=0, max_value=MAX_CENTS) | st.sampled_from([0, 1, MAX_CENTS])
any_total = valid_cents | st.sampled_from([-1, MAX_CENTS + 1, 2**64, -(2**63)]) | json_values
decimal_strings = st.decimals(
    allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9
).map(lambda d: format(d, "f"))
valid_breakdown = st.lists(
    st.fixed_dictionaries(
        {"exchange_index": st.integers(min_value=0, max_value=MAX_EXCHANGE_INDEX), "balance": decimal_strings}
    ),
    max_size=4,
    unique_by=lambda entry: entry["exchange_index"],
)
extra_fields = st.dictionaries(
    st.text(max_size=12).filter(lambda name: name not in (FIELD, BREAKDOWN)), json_values, max_size=4
)


def _valid_total(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_CENTS


def _parse_or_kalshi_error(body: object) -> RestingOrderValue | None:
    """Run the parser; None when it raised a KalshiError (anything else propagates and fails)."""
    try:
        return parse_resting_order_value(body)
    except KalshiError as err:
        assert isinstance(err, KalshiResponseError)
        assert str(err)
        return None


# -- parse_resting_order_value ---------------------------------------------------------------------


@CI
@given(json_values)
@example([])
@example(None)
@example({FIELD: True})
@example({FIELD: 12.0})
@example({FIELD: float("nan")})
def test_any_json_value_parses_to_its_own_value_or_raises_a_kalshi_error(body):
    parsed = _parse_or_kalshi_error(body)
    if parsed is not None:
        assert isinstance(body, dict) and _valid_total(body[FIELD])
        assert type(parsed.total_cents) is int and parsed.total_cents == body[FIELD] >= 0


@CI
@given(total=any_total, breakdown=st.none() | valid_breakdown | json_values, extras=extra_fields)
def test_a_body_with_the_field_parses_exactly_when_the_total_is_whole_cents_in_range(
    total, breakdown, extras
):
    body = {**extras, FIELD: total}
    if breakdown is not None:
        body[BREAKDOWN] = breakdown
    parsed = _parse_or_kalshi_error(body)
    if not _valid_total(total):
        assert parsed is None, "an invalid total must never be accepted"
    if parsed is not None:
        assert parsed.total_cents == total and parsed.total_cents >= 0


@CI
@given(total=valid_cents, breakdown=st.none() | valid_breakdown, extras=extra_fields)
def test_a_valid_body_always_parses_to_the_exact_values_whatever_else_it_holds(total, breakdown, extras):
    body = {**extras, FIELD: total}
    if breakdown is not None:
        body[BREAKDOWN] = breakdown
    parsed = parse_resting_order_value(body)
    assert parsed.total_cents == total
    assert parsed.breakdown_problem is None
    assert [(entry.exchange_index, entry.dollars) for entry in parsed.breakdown] == [
        (item["exchange_index"], Decimal(item["balance"])) for item in breakdown or []
    ]


@CI
@given(total=valid_cents, breakdown=json_values)
def test_a_breakdown_that_cannot_be_stored_never_costs_the_total(total, breakdown):
    parsed = parse_resting_order_value({FIELD: total, BREAKDOWN: breakdown})
    assert parsed.total_cents == total
    if parsed.breakdown_problem is not None:
        assert parsed.breakdown == ()


# -- decode_json, and the whole path from the bytes on the wire ------------------------------------


# -- parse_balance ---------------------------------------------------------------------------------

balance_fields = {
    "balance": st.integers(min_value=MIN_CENTS, max_value=MAX_CENTS) | json_values,
    "balance_dollars": decimal_strings | json_values,
    "portfolio_value": st.integers(min_value=MIN_CENTS, max_value=MAX_CENTS) | json_values,
    "updated_ts": st.integers(min_value=0, max_value=2**40) | json_values,
}


@CI
@given(
    fields=st.fixed_dictionaries({}, optional=balance_fields),
    breakdown=st.none() | valid_breakdown | json_values,
    extras=extra_fields,
)
def test_a_balance_answer_parses_to_exactly_its_values_or_raises_a_kalshi_response_error(
    fields, breakdown, extras
):
    body = {**extras, **fields}
    if breakdown is not None:
        body["balance_breakdown"] = breakdown
    try:
        parsed = parse_balance(body)
    except KalshiError as err:
        assert isinstance(err, KalshiResponseError) and str(err)
        return
    assert set(balance_fields) <= set(fields)
    for name, attribute in (("balance", "balance_cents"), ("portfolio_value", "portfolio_value_cents")):
        assert type(fields[name]) is int and getattr(parsed, attribute) == fields[name]
    assert parsed.updated_ts == fields["updated_ts"] and type(parsed.updated_ts) is int
    assert parsed.balance_dollars == Decimal(fields["balance_dollars"])
    # The optional breakdown never costs the balance: it is exact, or left out with the reason.
    if parsed.breakdown_problem is None:
        entries = breakdown or []
        assert [(entry.exchange_index, entry.dollars) for entry in parsed.breakdown] == [
            (item["exchange_index"], Decimal(item["balance"])) for item in entries
        ]
    else:
        assert parsed.breakdown == ()


@CI
@given(st.text())
@example("")
@example("<html>502 Bad Gateway</html>")
@example("NaN")
@example("1" * 5000)  # more digits than Python converts to int by default
@example('{"total_resting_order_value": 1e400}')
def test_any_text_decodes_or_raises_a_kalshi_response_error(text):
    try:
        decode_json(text, "GET /x")
    except KalshiResponseError as err:
        assert "GET /x" in str(err)


@CI
@given(json_values)
def test_json_decodes_back_to_the_value_it_encodes(value):
    assume(not _has_nan(value))
    assert decode_json(json.dumps(value), "GET /x") == value


def _has_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, list):
        return any(_has_nan(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nan(item) for item in value.values())
    return False


def _response(status: int, content: bytes, content_type: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = content
    if content_type is not None:
        response.headers["Content-Type"] = content_type
    return response


content_types = st.sampled_from(
    [None, "application/json", "application/json; charset=utf-8", "text/html; charset=latin-1", "text/plain"]
)
wire_bodies = (
    st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.builds(lambda t, e: json.dumps({FIELD: t, **e}).encode(), any_total, extra_fields)
)


@CI
@given(content=wire_bodies, content_type=content_types)
@example(content=b"\xff\xfe\x00", content_type="application/json")
@example(content='{"total_resting_order_value": 5}'.encode("utf-16"), content_type=None)
def test_any_bytes_a_200_can_carry_give_a_valid_total_or_a_kalshi_error(content, content_type):
    """What the hook does with a 2xx answer: response.text -> decode_json -> parse."""
    response = _response(200, content, content_type)
    try:
        body = decode_json(response.text, "GET /x") if response.content else None
        parsed = parse_resting_order_value(body)
    except KalshiError as err:
        assert isinstance(err, KalshiResponseError)
        return
    assert _valid_total(parsed.total_cents) and parsed.total_cents == body[FIELD]


# -- error_from_response ---------------------------------------------------------------------------

error_texts = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.builds(
        lambda code, message, details: json.dumps(
            {"error": {"code": code, "message": message, "details": details}}
        ),
        json_values,
        json_values,
        json_values,
    ),
    st.builds(lambda code, message: json.dumps({"code": code, "message": message}), json_values, json_values),
    st.builds(lambda text: json.dumps({"error": text}), json_values),
    st.builds(lambda text: json.dumps({"msg": text}), json_values),
    st.sampled_from(["", " ", "<html><body>502 Bad Gateway</body></html>", "null", "[]", "{}"]),
)
retry_after_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2099 07:28:00 GMT",
            "Wed, 21 Oct 2099 07:28:00 -0000",
            "Mon, 99 Foo 99999 99:99:99 GMT",
            "1e309",
            "-0",
        ]
    ),
)
header_maps = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3),
    st.builds(lambda value: {"Retry-After": value}, retry_after_values),
    st.builds(lambda value: CaseInsensitiveDict({"retry-after": value}), retry_after_values),
)
statuses = st.integers(min_value=100, max_value=599) | st.sampled_from(
    [401, 403, 404, 429, 500, 502, 503, 504]
)

EXPECTED_KIND = {
    401: KalshiAuthError,
    403: KalshiPermissionError,
    404: KalshiNotFoundError,
    429: KalshiRateLimitError,
}


@CI
@given(status=statuses, text=error_texts, headers=header_maps)
@example(status=401, text='{"error": {"code": "authentication_error", "details": "NOT_FOUND"}}', headers=None)
@example(status=429, text='{"error": "too many requests"}', headers={"Retry-After": "nan"})
@example(status=503, text="", headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 -0000"})
def test_any_error_answer_becomes_the_matching_kalshi_api_error(status, text, headers):
    err = error_from_response(status, text, headers, request_label="GET /x")
    expected = EXPECTED_KIND.get(status, KalshiServerError if status >= 500 else KalshiAPIError)
    foreign = status == 403 and err.code != "permission_denied"  # not Kalshi's own refusal
    assert type(err) is (KalshiForeignRefusalError if foreign else expected)
    assert err.status == status
    assert err.retryable == (status == 429 or status >= 500)
    assert err.retry_after is None or err.retry_after >= 0
    rendered = str(err)
    assert rendered.startswith("HTTP 403" if foreign else f"Kalshi API error {status}")
    assert err.message and err.message in rendered


@CI
@given(
    status=statuses,
    code=st.text(min_size=1, max_size=30).filter(str.strip),
    message=st.text(min_size=1, max_size=150).filter(str.strip),
    wrapped=st.booleans(),
)
def test_the_documented_error_shapes_keep_their_code_and_message(status, code, message, wrapped):
    error = {"code": code, "message": message, "details": ""}
    err = error_from_response(status, json.dumps({"error": error} if wrapped else error))
    assert err.code == code
    # Whitespace is folded and control characters replaced: the message is one log line.
    folded = " ".join(message.split())
    assert err.message == "".join(ch if ch.isprintable() else "\ufffd" for ch in folded)
    assert "\n" not in str(err) and "\r" not in str(err)


@CI
@given(st.integers(min_value=0, max_value=10**6) | st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_a_numeric_retry_after_is_honoured_as_given(seconds):
    err = error_from_response(429, '{"error": "too many requests"}', {"Retry-After": str(seconds)})
    assert err.retry_after == float(str(seconds))


# -- found by the properties above: deep nesting and integers too long to print --------------------

DEEP = "[" * 100_000


@pytest.mark.parametrize(
    "call",
    [lambda: decode_json(DEEP, "GET /x"), lambda: error_from_response(502, DEEP)],
    ids=["decode_json", "error_from_response"],
)
def test_deeply_nested_json_is_a_kalshi_error_not_a_recursion_error(call):
    try:
        result = call()
    except KalshiError:
        return
    assert isinstance(result, KalshiAPIError)


def test_an_integer_too_long_to_print_is_a_kalshi_error():
    with pytest.raises(KalshiResponseError):
        parse_resting_order_value({FIELD: 10**5000})
