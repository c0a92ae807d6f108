"""KalshiHook: signed, retried calls to Kalshi's Trade API v2 from an Airflow connection."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import requests
import tenacity

from kalshi_provider import transport
from kalshi_provider.connection import (
    BASE_URLS,
    ValidatedConnection,
    private_key_from_connection,
    validate_connection,
)
from kalshi_provider.display import shown
from kalshi_provider.endpoints import (
    BALANCE_ENDPOINT,
    SCHEDULE_ENDPOINT,
    STATUS_ENDPOINT,
    SUBACCOUNT_BALANCES_ENDPOINT,
    TOTAL_ENDPOINT,
)
from kalshi_provider.exceptions import KalshiAPIError, KalshiError, KalshiExchangePausedError
from kalshi_provider.exchange_status import (
    MAX_REASON_LENGTH,
    ExchangePause,
    ExchangeStatus,
    MaintenanceWindow,
    parse_exchange_status,
    parse_maintenance_windows,
)
from kalshi_provider.limits import (
    BACKOFF_JITTER_SECONDS,
    CALL_DEADLINE_SECONDS,
    EXCHANGE_READ_SECONDS,
    INITIAL_BACKOFF_SECONDS,
    MAX_BACKOFF_SECONDS,
    MAX_BODY_BYTES,
    MAX_RETRY_AFTER_SECONDS,
    MAX_SCHEDULE_BYTES,
    SUBACCOUNTS_CALL_DEADLINE_SECONDS,
)
from kalshi_provider.responses import (
    Balance,
    RestingOrderValue,
    SubaccountBalances,
    decode_json,
    error_from_response,
    parse_balance,
    parse_resting_order_value,
    parse_subaccount_balances,
)
from kalshi_provider.signing import KalshiAuth
from kalshi_provider.version_compat import AIRFLOW_V_3_2_PLUS, BaseHook

_Value = TypeVar("_Value", RestingOrderValue, Balance, SubaccountBalances)


class KalshiHook(BaseHook):
    """
    Interact with Kalshi's Trade API v2.

    Every request is signed with the connection's private key (RSA-PSS or Ed25519, Kalshi's
    scheme). Connection errors, timeouts, truncated answers, 429 and 5xx are retried with
    exponential back-off and jitter, each attempt signed afresh; after each such failure the hook
    reads ``GET /exchange/status`` (unsigned), and if Kalshi says the exchange is not active
    (maintenance) it sends no retry and raises
    :class:`~kalshi_provider.exceptions.KalshiExchangePausedError`. Every call is bounded: each
    attempt by the connection's ``timeout`` (wall clock, body included), the call by
    ``CALL_DEADLINE_SECONDS``, the answer by ``MAX_BODY_BYTES`` (see ``kalshi_provider.limits``);
    redirects are never followed.

    :param kalshi_conn_id: The Airflow connection holding the API key ID (login) and private key.
    :param max_attempts: Most attempts per call; lowers the connection's ``max_retries`` + 1,
        never raises it (a task uses it to bound its requests across its own retries).

    .. code-block:: python

        from kalshi_provider.hooks.kalshi import KalshiHook

        hook = KalshiHook("kalshi_default")
        value = hook.get_resting_order_value()  # FCM members only; else KalshiPermissionError
        balance = hook.get_balance()  # every key may read its balance
        print(value.total_cents, balance.balance_dollars, value.received_at)
        status = hook.request("GET", "/exchange/status", max_attempts=1)  # any endpoint, signed
    """

    conn_name_attr = "kalshi_conn_id"
    default_conn_name = "kalshi_default"
    conn_type = "kalshi"
    hook_name = "Kalshi"

    if not AIRFLOW_V_3_2_PLUS:
        # Airflow 3.0 and 3.1 build the connection form from these two methods; 3.2 and later
        # read the same declaration from ``conn-fields`` and warn about hooks that define them.

        @classmethod
        def get_connection_form_widgets(cls) -> dict[str, Any]:
            """The form's extra fields, from the provider info's ``conn-fields``."""
            from kalshi_provider.legacy_connection_form import connection_form_widgets

            return connection_form_widgets()

        @classmethod
        def get_ui_field_behaviour(cls) -> dict[str, Any]:
            """Hidden, relabelled and hinted fields, from the provider info's ``ui-field-behaviour``."""
            from kalshi_provider.legacy_connection_form import ui_field_behaviour

            return ui_field_behaviour()

    def __init__(
        self, kalshi_conn_id: str = default_conn_name, *, max_attempts: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.kalshi_conn_id = kalshi_conn_id
        self.max_attempts = max_attempts

    @cached_property
    def _connection(self):
        return self.get_connection(self.kalshi_conn_id)

    @cached_property
    def settings(self) -> ValidatedConnection:
        """The connection's validated settings; raises ``KalshiConfigError`` with what to fix."""
        return validate_connection(self._connection)

    def get_conn(self) -> requests.Session:
        """A ``requests.Session`` that signs every request; built once and reused (keep-alive)."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        settings = self.settings
        key = private_key_from_connection(self._connection)  # parsed once per hook
        session = transport.new_session()
        session.auth = KalshiAuth(settings.key_id, key)
        session.headers["Accept"] = "application/json"
        session.headers["User-Agent"] = "airflow-provider-kalshi"
        return session

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        max_attempts: int | None = None,
        exchange_status: bool = True,
    ) -> Any:
        """
        Send a signed request to ``path`` (relative to the base URL) and return the decoded JSON.

        :param method: The HTTP method, e.g. ``"GET"``.
        :param path: The endpoint's path below the base URL, e.g. ``"/portfolio/balance"``.
        :param params: Query parameters, if any.
        :param json: A body to send as JSON, if any.
        :param max_attempts: Most attempts for this call (further lowers the hook's own limit).
        :param exchange_status: Read ``/exchange/status`` after a retryable failure, and raise
            ``KalshiExchangePausedError`` when the exchange is not active (False: never read it).
        :raises KalshiError: a subclass that says what failed; see ``kalshi_provider.exceptions``.
        """
        answer = self._exchange(
            method, path, params=params, json=json, max_attempts=max_attempts, exchange_status=exchange_status
        )
        return decode_json(answer.body, f"{method.upper()} {path}") if answer.body else None

    def get_resting_order_value(self) -> RestingOrderValue:
        """The total resting order value (cents) and its per-exchange breakdown, checked, with
        ``received_at`` (FCM members only: for other keys Kalshi's refusal is a
        :class:`~kalshi_provider.exceptions.KalshiPermissionError`)."""
        return self._read(TOTAL_ENDPOINT, parse_resting_order_value)

    def get_balance(self) -> Balance:
        """The account's balance (cents and exact dollars), portfolio value and cash per shard,
        checked, with ``received_at``.

        Every key may read it, FCM member or not.
        """
        return self._read(BALANCE_ENDPOINT, parse_balance)

    def get_exchange_status(self) -> ExchangeStatus:
        """``GET /exchange/status``, unsigned, one attempt within ``EXCHANGE_READ_SECONDS``, checked.

        :raises KalshiError: the status could not be read or is not Kalshi's documented shape.
        """
        return self._exchange_status(math.inf)

    def _exchange_status(self, not_after: float) -> ExchangeStatus:
        answer = self._public_get(STATUS_ENDPOINT, MAX_BODY_BYTES, not_after)
        status = parse_exchange_status(decode_json(answer.body, f"GET {STATUS_ENDPOINT}"))
        return dataclasses.replace(status, received_at=answer.received_at)

    def get_maintenance_windows(self) -> tuple[MaintenanceWindow, ...]:
        """The maintenance windows ``GET /exchange/schedule`` publishes, in UTC: unsigned, one attempt
        within ``EXCHANGE_READ_SECONDS``, at most ``MAX_SCHEDULE_BYTES``, every window checked.

        :raises KalshiError: the schedule could not be read, or one of its windows is not believable.
        """
        answer = self._public_get(SCHEDULE_ENDPOINT, MAX_SCHEDULE_BYTES)
        return parse_maintenance_windows(decode_json(answer.body, f"GET {SCHEDULE_ENDPOINT}"))

    @cached_property
    def _public_session(self) -> requests.Session:
        """A session without the signing auth: Kalshi's exchange endpoints need no key, so none is sent."""
        session = transport.new_session()
        session.headers["Accept"] = "application/json"
        session.headers["User-Agent"] = "airflow-provider-kalshi"
        return session

    def _public_get(self, path: str, max_body: int, not_after: float = math.inf) -> transport.Answer:
        """One unsigned GET within ``EXCHANGE_READ_SECONDS`` (or the connection's shorter timeout),
        and never past ``not_after`` (``time.monotonic()``)."""
        settings = self.settings
        timeout = min(settings.timeout, EXCHANGE_READ_SECONDS)
        label = f"GET {path}"
        answer = transport.exchange(
            self._public_session,
            "GET",
            settings.base_url + path,
            label=label,
            timeout=timeout,
            deadline=min(time.monotonic() + timeout, not_after),
            max_body=max_body,
        )
        return _refuse_error_status(answer, label)

    def _stop_if_exchange_paused(self, label: str, failure: KalshiError, call_deadline: float) -> None:
        """After a retryable failure: raise ``KalshiExchangePausedError`` if Kalshi says its exchange
        is not active. A status that cannot be read changes nothing: the call retries as before.
        The read ends by the call's deadline too, so a call stays within ``CALL_DEADLINE_SECONDS``."""
        try:
            status = self._exchange_status(call_deadline)
        except KalshiError as err:
            self.log.warning("Could not read Kalshi's exchange status after %s failed: %s", label, err)
            return
        if status.exchange_active:
            return
        trading = {True: "true", False: "false", None: "not given"}[status.trading_active]
        reason = (
            f"Kalshi's exchange is paused: {label} failed ({shown(failure, 200)}) and GET {STATUS_ENDPOINT} "
            f"answered exchange_active false (trading_active {trading}); no further signed request was sent"
        )
        assert status.received_at is not None
        pause = ExchangePause(reason[:MAX_REASON_LENGTH], status.received_at, status.estimated_resume_time)
        self.log.warning("%s", pause.describe())
        raise KalshiExchangePausedError(pause) from failure

    def get_subaccount_balances(self) -> SubaccountBalances:
        """Every subaccount's balance per exchange shard, the primary's (0) included, checked, with
        ``received_at``. ``get_balance`` reads one subaccount (the primary, unless the key is
        restricted to another); a firm trading through subaccounts needs this for all of them.

        A key restricted to one subaccount may not call it: Kalshi's 403 is a
        :class:`~kalshi_provider.exceptions.KalshiPermissionError`.
        """
        return self._read(
            SUBACCOUNT_BALANCES_ENDPOINT,
            parse_subaccount_balances,
            deadline_seconds=SUBACCOUNTS_CALL_DEADLINE_SECONDS,
        )

    def _read(
        self, path: str, parse: Callable[[Any], _Value], *, deadline_seconds: float | None = None
    ) -> _Value:
        """GET ``path`` and parse the answer into a value stamped with when the answer arrived.

        Every endpoint reader goes through here, so no value (and no error about an answer) can
        carry a moment from before its answer arrived: the stamp is the transport's, taken after
        the whole answer was read.
        """
        answer = self._exchange("GET", path, deadline_seconds=deadline_seconds)
        try:
            value = parse(decode_json(answer.body, f"GET {path}") if answer.body else None)
        except KalshiError as err:
            err.received_at = answer.received_at
            raise
        self._report_read(path)
        return dataclasses.replace(value, received_at=answer.received_at)

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        max_attempts: int | None = None,
        exchange_status: bool = True,
        deadline_seconds: float | None = None,
    ) -> transport.Answer:
        """The answer to one call, after all the attempts it needed."""
        settings = self.settings
        url = settings.base_url + "/" + path.lstrip("/")
        label = f"{method.upper()} {path}"
        attempts = settings.max_retries + 1
        for limit in (self.max_attempts, max_attempts):
            if limit is not None:
                attempts = max(1, min(attempts, limit))
        # The module's bound, read at call time (None: CALL_DEADLINE_SECONDS), or the caller's.
        seconds = CALL_DEADLINE_SECONDS if deadline_seconds is None else deadline_seconds
        deadline = time.monotonic() + seconds
        return self._retrying(label, attempts, deadline)(
            self._send_once, method.upper(), url, params, json, label, deadline, exchange_status
        )

    def _report_read(self, path: str) -> None:
        """Hook-level lineage: the endpoint this hook read, as an asset (``endpoint_assets``)."""
        from kalshi_provider.endpoint_assets import kalshi_asset_uri
        from kalshi_provider.hook_lineage import report_lineage

        report_lineage(self, inputs=[kalshi_asset_uri(self.settings.base_url, path)])

    def get_total_resting_order_value(self) -> int:
        """Total value of the account's resting orders, in cents (FCM members only)."""
        return self.get_resting_order_value().total_cents

    def test_connection(self) -> tuple[bool, str]:
        """Sign a ``GET /portfolio/balance``: the one authenticated call every key may make.

        It runs in the API server, so it makes a single attempt and reads nothing else (not even
        the exchange's status): it answers within the connection's ``timeout``, whatever the
        server at the other end does.
        """
        try:
            self.request("GET", BALANCE_ENDPOINT, max_attempts=1, exchange_status=False)
        except KalshiError as err:
            return False, str(err)
        except Exception as err:  # the UI must get an answer, never a stack trace
            # Only the type: the text of an unexpected error can hold a connection field's value.
            return False, f"Unexpected error ({type(err).__name__}) while testing the Kalshi connection"
        settings = self.settings
        # Name the environment only when it chose the host; a custom Base URL overrides it.
        where = settings.base_url
        if settings.base_url == BASE_URLS[settings.environment]:
            where = f"Kalshi {settings.environment} ({settings.base_url})"
        return True, f"Connected to {where}: key {settings.key_id} signed a request that Kalshi accepted."

    def _send_once(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        body: Any,
        label: str,
        call_deadline: float,
        exchange_status: bool = True,
    ) -> transport.Answer:
        """One attempt. ``requests`` runs the auth per call, so each attempt is signed afresh."""
        timeout = self.settings.timeout
        try:
            answer = transport.exchange(
                self._session,
                method,
                url,
                label=label,
                timeout=timeout,
                deadline=min(time.monotonic() + timeout, call_deadline),
                params=params,
                json=body,
            )
            _refuse_error_status(answer, label)
        except KalshiError as err:
            if err.retryable and exchange_status:
                self._stop_if_exchange_paused(label, err, call_deadline)
            raise
        return answer

    def _retrying(self, label: str, attempts: int, deadline: float) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda err: isinstance(err, KalshiError) and err.retryable),
            # The wait is computed before the stop check: a wait that would pass the call's
            # deadline (or a Retry-After beyond the cap, which waits for ever) ends the retries.
            stop=tenacity.stop_after_attempt(attempts)
            | (lambda state: time.monotonic() + (state.upcoming_sleep or 0) >= deadline),
            wait=_wait_with_retry_after,
            before_sleep=lambda state: self._log_retry(label, attempts, state),
            reraise=True,
        )

    def _log_retry(self, label: str, attempts: int, state: tenacity.RetryCallState) -> None:
        self.log.warning(
            "Kalshi %s failed (%s); attempt %d of %d, retrying in %.1f s",
            label,
            state.outcome.exception() if state.outcome else "unknown error",
            state.attempt_number,
            attempts,
            state.upcoming_sleep,
        )


# Exponential back-off plus jitter, never above MAX_BACKOFF_SECONDS. Built from the two classic
# strategies because wait_exponential_jitter's first parameter is 'initial' before tenacity 9.2
# (what Airflow 3.0 and 3.1 resolve) and 'multiplier' after it, where 'initial' warns.
_exponential_jitter = tenacity.wait_exponential(
    multiplier=INITIAL_BACKOFF_SECONDS, max=MAX_BACKOFF_SECONDS - BACKOFF_JITTER_SECONDS
) + tenacity.wait_random(0, BACKOFF_JITTER_SECONDS)


def _refuse_error_status(answer: transport.Answer, label: str) -> transport.Answer:
    """The answer, or the :class:`KalshiError` its 4xx/5xx status stands for (stamped on arrival)."""
    if answer.status >= 400:
        raise error_from_response(
            answer.status,
            answer.body.decode("utf-8", "replace"),
            answer.headers,
            request_label=label,
            received_at=answer.received_at,
        )
    return answer


def _wait_with_retry_after(state: tenacity.RetryCallState) -> float:
    """Exponential back-off with jitter, but never shorter than a Retry-After the server sent;
    a Retry-After beyond ``MAX_RETRY_AFTER_SECONDS`` is not waited for in this call."""
    backoff = _exponential_jitter(state)
    err = state.outcome.exception() if state.outcome else None
    retry_after = err.retry_after if isinstance(err, KalshiAPIError) else None
    if retry_after is None:
        return backoff
    return max(backoff, retry_after) if retry_after <= MAX_RETRY_AFTER_SECONDS else math.inf
