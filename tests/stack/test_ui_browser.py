"""The Airflow 3.3 UI in a real (headless) Chromium, against the native stack.

A user logs in, creates Kalshi connections through the form the provider's metadata builds,
presses Test, and finds the DAG and its successful run. Screenshots of every step land in
``test-artifacts/stack-ui/`` (gitignored); a failing test adds ``FAILED-<test>.png`` and ``.html``.

Airflow 3.3.2 has no Test button in the add/edit dialog: Test sits on each saved connection's row.
That button is broken in 3.3.2 for every connection without a port (Kalshi's has none): the UI
sends ``port: Number(null)``, i.e. 0, the API takes 0 for "a different port than the stored
one" and answers 400, so the toast says only "Bad Request" (apache/airflow#73298, merged after
3.3.2; it makes the API treat port 0 as unset). ``test_kalshi_connection_through_the_ui``
therefore rewrites that one field the way the fix does (0 -> null) before the request leaves
the browser, and ``test_test_button_as_shipped_in_airflow_3_3_2`` pins the unpatched behaviour
as a strict xfail, so it turns red once Airflow is upgraded and the rewrite can go.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from kalshi_simulator import generate_private_key, private_pem
from tests.fixtures.stack import DAG_ID, AirflowStack
from tests.stack.browser import UI_TIMEOUT_MS, Steps, log_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

GOOD_CONN_ID = "kalshi_ui"
WRONG_CONN_ID = "kalshi_ui_wrong_key"


class PortlessTestRejected(Exception):
    """Airflow 3.3.2's Test button got 400 'host or port ... differs' for a connection without a port."""


# -- UI steps ---------------------------------------------------------------------------------


def open_connections(page: Page, steps: Steps | None = None) -> None:
    page.get_by_role("button", name="Admin").click()
    menu_item = page.get_by_role("menuitem", name="Connections")
    expect(menu_item).to_be_visible()
    if steps:
        steps.shot("admin menu")
    menu_item.click()
    expect(page.get_by_role("button", name="Add Connection")).to_be_visible()


def add_kalshi_connection(
    page: Page, steps: Steps, *, conn_id: str, key_id: str, base_url: str, pem: str, label: str
) -> None:
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible()
    dialog.get_by_label("Connection ID").fill(conn_id)
    dialog.get_by_role("combobox", name="Connection Type").fill("Kalshi")
    page.get_by_role("option", name="Kalshi", exact=True).click()
    # The provider's ui-field-behaviour: relabelled host/login, no password/port/schema fields.
    expect(dialog.get_by_label("Base URL")).to_be_visible()
    for hidden in ("Password", "Port", "Schema"):
        expect(dialog.get_by_label(hidden, exact=True)).to_have_count(0)
    dialog.get_by_label("Base URL").fill(base_url)
    dialog.get_by_label("API key ID").fill(key_id)
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    key_field = private_key_field(page, dialog)
    key_field.fill(pem)
    expect(key_field).to_have_value(pem)
    steps.shot(f"{label} form filled")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(connection_row(page, conn_id)).to_be_visible()
    steps.shot(f"{label} saved")


def private_key_field(page: Page, dialog: Locator) -> Locator:
    """The multi-line 'Private key (PEM)' extra field.

    Airflow 3.3.2 does not tie extra-field labels to their inputs (label for=<generated id>,
    textarea id=element_private_key), so get_by_label cannot find it: find its field group by
    the label's text instead.
    """
    group = dialog.get_by_role("group").filter(has=page.locator("label", has_text="Private key (PEM)"))
    return group.get_by_role("textbox")


def connection_row(page: Page, conn_id: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))


def press_test(page: Page, conn_id: str) -> Locator:
    """Press the row's Test button; return the toast that answers it."""
    connection_row(page, conn_id).get_by_role("button", name="Test Connection").click()
    toast = page.get_by_role("status").filter(has_text=re.compile(r"Test Connection (Successful|Failed)"))
    expect(toast).to_be_visible()
    return toast


def dismiss_toasts(page: Page) -> None:
    """Let the toasts go (error toasts have no close button) with the pointer away from the row,
    so no toast or tooltip covers the next button."""
    page.mouse.move(0, 0)
    for close in page.get_by_role("status").get_by_role("button").all():
        close.click()
    expect(page.get_by_role("status")).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("tooltip")).to_have_count(0)


class PortZeroRewrite:
    """Emulates apache/airflow#73298 in the browser: the Test request's ``port: 0`` becomes null."""

    def __init__(self) -> None:
        self.rewritten: list[dict[str, Any]] = []

    def __call__(self, route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        if body.get("port") == 0:
            body["port"] = None
            self.rewritten.append(body)
        route.continue_(post_data=json.dumps(body))


# -- the tests --------------------------------------------------------------------------------


def test_kalshi_connection_through_the_ui(
    page: Page, artifacts: Path, airflow_stack: AirflowStack, triggered_run: dict[str, Any]
) -> None:
    stack = airflow_stack
    steps = Steps(page, artifacts)
    good_pem = stack.kalshi_account.private_pem.decode()
    wrong_pem = private_pem(generate_private_key("rsa")).decode()  # a key Kalshi never saw

    log_in(page, stack, steps)
    open_connections(page, steps)
    steps.shot("connections list")
    add_kalshi_connection(
        page,
        steps,
        conn_id=GOOD_CONN_ID,
        key_id=stack.kalshi_account.key_id,
        base_url=stack.simulator.base_url,
        pem=good_pem,
        label="good key",
    )
    add_kalshi_connection(
        page,
        steps,
        conn_id=WRONG_CONN_ID,
        key_id=stack.kalshi_account.key_id,
        base_url=stack.simulator.base_url,
        pem=wrong_pem,
        label="wrong key",
    )

    rewrite = PortZeroRewrite()
    page.route("**/api/v2/connections/test", rewrite)

    toast = press_test(page, GOOD_CONN_ID)
    expect(toast).to_contain_text("Test Connection Successful")
    expect(toast).to_contain_text(f"key {stack.kalshi_account.key_id} signed a request that Kalshi accepted")
    steps.shot("test good key success")
    dismiss_toasts(page)

    toast = press_test(page, WRONG_CONN_ID)
    expect(toast).to_contain_text("Test Connection Failed")
    expect(toast).to_contain_text("401")
    expect(toast).to_contain_text("the private key does not belong to this key ID")
    steps.shot("test wrong key failure")
    dismiss_toasts(page)
    assert [body["connection_id"] for body in rewrite.rewritten] == [GOOD_CONN_ID, WRONG_CONN_ID]

    # The saved key is stored (the test above used it) but never shown or handed back in clear.
    connection_row(page, GOOD_CONN_ID).get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    expect(private_key_field(page, dialog)).to_have_value("***")
    steps.shot("edit dialog masks the key")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    response = stack.api("GET", f"/api/v2/connections/{GOOD_CONN_ID}")
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["conn_type"] == "kalshi"
    assert saved["login"] == stack.kalshi_account.key_id
    assert saved["host"] == stack.simulator.base_url
    assert saved["password"] in (None, "***")
    assert json.loads(saved["extra"])["private_key"] == "***"
    pem_lines = [line for line in good_pem.splitlines() if line and not line.startswith("-----")]
    listing = stack.api("GET", "/api/v2/connections").text
    for text in (response.text, listing):
        assert not any(line in text for line in pem_lines), "private key material in a REST answer"

    # The DAG and the run the REST test triggered.
    run_id = triggered_run["run"]["dag_run_id"]
    page.get_by_role("link", name="Dags", exact=True).first.click()
    # (the card also links the DAG's asset, of the same name)
    dag_link = page.get_by_role("link", name=DAG_ID, exact=True).and_(page.get_by_test_id("dag-id"))
    expect(dag_link).to_be_visible()
    steps.shot("dags list")
    dag_link.click()
    expect(page.get_by_role("heading", name=DAG_ID)).to_be_visible()
    steps.shot("dag page")
    page.get_by_role("link", name="Runs", exact=True).click()
    run_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=run_id, exact=True))
    expect(run_row).to_be_visible()
    expect(run_row).to_contain_text("Success")
    expect(run_row).to_contain_text("Manual")
    steps.shot("dag runs with the triggered run")


@pytest.mark.xfail(
    strict=True,
    raises=PortlessTestRejected,
    reason="apache/airflow#73298: 3.3.2's Test button sends port 0 for a portless connection -> 400",
)
def test_test_button_as_shipped_in_airflow_3_3_2(
    page: Page, artifacts: Path, airflow_stack: AirflowStack
) -> None:
    """The Test button with nothing rewritten. Fails strictly once Airflow fixes it: then delete
    this xfail and the PortZeroRewrite above."""
    stack = airflow_stack
    conn_id = "kalshi_ui_unpatched"
    created = stack.api(
        "POST",
        "/api/v2/connections",
        json={
            "connection_id": conn_id,
            "conn_type": "kalshi",
            "login": stack.kalshi_account.key_id,
            "host": stack.simulator.base_url,
            "extra": json.dumps({"private_key": stack.kalshi_account.private_pem.decode()}),
        },
    )
    assert created.status_code == 201, created.text
    answers: list[tuple[int, str]] = []
    page.on(
        "response",
        lambda r: (
            answers.append((r.status, r.text())) if r.url.endswith("/api/v2/connections/test") else None
        ),
    )
    steps = Steps(page, artifacts, prefix="unpatched-")
    log_in(page, stack, steps)
    open_connections(page)
    toast = press_test(page, conn_id)
    steps.shot("test button as shipped")
    if "Bad Request" in toast.inner_text() and answers and answers[-1][0] == 400:
        status, body = answers[-1]
        if "host or port to test differs from the stored connection" in body:
            raise PortlessTestRejected(f"{status}: {body}")
    expect(toast).to_contain_text("Test Connection Successful")
