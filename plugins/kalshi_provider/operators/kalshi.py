"""Operators that read one Kalshi account: the total resting order value, its balance, its subaccounts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from kalshi_provider.exceptions import KalshiError, KalshiExchangePausedError
    from kalshi_provider.hooks.kalshi import KalshiHook
    from kalshi_provider.readings import RestingOrderValue, SubaccountsReading


class _KalshiReadingOperator(BaseOperator):
    """What both operators share: the connection, the request budget and the reading's try number."""

    template_fields: Sequence[str] = ("kalshi_conn_id",)
    ui_color = "#00d991"
    #: Kalshi calls each try makes: the request budget is shared among them.
    calls_per_try = 1

    def __init__(
        self, *, kalshi_conn_id: str = "kalshi_default", max_requests: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if max_requests is not None and max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}")
        self.kalshi_conn_id = kalshi_conn_id
        self.max_requests = max_requests

    @property
    def attempts_per_try(self) -> int | None:
        """The hook's attempt limit for each call of each try, from ``max_requests``, the task's
        retries and the calls a try makes."""
        if self.max_requests is None:
            return None
        return max(1, self.max_requests // (((self.retries or 0) + 1) * self.calls_per_try))

    def _paused(
        self, hook: KalshiHook, paused: KalshiExchangePausedError, context: Context
    ) -> dict[str, Any]:
        """The record of a fetch that stopped because Kalshi's exchange is paused: no further signed
        request is sent in this try, and the load records the pause instead of failing."""
        from kalshi_provider.readings import AccountReading

        self.log.warning("Kalshi account %s: nothing read, %s", self.kalshi_conn_id, paused)
        reading = AccountReading(
            self.kalshi_conn_id,
            paused.pause.observed_at,
            None,
            try_number=self._try_number(context),
            source=hook.settings.base_url,
            exchange_paused=paused.pause,
        )
        return reading.to_xcom()

    def _hook(self) -> KalshiHook:
        # Imported here, not at module level: DAG files import this module at every parse, and
        # the hook pulls in requests, tenacity and cryptography.
        from kalshi_provider.hooks.kalshi import KalshiHook

        return KalshiHook(kalshi_conn_id=self.kalshi_conn_id, max_attempts=self.attempts_per_try)

    @staticmethod
    def _try_number(context: Context) -> int | None:
        ti = context.get("ti") if hasattr(context, "get") else None
        number = getattr(ti, "try_number", None)
        return number if type(number) is int else None

    @staticmethod
    def _last_try(context: Context) -> bool:
        """Whether Airflow will not retry this try (its try number is past ``max_tries``)."""
        ti = context.get("ti") if hasattr(context, "get") else None
        number, most = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
        return type(number) is int and type(most) is int and number > most


class KalshiTotalRestingOrderValueOperator(_KalshiReadingOperator):
    """
    Read ``GET /portfolio/summary/total_resting_order_value`` for one account.

    Returns :meth:`kalshi_provider.readings.AccountReading.to_xcom`: a JSON-safe record with the
    account (the connection id), the total in cents, the per-exchange breakdown as exact decimal
    strings and ``observed_at``, when Kalshi's answer arrived (UTC). It holds no secret. The value
    is a live reading of *now*, not a figure for the run's logical date.

    Errors no retry can fix (a misconfigured connection, 401, 403, 404) fail the task at once,
    without using its retries; others (timeouts, 429, 5xx) use them, unless Kalshi's exchange
    status then says the exchange is paused (maintenance): the record then holds only that pause
    (``exchange_paused``: why, and Kalshi's estimated resume time) and the task succeeds.

    :param kalshi_conn_id: Kalshi connection to use; it also names the account in the record.
    :param max_requests: Most signed requests this task sends, all its tries together: each try
        gets ``max_requests // (retries + 1)`` attempts (at least one), or fewer when the
        connection's ``max_retries`` says so. None: the connection alone decides.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from kalshi_provider.exceptions import KalshiExchangePausedError, failing_fast
        from kalshi_provider.readings import AccountReading

        hook = self._hook()
        try:
            with failing_fast():  # a refused key or a bad connection: no task retry can fix it
                value = hook.get_resting_order_value()
        except KalshiExchangePausedError as paused:
            return self._paused(hook, paused, context)
        reading = AccountReading(
            self.kalshi_conn_id,
            value.received_at,
            value,
            try_number=self._try_number(context),
            source=hook.settings.base_url,
        )
        _log_total(self, value)
        return reading.to_xcom()


class KalshiAccountReadingOperator(_KalshiReadingOperator):
    """
    Read one account's total resting order value, its balance (``GET /portfolio/balance``) and
    every subaccount's balance (``GET /portfolio/subaccounts/balances``).

    Three signed calls per try, in this order: the total, the balance, the subaccounts. The
    balance reads one subaccount (the primary, or a restricted key's own); the third call lists
    them all. A key restricted to one subaccount is refused that list (Kalshi's 403): the refusal
    is recorded in the reading, as the total's is, and costs nothing else. An answer that is not
    Kalshi's, or a call that still fails on the task's last try, is left out with the reason, as
    the balance's is. When a call fails with a retryable error and Kalshi's ``/exchange/status``
    then says the exchange is not active (maintenance), no further signed request is sent: a
    pause on the total gives a record holding only the pause (``exchange_paused``), one on the
    balance or the subaccounts leaves that answer, and any after it, out with the pause as the
    reason. Returns
    :meth:`kalshi_provider.readings.AccountReading.to_xcom` with both, each with the moment its
    answer arrived. For a key whose account is not an FCM member, Kalshi refuses the total (403
    with its JSON error ``permission_denied``): that refusal is recorded in the reading
    (``not_permitted``) and the balance is still read, so the task succeeds. Any other 403 (a
    proxy's or firewall's page) fails the task at once: it says nothing about FCM access. The
    balance never costs the total: an answer that is not Kalshi's documented body is left out
    (with the reason), and so is a balance that still fails on the task's last try (a timeout,
    429 or 5xx, retried until then like any). Other errors are as for
    :class:`KalshiTotalRestingOrderValueOperator`: no retry for those no retry can fix (a 403 on
    the balance, which every key may read, among them), task retries for the rest.

    :param kalshi_conn_id: Kalshi connection to use; it also names the account in the record.
    :param max_requests: Most signed requests this task sends, the three calls and all its tries
        together: each call of each try gets ``max_requests // ((retries + 1) * 3)`` attempts (at
        least one), or fewer when the connection's ``max_retries`` says so. None: the connection
        alone decides.
    """

    calls_per_try = 3

    def _read_subaccounts(self, hook: KalshiHook, context: Context) -> SubaccountsReading:
        """The third call: every subaccount's balance, or why it is left out (it never costs the
        total or the balance); a failure only a task retry can mend is raised before the last try."""
        from kalshi_provider.exceptions import (
            KalshiError,
            KalshiExchangePausedError,
            KalshiPermissionError,
            KalshiResponseError,
        )
        from kalshi_provider.readings import MAX_NOTE_LENGTH, SubaccountsReading

        try:
            listed = hook.get_subaccount_balances()
            return SubaccountsReading(listed.received_at, listed)
        except KalshiPermissionError as refused:  # a key restricted to one subaccount
            return SubaccountsReading(_arrival(refused), not_permitted=str(refused)[:MAX_NOTE_LENGTH])
        except (KalshiResponseError, KalshiExchangePausedError) as unusable:
            return SubaccountsReading(_arrival(unusable), problem=str(unusable)[:MAX_NOTE_LENGTH])
        except KalshiError as failed:
            if not (failed.retryable and self._last_try(context)):
                raise
            problem = f"the subaccounts could not be read on the task's last try: {failed}"
            return SubaccountsReading(_arrival(failed), problem=problem[:MAX_NOTE_LENGTH])

    def execute(self, context: Context) -> dict[str, Any]:
        from kalshi_provider.exceptions import (
            KalshiError,
            KalshiExchangePausedError,
            KalshiPermissionError,
            KalshiResponseError,
            failing_fast,
        )
        from kalshi_provider.readings import (
            MAX_NOTE_LENGTH,
            AccountReading,
            BalanceReading,
            SubaccountsReading,
        )

        hook = self._hook()
        value = not_permitted = pause = None
        # Every moment below is when an answer arrived, as the hook stamped it: never one taken
        # before a request was sent.
        with failing_fast():
            try:
                value = hook.get_resting_order_value()
                observed_at = value.received_at
            except KalshiPermissionError as refused:  # not an FCM member: the balance still counts
                not_permitted = str(refused)[:MAX_NOTE_LENGTH]
                observed_at = _arrival(refused)
            except KalshiExchangePausedError as paused:  # maintenance: no further signed request
                return self._paused(hook, paused, context)
            try:
                balance_value = hook.get_balance()
                balance = BalanceReading(balance_value.received_at, balance_value)
            except KalshiResponseError as unusable:
                balance = BalanceReading(_arrival(unusable), problem=str(unusable)[:MAX_NOTE_LENGTH])
            except KalshiExchangePausedError as paused:  # the total stands; the pause is the reason
                balance = BalanceReading(_arrival(paused), problem=str(paused)[:MAX_NOTE_LENGTH])
                pause = paused
            except KalshiError as failed:
                if not (failed.retryable and self._last_try(context)):
                    raise  # a task retry reads both again (or no retry can fix it)
                problem = f"the balance could not be read on the task's last try: {failed}"
                balance = BalanceReading(_arrival(failed), problem=problem[:MAX_NOTE_LENGTH])
            if pause is not None:  # no further signed request while the exchange is paused
                subaccounts = SubaccountsReading(_arrival(pause), problem=str(pause)[:MAX_NOTE_LENGTH])
            else:
                subaccounts = self._read_subaccounts(hook, context)
        reading = AccountReading(
            self.kalshi_conn_id,
            observed_at,
            value,
            balance=balance,
            not_permitted=not_permitted,
            try_number=self._try_number(context),
            source=hook.settings.base_url,
            subaccounts=subaccounts,
        )
        if value is None:
            self.log.info(
                "Kalshi account %s: Kalshi did not permit the total resting order value (the key's "
                "account is not an FCM member); the balance is recorded without it",
                self.kalshi_conn_id,
            )
        else:
            _log_total(self, value)
        if balance.value is None:
            self.log.warning(
                "Kalshi account %s: the balance was left out, the rest is kept: %s",
                self.kalshi_conn_id,
                balance.problem,
            )
        else:
            self.log.info(
                "Kalshi account %s: balance %d cents, portfolio value %d cents (%d exchange(s))",
                self.kalshi_conn_id,
                balance.value.balance_cents,
                balance.value.portfolio_value_cents,
                len(balance.value.breakdown),
            )
            _warn_left_out(self, "balance", balance.value.breakdown_problem)
        _log_subaccounts(self, subaccounts)
        return reading.to_xcom()


def _log_subaccounts(operator: BaseOperator, reading: SubaccountsReading) -> None:
    if reading.value is not None:
        totals = reading.value.total_by_subaccount()
        operator.log.info(
            "Kalshi account %s: %d subaccount(s), balances summing to %s dollars",
            operator.kalshi_conn_id,
            len(totals),
            sum(totals.values(), Decimal(0)),
        )
    elif reading.not_permitted is not None:
        operator.log.info(
            "Kalshi account %s: Kalshi does not let this key list subaccounts (%s)",
            operator.kalshi_conn_id,
            reading.not_permitted,
        )
    else:
        operator.log.warning(
            "Kalshi account %s: the subaccounts were left out, the rest is kept: %s",
            operator.kalshi_conn_id,
            reading.problem,
        )


def _arrival(err: KalshiError) -> datetime:
    """When the answer a failed call got arrived; for a call that got none (a timeout), now, when
    it gave up. Either way after the request was sent."""
    return err.received_at or datetime.now(timezone.utc)


def _log_total(operator: BaseOperator, value: RestingOrderValue) -> None:
    operator.log.info(
        "Kalshi account %s: total resting order value %d cents (%d exchange(s) in the breakdown)",
        operator.kalshi_conn_id,
        value.total_cents,
        len(value.breakdown),
    )
    _warn_left_out(operator, "total", value.breakdown_problem)


def _warn_left_out(operator: BaseOperator, what: str, problem: str | None) -> None:
    if problem:
        operator.log.warning(
            "Kalshi account %s: the breakdown was left out, the %s is kept: %s",
            operator.kalshi_conn_id,
            what,
            problem,
        )
