"""The application built on the Kalshi provider: DAG factories, the warehouse, quality rules, the chart.

Nothing in the provider part of ``kalshi_provider`` imports from here, except the provider info,
which declares this part's ``[kalshi]`` settings to Airflow (``settings.CONFIG``).
"""
