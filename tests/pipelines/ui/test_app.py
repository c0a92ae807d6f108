"""The chart plugin's FastAPI app: no route answers without Airflow's access check.

FastAPI's generated ``/docs``, ``/redoc`` and ``/openapi.json`` do not go through the app's
dependencies, so they answered anonymous requests (and the two pages load scripts from a CDN
into Airflow's origin). They are off; the app's own routes keep the access check.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kalshi_provider.pipelines.ui.app import app


@pytest.fixture(scope="module")
def client():
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_fastapis_generated_docs_are_not_served(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "swagger" not in response.text.lower() and "redoc" not in response.text.lower()


def test_every_route_goes_through_airflows_access_check():
    from fastapi.routing import APIRoute

    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    assert {route.path for route in routes} >= {"/data", "/chart"}
    assert [route.path for route in app.routes if not isinstance(route, APIRoute)] == []
    assert len(app.router.dependencies) == 1  # requires_access_dag for the hourly DAG
