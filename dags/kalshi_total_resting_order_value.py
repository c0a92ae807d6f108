"""Airflow DAG: each Kalshi account's total resting order value and balance, every hour."""

from kalshi_provider.pipelines.hourly import hourly_dag

dag = hourly_dag()
