"""Airflow plugin: adds the "Kalshi resting orders" chart to the UI's navigation.

Registered by the distribution's ``airflow.plugins`` entry point (and the ``plugins`` key of the
provider info), so ``pip install`` brings it to an Airflow with an empty plugins folder.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from kalshi_provider.pipelines.ui.app import app
from kalshi_provider.version_compat import AIRFLOW_V_3_1_PLUS


class KalshiUIPlugin(AirflowPlugin):
    name = "kalshi_ui"
    fastapi_apps = [{"app": app, "url_prefix": "/kalshi", "name": "Kalshi resting order value"}]
    # Airflow 3.0 has no external views, and its appbuilder_menu_items count as an Airflow 2 plugin
    # that stops the API server unless the FAB provider is installed: there the page has no menu
    # entry and is opened by its address, /kalshi/chart.
    if AIRFLOW_V_3_1_PLUS:
        external_views = [
            {
                "name": "Kalshi resting orders",
                "href": "/kalshi/chart",
                "url_route": "kalshi-resting-orders",
                "destination": "nav",
                "category": "browse",
            }
        ]
