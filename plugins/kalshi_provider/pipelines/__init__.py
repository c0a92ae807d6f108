"""The application built on the Kalshi provider: DAG factories, the warehouse, quality rules, the chart.

Nothing in the provider part of ``kalshi_provider`` imports from here; the provider info names
only this part's CLI command (Airflow reads commands from nowhere else).
"""
