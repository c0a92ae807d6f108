"""Fixtures of the chart app's tests."""

from __future__ import annotations

import pytest

from kalshi_provider.pipelines.ui.app import app
from tests.fixtures.served_app import served_app


@pytest.fixture
def served():
    """The app served by uvicorn on loopback, as an ASGI server serves it: real HTTP."""
    with served_app(app) as base_url:
        yield base_url
