"""The one exception family every Kalshi failure is turned into.

Messages are written for the person reading a task log: what went wrong and what to do.
None of them ever carries key material or a request signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from kalshi_provider.display import shown


class KalshiError(Exception):
    """Base class for every error this provider raises."""

    #: Whether retrying the same request later may succeed.
    retryable: bool = False
    #: When the answer this error is about arrived (UTC), set by the hook; None when no answer
    #: did (a timeout, a refused connection) or the error is not about one.
    received_at: datetime | None = None


class KalshiConfigError(KalshiError):
    """The Airflow connection cannot be used as configured (key, key ID, host, extras)."""


class KalshiTransportError(KalshiError):
    """Kalshi could not be reached, or did not answer in time."""

    retryable = True


class KalshiResponseError(KalshiError):
    """Kalshi answered 2xx, but the body is not what the API documents."""


class KalshiAPIError(KalshiError):
    """Kalshi answered with an HTTP error status."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        details: Any = None,
        *,
        hint: str | None = None,
        retry_after: float | None = None,
        received_at: datetime | None = None,
    ) -> None:
        self.status = status
        self.received_at = received_at
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        # Code, details and message come from the server: shown() keeps them on one bounded line.
        label = f"Kalshi API error {self.status}"
        if self.code:
            label += f" ({shown(self.code, 60)}"
            details = shown(self.details, 100) if isinstance(self.details, str) else ""
            label += f", {details})" if details else ")"
        text = f"{label}: {shown(self.message)}"
        return f"{text}. {self.hint}" if self.hint else text


class KalshiAuthError(KalshiAPIError):
    """401: Kalshi did not accept the key ID, signature or timestamp."""


class KalshiPermissionError(KalshiAPIError):
    """403 with Kalshi's own refusal (its JSON error with code ``permission_denied``): the key is
    valid but may not use this endpoint (FCM members only)."""


class KalshiForeignRefusalError(KalshiAPIError):
    """A 403 whose body is not Kalshi's ``permission_denied`` error: an egress proxy, a firewall or
    another service refused the request before it reached Kalshi's API.

    Kept apart from :class:`KalshiPermissionError` on purpose: that one is recorded as "no FCM
    access" and the task succeeds, which would hide a network fault behind a quiet gap.
    """

    def _render(self) -> str:
        code = f" (code {shown(self.code, 60)})" if self.code else ""
        text = (
            f"HTTP 403{code} did not come from Kalshi's API: a proxy or firewall between this worker and "
            f"Kalshi refused the request? Its answer: {shown(self.message)}"
        )
        return f"{text}. {self.hint}" if self.hint else text


class KalshiNotFoundError(KalshiAPIError):
    """404: the path does not exist on this host (often a wrong base URL)."""


class KalshiRateLimitError(KalshiAPIError):
    """429: Kalshi's token bucket for this key is empty."""

    retryable = True


class KalshiServerError(KalshiAPIError):
    """5xx: a fault on Kalshi's side or a proxy in front of it."""

    retryable = True


class KalshiRedirectError(KalshiError):
    """A 3xx answer. Kalshi never redirects an API call, so whatever answered is not Kalshi;
    the redirect is never followed, and the signed request goes nowhere else."""

    def __init__(self, status: int, location_host: str | None, request_label: str, base_url: str) -> None:
        self.status = status
        self.location_host = location_host
        where = f"to host {location_host}" if location_host else "without a usable Location"
        super().__init__(
            f"{base_url} answered {request_label} with HTTP {status}, a redirect {where}. Kalshi never "
            "redirects an API call, so the redirect was not followed and nothing was sent there: check "
            "the connection's Base URL (a proxy, a captive portal or another service answered)."
        )


class KalshiExchangePausedError(KalshiError):
    """Kalshi's ``/exchange/status`` said the exchange is not active (maintenance) after a call
    failed: no retry is sent. ``pause`` (an ``exchange_status.ExchangePause``) says why and when
    Kalshi expects to resume; a fetch records it instead of failing."""

    def __init__(self, pause: Any) -> None:
        self.pause = pause
        self.received_at = pause.observed_at
        super().__init__(pause.describe())


#: Errors that no amount of retrying fixes: the task should fail at once.
PERMANENT_ERRORS: tuple[type[KalshiError], ...] = (
    KalshiConfigError,
    KalshiAuthError,
    KalshiPermissionError,
    KalshiForeignRefusalError,
    KalshiNotFoundError,
    KalshiRedirectError,
)


@contextmanager
def failing_fast() -> Iterator[None]:
    """Inside a task: turn an error of ``PERMANENT_ERRORS`` into Airflow's ``AirflowFailException``.

    Airflow then fails the task at once, without spending its retries, on every Airflow 3 line.
    The message is the original one (which never holds key material), and the original error
    stays chained as the cause, so the task log still shows what raised it.
    """
    try:
        yield
    except PERMANENT_ERRORS as err:
        from kalshi_provider.version_compat import AirflowFailException

        raise AirflowFailException(str(err)) from err


class KalshiDataQualityError(KalshiError):
    """The warehouse table misses expected hours or holds values that break the quality rules."""
