"""Airflow plugin: adds the "Kalshi resting orders" chart to the UI's navigation.

Registered by the distribution's ``airflow.plugins`` entry point (and the ``plugins`` key of the
provider info), so ``pip install`` brings it to an Airflow with an empty plugins folder.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from kalshi_provider.pipelines.ui.app import app


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
