"""Headless Chromium (playwright) for the stack's UI tests: fixtures and shared helpers.

The fixtures (``artifacts``, ``browser``, ``context``, ``page``) reach the tests through
``tests/stack/conftest.py``. Screenshots land in ``test-artifacts/stack-ui/`` (gitignored),
emptied once per run of this package; a failing test adds ``FAILED-<test>.png`` and ``.html``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.fixtures.stack import REPO, AirflowStack

ARTIFACTS = REPO / "test-artifacts" / "stack-ui"
CHROMIUM = os.environ.get("KALSHI_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 20_000
VIEWPORT = {"width": 1400, "height": 1000}


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this package's own screenshots
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/test.sh does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Browser) -> BrowserContext:
    """A fresh context (no cookies), sized and with the tests' default timeout."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = context.new_page()
    yield page
    report = getattr(request.node, "stack_ui_call_report", None)
    if report is not None and report.failed:
        stem = f"FAILED-{request.node.name}"
        page.screenshot(path=artifacts / f"{stem}.png", full_page=True)
        (artifacts / f"{stem}.html").write_text(page.content())


# -- helpers ----------------------------------------------------------------------------------


class Steps:
    """Numbered screenshots: ``steps.shot("login page")`` -> ``01-login-page.png``."""

    def __init__(self, page: Page, directory: Path, prefix: str = "") -> None:
        self.page, self.directory, self.prefix, self.count = page, directory, prefix, 0

    def shot(self, name: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.directory / f"{self.prefix}{self.count:02d}-{slug}.png"
        self.page.screenshot(path=path, full_page=True, animations="disabled")
        return path


def log_in(page: Page, stack: AirflowStack, steps: Steps) -> None:
    """Through the FAB auth manager's login page, as a user of the compose stack signs in."""
    page.goto(stack.base_url + "/")
    expect(page).to_have_url(re.compile(r"/auth/login/"))
    expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    steps.shot("login page")
    page.locator("#username").fill(stack.username)
    page.locator("#password").fill(stack.password)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("button", name="Admin")).to_be_visible()
    steps.shot("logged in home")
