"""KalshiHook: signed, retried calls to Kalshi's Trade API v2 from an Airflow connection."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import requests
import tenacity

from kalshi_provider.connection import (
    BASE_URLS,
    KalshiSettings,
    private_key_from_connection,
    settings_from_connection,
)
from kalshi_provider.exceptions import (
    KalshiAPIError,
    KalshiError,
    KalshiTransportError,
)
from kalshi_provider.responses import (
    RestingOrderValue,
    decode_json,
    error_from_response,
    parse_resting_order_value,
)
from kalshi_provider.signing import KalshiAuth
from kalshi_provider.version_compat import AIRFLOW_V_3_2_PLUS, BaseHook

TOTAL_RESTING_ORDER_VALUE_PATH = "/portfolio/summary/total_resting_order_value"
BALANCE_PATH = "/portfolio/balance"

#: Upper bound for one back-off sleep, and for all attempts of one call together (seconds).
MAX_BACKOFF = 20.0
MAX_TOTAL_RETRY_TIME = 120.0
INITIAL_BACKOFF = 0.5


class KalshiHook(BaseHook):
    """
    Interact with Kalshi's Trade API v2.

    Every request is signed with the connection's private key (RSA-PSS or Ed25519, Kalshi's
    scheme), and connection errors, timeouts, 429 and 5xx answers are retried with exponential
    back-off and jitter; each attempt is signed afresh.

    :param kalshi_conn_id: The Airflow connection holding the API key ID (login) and private key.
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
            from kalshi_provider.hooks.legacy_form import connection_form_widgets

            return connection_form_widgets()

        @classmethod
        def get_ui_field_behaviour(cls) -> dict[str, Any]:
            """Hidden, relabelled and hinted fields, from the provider info's ``ui-field-behaviour``."""
            from kalshi_provider.hooks.legacy_form import ui_field_behaviour

            return ui_field_behaviour()

    def __init__(self, kalshi_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kalshi_conn_id = kalshi_conn_id

    @cached_property
    def _connection(self):
        return self.get_connection(self.kalshi_conn_id)

    @cached_property
    def settings(self) -> KalshiSettings:
        """The connection's validated settings; raises ``KalshiConfigError`` with what to fix."""
        return settings_from_connection(self._connection)

    def get_conn(self) -> requests.Session:
        """A ``requests.Session`` that signs every request; built once and reused (keep-alive)."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        settings = self.settings
        key = private_key_from_connection(self._connection)  # parsed once per hook
        session = requests.Session()
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
    ) -> Any:
        """
        Send a signed request to ``path`` (relative to the base URL) and return the decoded JSON.

        :raises KalshiError: a subclass that says what failed; see ``kalshi_provider.exceptions``.
        """
        url = self.settings.base_url + "/" + path.lstrip("/")
        label = f"{method.upper()} {path}"
        response = self._retrying(label)(self._send_once, method.upper(), url, params, json, label)
        return decode_json(response.text, label) if response.content else None

    def get_resting_order_value(self) -> RestingOrderValue:
        """The total resting order value (cents) and its per-exchange breakdown, checked."""
        return parse_resting_order_value(self.request("GET", TOTAL_RESTING_ORDER_VALUE_PATH))

    def get_total_resting_order_value(self) -> int:
        """Total value of the account's resting orders, in cents (FCM members only)."""
        return self.get_resting_order_value().total_cents

    def test_connection(self) -> tuple[bool, str]:
        """Sign a ``GET /portfolio/balance``: the one authenticated call every key may make."""
        try:
            self.request("GET", BALANCE_PATH)
        except KalshiError as err:
            return False, str(err)
        except Exception as err:  # the UI must get an answer, never a stack trace
            return False, f"Unexpected error: {type(err).__name__}: {err}"
        settings = self.settings
        # Name the environment only when it chose the host; a custom Base URL overrides it.
        where = settings.base_url
        if settings.base_url == BASE_URLS[settings.environment]:
            where = f"Kalshi {settings.environment} ({settings.base_url})"
        return True, f"Connected to {where}: key {settings.key_id} signed a request that Kalshi accepted."

    def _send_once(
        self, method: str, url: str, params: dict[str, Any] | None, body: Any, label: str
    ) -> requests.Response:
        """One attempt. ``requests`` runs the auth per call, so each attempt is signed afresh."""
        try:
            response = self._session.request(
                method, url, params=params, json=body, timeout=self.settings.timeout
            )
        except requests.Timeout:
            raise KalshiTransportError(
                f"Kalshi did not answer {label} within {self.settings.timeout:g} s "
                f"({self.settings.base_url}); raise the connection's 'timeout' extra if this persists"
            ) from None
        except requests.ConnectionError as err:
            raise KalshiTransportError(
                f"Could not reach Kalshi at {self.settings.base_url} for {label}: "
                f"{_root_cause(err)}. Check the host, DNS and network access."
            ) from None
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.text, response.headers, request_label=label
            )
        return response

    def _retrying(self, label: str) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda err: isinstance(err, KalshiError) and err.retryable),
            stop=tenacity.stop_after_attempt(self.settings.max_retries + 1)
            | tenacity.stop_before_delay(MAX_TOTAL_RETRY_TIME),
            wait=_wait_with_retry_after,
            before_sleep=lambda state: self._log_retry(label, state),
            reraise=True,
        )

    def _log_retry(self, label: str, state: tenacity.RetryCallState) -> None:
        self.log.warning(
            "Kalshi %s failed (%s); attempt %d of %d, retrying in %.1f s",
            label,
            state.outcome.exception() if state.outcome else "unknown error",
            state.attempt_number,
            self.settings.max_retries + 1,
            state.upcoming_sleep,
        )


# Exponential back-off plus up to 1 s of jitter, never above MAX_BACKOFF. Built from the two classic
# strategies because wait_exponential_jitter's first parameter is 'initial' before tenacity 9.2
# (what Airflow 3.0 and 3.1 resolve) and 'multiplier' after it, where 'initial' warns.
_exponential_jitter = tenacity.wait_exponential(
    multiplier=INITIAL_BACKOFF, max=MAX_BACKOFF - 1
) + tenacity.wait_random(0, 1)


def _wait_with_retry_after(state: tenacity.RetryCallState) -> float:
    """Exponential back-off with jitter, but never shorter than a Retry-After the server sent."""
    backoff = _exponential_jitter(state)
    err = state.outcome.exception() if state.outcome else None
    retry_after = err.retry_after if isinstance(err, KalshiAPIError) else None
    return max(backoff, retry_after) if retry_after is not None else backoff


def _root_cause(err: BaseException) -> str:
    """The innermost reason (e.g. 'Connection refused') instead of urllib3's nested repr."""
    while err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__):
        err = err.__cause__ or err.__context__
    reason = getattr(err, "reason", None) or err
    return str(reason).split("] ")[-1] if "]" in str(reason) else str(reason)
