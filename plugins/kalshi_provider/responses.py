"""Read Kalshi's answers: the values we ask for, and every error shape seen in the wild.

The parsers are total: whatever the body, they return a checked value or raise one of the
project's own exceptions, never a ``KeyError``, ``TypeError`` or ``JSONDecodeError``. Fields they
do not use are ignored; a per-shard breakdown that cannot be stored exactly is left out (with the
reason) and never costs the value beside it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from kalshi_provider.display import shown
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
from kalshi_provider.readings import (
    MAX_CENTS,
    MAX_SUBACCOUNT_ROWS,
    MIN_CENTS,
    Balance,
    InvalidReadingError,
    RestingOrderValue,
    ShardAmount,
    SubaccountBalance,
    SubaccountBalances,
    exact_dollars,
    shard_amounts,
)


def decode_json(body: bytes | str, what: str) -> Any:
    """The JSON value of an answer; bytes are decoded as JSON's UTF-8 (or a UTF-16/32 BOM)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply to decode
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise KalshiResponseError(f"Kalshi's answer to {what} is not JSON: {_snippet(text)}") from None


def parse_resting_order_value(body: Any) -> RestingOrderValue:
    """Check the body of ``GET /portfolio/summary/total_resting_order_value``.

    The total is what the pipeline exists for: a breakdown that cannot be stored exactly (a bad
    entry, more than six decimal places, a repeated exchange) is left out with the reason in
    ``breakdown_problem`` instead of costing the total.
    """
    if body is None:
        raise KalshiResponseError(
            "Kalshi's answer is empty (or JSON null), expected an object with 'total_resting_order_value'"
        )
    if not isinstance(body, dict):
        raise KalshiResponseError(
            f"Kalshi's answer is a JSON {type(body).__name__}, expected an object with "
            "'total_resting_order_value'"
        )
    if "total_resting_order_value" not in body:
        raise KalshiResponseError(
            "Kalshi's answer has no 'total_resting_order_value' field "
            f"(fields: {_snippet(', '.join(sorted(map(str, body)))) or 'none'})"
        )
    total = body["total_resting_order_value"]
    # bool is an int subclass in Python; a float like 12.0 is not cents. Both are refused.
    if type(total) is not int:
        raise KalshiResponseError(
            "Kalshi's 'total_resting_order_value' must be a whole number of cents, got "
            f"{type(total).__name__} {_json_text(total)}"
        )
    if not 0 <= total <= MAX_CENTS:
        raise KalshiResponseError(
            f"Kalshi's 'total_resting_order_value' is {_json_text(total)}, outside 0..{MAX_CENTS} cents"
        )
    try:
        return RestingOrderValue(total, _parse_breakdown(body.get("resting_order_value_breakdown")))
    except InvalidReadingError as err:
        return RestingOrderValue(total, breakdown_problem=f"Kalshi's resting_order_value_breakdown: {err}")


def parse_balance(body: Any) -> Balance:
    """Check the body of ``GET /portfolio/balance``.

    Kalshi's spec marks ``balance`` and ``portfolio_value`` (cents), ``balance_dollars`` (a
    fixed-point dollar string) and ``updated_ts`` (Unix seconds) required: a body without one of
    them, or with one of another type, is refused. ``balance_breakdown`` is optional; one that
    cannot be stored exactly is left out with the reason in ``breakdown_problem``, the balance kept.
    """
    what = "Kalshi's answer to GET /portfolio/balance"
    if not isinstance(body, dict):
        kind = "empty (or JSON null)" if body is None else f"a JSON {type(body).__name__}"
        raise KalshiResponseError(
            f"{what} is {kind}, expected an object with 'balance' and 'balance_dollars'"
        )
    missing = [
        name for name in ("balance", "balance_dollars", "portfolio_value", "updated_ts") if name not in body
    ]
    if missing:
        raise KalshiResponseError(
            f"{what} has no {', '.join(repr(name) for name in missing)} field"
            f"{'s' if len(missing) > 1 else ''}, which Kalshi's spec marks required "
            f"(fields: {_snippet(', '.join(sorted(map(str, body)))) or 'none'})"
        )
    balance = _whole(body["balance"], "balance", what, MIN_CENTS, MAX_CENTS)
    portfolio_value = _whole(body["portfolio_value"], "portfolio_value", what, MIN_CENTS, MAX_CENTS)
    updated_ts = _whole(body["updated_ts"], "updated_ts", what, 0, MAX_CENTS)
    try:
        dollars = exact_dollars(body["balance_dollars"], "'balance_dollars'")
    except InvalidReadingError as err:
        raise KalshiResponseError(f"{what}: {err}") from None
    try:
        breakdown = _parse_breakdown(body.get("balance_breakdown"))
    except InvalidReadingError as err:
        return Balance(
            balance,
            portfolio_value,
            dollars,
            updated_ts,
            breakdown_problem=f"Kalshi's balance_breakdown: {err}",
        )
    return Balance(balance, portfolio_value, dollars, updated_ts, breakdown)


def parse_subaccount_balances(body: Any) -> SubaccountBalances:
    """Check the body of ``GET /portfolio/subaccounts/balances``.

    Kalshi's spec: ``{"subaccount_balances": [{"subaccount_number", "exchange_index", "balance",
    "updated_ts"}]}``, ``balance`` a fixed-point dollar string. Every row is checked as the balance
    is (exact dollars, whole numbers in range); a bad row, a repeated (subaccount, shard) or more
    rows than any account can have refuses the whole answer: a partial list of subaccounts would
    read as subaccounts gone. ``exchange_index`` may be absent from every row (Kalshi's answers
    before 2026-07 had none); other fields are ignored.
    """
    what = "Kalshi's answer to GET /portfolio/subaccounts/balances"
    if not isinstance(body, dict) or "subaccount_balances" not in body:
        kind = "empty (or JSON null)" if body is None else f"a JSON {type(body).__name__}"
        if isinstance(body, dict):
            fields = _snippet(", ".join(sorted(map(str, body)))) or "none"
            kind = f"an object without 'subaccount_balances' (fields: {fields})"
        raise KalshiResponseError(f"{what} is {kind}, expected an object with 'subaccount_balances'")
    raw = body["subaccount_balances"]
    if not isinstance(raw, list):
        raise KalshiResponseError(f"{what}: 'subaccount_balances' is a JSON {type(raw).__name__}, not a list")
    if len(raw) > MAX_SUBACCOUNT_ROWS:
        raise KalshiResponseError(
            f"{what} lists {len(raw)} rows, more than the {MAX_SUBACCOUNT_ROWS} any account has"
        )
    rows = []
    for item in raw:
        missing = [
            name
            for name in ("subaccount_number", "balance", "updated_ts")
            if not isinstance(item, dict) or name not in item
        ]
        if missing:
            raise KalshiResponseError(
                f"{what}: a row lacks {', '.join(map(repr, missing))}: {_json_text(item)}"
            )
        try:
            rows.append(
                SubaccountBalance(
                    item["subaccount_number"], item.get("exchange_index"), item["balance"], item["updated_ts"]
                )
            )
        except InvalidReadingError as err:
            raise KalshiResponseError(f"{what}: {err} (row {_json_text(item)})") from None
    try:
        return SubaccountBalances(tuple(rows))
    except InvalidReadingError as err:
        raise KalshiResponseError(f"{what}: {err}") from None


def _whole(value: Any, name: str, what: str, low: int, high: int) -> int:
    # bool is an int subclass in Python; a float like 12.0 is not a whole number here. Both refused.
    if type(value) is not int:
        raise KalshiResponseError(
            f"{what}: {name!r} must be a whole number, got {type(value).__name__} {_json_text(value)}"
        )
    if not low <= value <= high:
        raise KalshiResponseError(f"{what}: {name!r} is {_json_text(value)}, outside {low}..{high}")
    return value


def _parse_breakdown(raw: Any) -> tuple[ShardAmount, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidReadingError("it is not a list")
    entries = []
    for item in raw:
        if not isinstance(item, dict) or "exchange_index" not in item or "balance" not in item:
            raise InvalidReadingError(
                "an entry is not {'exchange_index': int, 'balance': 'dollars'}: " + _json_text(item)
            )
        entries.append(ShardAmount(item["exchange_index"], item["balance"]))
    return shard_amounts(entries)


def error_from_response(
    status: int,
    text: str,
    headers: Any = None,
    *,
    request_label: str = "",
    received_at: datetime | None = None,
) -> KalshiAPIError:
    """Build the matching exception from any error body Kalshi or a proxy sends.

    A 403 is Kalshi's refusal (:class:`KalshiPermissionError`) only with Kalshi's own JSON error,
    code ``permission_denied`` (wrapped or flat); any other 403, an HTML page from a proxy
    included, is a :class:`KalshiForeignRefusalError`.
    """
    code, message, details = _error_fields(text)
    if not message:
        message = f"HTTP {status} with no error message" + (f" from {request_label}" if request_label else "")
    kind = _ERROR_KINDS.get(status, KalshiServerError if status >= 500 else KalshiAPIError)
    if kind is KalshiPermissionError and code != KALSHI_REFUSAL_CODE:
        kind = KalshiForeignRefusalError
    return kind(
        status,
        code,
        message,
        details,
        hint=_hint(status, code, details, kind, request_label),
        retry_after=_retry_after(headers),
        received_at=received_at,
    )


#: The ``code`` of Kalshi's JSON error when it refuses a valid key an endpoint (seen live on the
#: total's path for keys of accounts that are not FCM members; see FIELD-NOTES).
KALSHI_REFUSAL_CODE = "permission_denied"


def _error_fields(text: str) -> tuple[str | None, str, Any]:
    """Find (code, message, details) in the wrapped, flat, string and ``msg`` shapes."""
    try:
        body = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        return None, _snippet(text), None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        message = body.get("message") or body.get("msg") or body.get("error") or ""
        code = body.get("code")
        return (
            str(code) if code not in (None, "") else None,
            _snippet(message if isinstance(message, str) else json.dumps(message)),
            body.get("details"),
        )
    if body is None:
        return None, "", None
    return None, _snippet(json.dumps(body)), None


_ERROR_KINDS: dict[int, type[KalshiAPIError]] = {
    401: KalshiAuthError,
    403: KalshiPermissionError,
    404: KalshiNotFoundError,
    429: KalshiRateLimitError,
}

_AUTH_HINTS = {
    "incorrect_api_key_signature": (
        "Kalshi rejected the signature: the private key does not belong to this key ID, or the key "
        "is for the other environment (demo keys work only on demo hosts, production keys only on "
        "production hosts)"
    ),
    "not_found": (
        "Kalshi does not know this API key ID on this host: check the key ID, and that the "
        "connection's environment/host matches where the key was created (demo or production)"
    ),
    "header_timestamp_expired": (
        "Kalshi found the request timestamp too far from its clock: this machine's clock is off; "
        "sync it with NTP"
    ),
    "signature_is_missing_from_headers": (
        "the request reached Kalshi without signature headers: a proxy may be stripping them"
    ),
}


def _hint(
    status: int, code: str | None, details: Any, kind: type[KalshiAPIError], request_label: str
) -> str | None:
    if kind is KalshiForeignRefusalError:
        what = f" to {request_label}" if request_label else ""
        return (
            f"Kalshi refuses a key with its JSON error code '{KALSHI_REFUSAL_CODE}'; this answer{what} "
            "is something else, so it is not taken as 'no FCM access'. Check the proxies and firewalls "
            "between the workers and Kalshi (HTTPS_PROXY, ALL_PROXY) and the connection's Base URL."
        )
    if status == 401:
        for marker in (details, code):
            if isinstance(marker, str) and marker.lower() in _AUTH_HINTS:
                return _AUTH_HINTS[marker.lower()] + "."
        return "Check the API key ID and private key in the Kalshi connection."
    if status == 403:
        return (
            "This endpoint is only for FCM members (Futures Commission Merchants): the API key is "
            "valid but its account may not read the total resting order value. Ask Kalshi to enable "
            "FCM access for this account, or use an FCM member's key."
        )
    if status == 404:
        return "Check the connection's base URL: it should end in /trade-api/v2."
    if status == 429:
        return "Kalshi's rate limit for this key was hit."
    return None


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), if there is one."""
    raw = headers.get("Retry-After") if headers is not None else None
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _json_text(value: Any) -> str:
    """A short JSON rendering for a message; never raises (huge ints, deep nesting)."""
    try:
        return _snippet(json.dumps(value, default=str))
    except (ValueError, RecursionError):
        return f"<{type(value).__name__} too large to show>"


def _snippet(text: Any) -> str:
    return shown(text)
