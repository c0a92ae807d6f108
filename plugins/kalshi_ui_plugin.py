"""Airflow plugin: adds the "Kalshi resting orders" chart to the UI's navigation.

This file sits at the top of the plugins folder because Airflow's plugin scan skips the
``kalshi_provider`` package (see plugins/.airflowignore).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from kalshi_provider.ui.app import app


class KalshiUIPlugin(AirflowPlugin):
    name = "kalshi_ui"
    fastapi_apps = [{"app": app, "url_prefix": "/kalshi", "name": "Kalshi resting order value"}]
    external_views = [
        {
            "name": "Kalshi resting orders",
            "href": "/kalshi/chart",
            "url_route": "kalshi-resting-orders",
            "destination": "nav",
            "category": "browse",
        }
    ]
