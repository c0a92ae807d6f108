"""Airflow DAG: every hour, each Kalshi account's total resting order value into the warehouse.

The DAG is built by the installed provider; a team's own DAG folder holds the same lines.
"""

from kalshi_provider.pipelines.hourly import hourly_dag

dag = hourly_dag()
