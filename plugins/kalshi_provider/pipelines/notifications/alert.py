"""Send a failure to wherever the team listens: a Slack-style webhook or email, from one connection.

The target is an Airflow connection, looked up only when a failure happens, so the same DAG code
alerts Slack in one deployment and email in another without a change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseNotifier

WEBHOOK_TYPES = {"http", "https", "slackwebhook", "slack_webhook", "webhook"}
EMAIL_TYPES = {"smtp", "email"}


class KalshiAlertNotifier(BaseNotifier):
    """
    Notify about a failed task through the connection ``conn_id``.

    - ``http`` (or ``slackwebhook``) connection: POST ``{"text": message}`` to the webhook URL, taken
      from the password field (Slack's webhook URL is a secret) or else the host. HTTPS only,
      except on loopback.
    - ``smtp`` connection: email to the addresses in its extra ``to`` (comma-separated).

    When the connection does not exist the notifier only logs: the failed task is the alert.
    """

    template_fields: Sequence[str] = ("conn_id", "title")

    def __init__(self, *, conn_id: str = "kalshi_alerts", title: str = "Kalshi pipeline alert") -> None:
        super().__init__()
        self.conn_id = conn_id
        self.title = title

    def notify(self, context: Any) -> None:
        from kalshi_provider.version_compat import AirflowNotFoundException, BaseHook

        message = alert_text(self.title, context)
        try:
            connection = BaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            self.log.warning("No '%s' connection: alert not sent. %s", self.conn_id, message)
            return
        conn_type = (connection.conn_type or "").lower()
        if conn_type in WEBHOOK_TYPES:
            _post_webhook(connection, message)
        elif conn_type in EMAIL_TYPES:
            _send_email(connection, self.title, message)
        else:
            raise ValueError(
                f"Connection '{self.conn_id}' has type '{connection.conn_type}': use an http "
                "(webhook) or smtp connection for Kalshi alerts"
            )
        self.log.info("Alert sent through connection '%s' (%s)", self.conn_id, conn_type)


def alert_text(title: str, context: Any) -> str:
    ti = context.get("ti") or context.get("task_instance")
    where = f"{ti.dag_id}.{ti.task_id} (run {ti.run_id}, try {ti.try_number})" if ti else "unknown task"
    error = context.get("exception")
    return f"{title}: {where} failed.\n{error}" if error else f"{title}: {where} failed."


def _post_webhook(connection: Any, message: str) -> None:
    import requests

    from kalshi_provider.connection import is_loopback_url

    url = connection.password if (connection.password or "").startswith("http") else connection.host
    if not url or not (url.startswith("https://") or is_loopback_url(url)):
        raise ValueError(f"Connection '{connection.conn_id}' needs an https webhook URL (password or host)")
    response = requests.post(url, json={"text": message}, timeout=10)
    response.raise_for_status()


def _send_email(connection: Any, subject: str, message: str) -> None:
    from html import escape

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = [a.strip() for a in str(connection.extra_dejson.get("to", "")).split(",") if a.strip()]
    if not recipients:
        raise ValueError(f"Connection '{connection.conn_id}' needs an extra 'to' with the recipients")
    with SmtpHook(smtp_conn_id=connection.conn_id) as smtp:
        smtp.send_email_smtp(to=recipients, subject=subject, html_content=f"<pre>{escape(message)}</pre>")
